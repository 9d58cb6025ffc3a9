"""RE2 compatibility: the google-re2 path and the fallback scanner agree on what RE2 rejects."""

from __future__ import annotations

import pytest

from ciliumctl.validators import re2check

UNSUPPORTED = [
    r"a(?=b)",
    r"a(?!b)",
    r"(?<=a)b",
    r"(?<!a)b",
    r"(a)\1",
    r"a++",
    r"a*+",
    r"(?>a)",
    r"\C",
    r"\Z",
    r"a{1001}",
    r"(?P=name)",
]
SUPPORTED = [
    "GET|POST",
    "/api/v[0-9]+/.*",
    "(?i)foo",
    r"\pL+",
    "(?P<n>a)",
    r"[(?=]",
    r"\\C",
    r"a\+\+",
    "^kind$",
    "a{2,1000}",
]


@pytest.mark.parametrize("pattern", UNSUPPORTED)
def test_rejected(pattern: str) -> None:
    assert re2check.check(pattern) is not None
    assert re2check._scan(pattern) is not None or pattern == r"\C"


@pytest.mark.parametrize("pattern", SUPPORTED)
def test_accepted(pattern: str) -> None:
    assert re2check.check(pattern) is None
    assert re2check._scan(pattern) is None


def test_fallback_without_the_bindings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(re2check, "_re2", lambda: None)
    assert not re2check.have_re2()
    assert re2check.check("a(?=b)") is not None
    assert re2check.check("[unclosed") is not None  # Python's parser catches the rest
    assert re2check.check("GET|POST") is None
    assert re2check.search_span("app", "app.kubernetes.io") == (0, 3)


def test_google_re2_is_used_when_installed() -> None:
    assert re2check.have_re2()
    assert re2check.search_span(r"kubernetes\.io", "app.kubernetes.io") == (4, 17)
    assert re2check.search_span("(", "x") is None
