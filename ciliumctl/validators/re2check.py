"""Does a regular expression compile under RE2, as the Cilium agent and Envoy require?

The agent compiles HTTP method/path/host regexes and label patterns with Go's ``regexp``
(RE2 syntax) and Envoy with Google RE2. We compile with the ``google-re2`` bindings when
they are installed; otherwise a scanner rejects the constructs RE2 does not support
(backreferences, lookarounds, possessive quantifiers, atomic groups, conditionals, \\C, ...)
after Python's own parser has checked the rest. Either way the constructs Go's regexp
rejects beyond C++ RE2 (\\C) are rejected too.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

#: Constructs RE2 does not implement, found by a scan that skips escaped characters and
#: character classes. Each entry: (regex over the pattern, explanation).
_UNSUPPORTED: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\(\?[=!]"), "lookahead (?= / (?! is not supported by RE2"),
    (re.compile(r"\(\?<[=!]"), "lookbehind (?<= / (?<! is not supported by RE2"),
    (re.compile(r"\(\?>"), "atomic groups (?> are not supported by RE2"),
    (re.compile(r"\(\?\("), "conditionals (?(...) are not supported by RE2"),
    (re.compile(r"\(\?(?:R|[0-9]|[+-][0-9]|&|P>)"), "recursion is not supported by RE2"),
    (re.compile(r"\(\?P="), "named backreferences (?P=name) are not supported by RE2"),
    (re.compile(r"\(\?#"), "comments (?#...) are not supported by RE2"),
    (re.compile(r"(?:[*+?}])\+"), "possessive quantifiers (*+, ++, ?+) are not supported by RE2"),
)
_BAD_ESCAPES = {
    "C": "\\C (any byte) is not supported by Go's regexp",
    "G": "\\G is not supported by RE2",
    "Z": "\\Z is not supported by RE2 (use \\z)",
    "K": "\\K is not supported by RE2",
    "R": "\\R is not supported by RE2",
    "X": "\\X is not supported by RE2",
    "g": "\\g backreferences are not supported by RE2",
    "k": "\\k backreferences are not supported by RE2",
}


@cache
def _re2() -> Any:
    """The google-re2 module, or None when it is not installed."""
    try:
        import re2
    except ImportError:
        return None
    return re2


def have_re2() -> bool:
    """True when the google-re2 bindings are importable."""
    return _re2() is not None


@cache
def _options() -> Any:
    options = _re2().Options()
    options.log_errors = False
    return options


def _outside_classes(pattern: str) -> str:
    """The pattern with escapes and character classes blanked, so scans see structure only."""
    out = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            out.append("__")
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
                out.append("_")
            else:
                out.append("_")
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append("_")
            # A ']' right after '[' or '[^' is literal.
            j = i + 1
            if j < n and pattern[j] == "^":
                out.append("_")
                j += 1
            if j < n and pattern[j] == "]":
                out.append("_")
                j += 1
            i = j
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _scan(pattern: str) -> str | None:
    """Find an RE2-unsupported construct; returns the explanation or None."""
    # Escapes first (they may appear inside classes too).
    i = 0
    while i < len(pattern) - 1:
        if pattern[i] == "\\":
            nxt = pattern[i + 1]
            if nxt in _BAD_ESCAPES:
                return _BAD_ESCAPES[nxt]
            if nxt.isdigit() and nxt != "0":
                return f"backreference \\{nxt} is not supported by RE2"
            i += 2
            continue
        i += 1
    bare = _outside_classes(pattern)
    for regex, why in _UNSUPPORTED:
        if regex.search(bare):
            return why
    for match in re.finditer(r"\{(\d+)(?:,(\d*))?\}", bare):
        for group in match.groups():
            if group and int(group) > 1000:
                return f"repetition count {group} is above RE2's limit of 1000"
    return None


@lru_cache(maxsize=4096)
def check(pattern: str) -> str | None:
    """None when ``pattern`` is a valid RE2 regex, else why it is not.

    Memoised: policies repeat the same methods and paths over and over.
    """
    if "\\C" in pattern.replace("\\\\", ""):
        return _BAD_ESCAPES["C"]
    re2 = _re2()
    if re2 is not None:
        try:
            re2.compile(pattern, _options())
        except re2.error as exc:
            detail = exc.args[0] if exc.args else exc
            if isinstance(detail, bytes):
                detail = detail.decode("utf-8", "replace")
            return str(detail)
        except (TypeError, ValueError) as exc:
            return str(exc)
        return None
    why = _scan(pattern)
    if why:
        return why
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    except (RecursionError, OverflowError):
        return "the pattern is too complex"
    return None


def search_span(pattern: str, text: str) -> tuple[int, int] | None:
    """The leftmost-first match of ``pattern`` in ``text`` (RE2 when available)."""
    re2 = _re2()
    if re2 is not None:
        compiled = _compiled_re2(pattern)
        if compiled is None:
            return None
        found = compiled.search(text)
    else:
        try:
            found = _compiled_py(pattern).search(text)
        except re.error:
            return None
    if found is None:
        return None
    start, end = found.span()
    return int(start), int(end)


@cache
@lru_cache(maxsize=4096)
def _compiled_re2(pattern: str) -> Any:
    """A pattern compiled by RE2 once (the agent matches every pod label against the label
    filter's patterns), None when RE2 refuses it."""
    re2 = _re2()
    try:
        return re2.compile(pattern, _options())
    except re2.error:
        return None


def _compiled_py(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
