"""cilium config: argument parsing and the restart batch size."""

from __future__ import annotations

import pytest

from ciliumctl.cli.common import parse_duration
from ciliumctl.config.config import max_unavailable, parse_pairs
from ciliumctl.errors import UsageError


def test_parse_pairs_both_syntaxes() -> None:
    assert parse_pairs(["debug", "true"]) == {"debug": "true"}
    assert parse_pairs(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_pairs(["a=1", "broken"])


@pytest.mark.parametrize(
    ("value", "nodes", "expected"), [(2, 10, 2), ("25%", 10, 2), ("10%", 3, 1), (None, 5, 1)]
)
def test_max_unavailable(value: object, nodes: int, expected: int) -> None:
    ds = {
        "spec": {
            "updateStrategy": {"rollingUpdate": {} if value is None else {"maxUnavailable": value}}
        }
    }
    assert max_unavailable(ds, nodes) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m0s", 300), ("90s", 90), ("1h", 3600), ("1m30s", 90), ("12", 12), ("500ms", 0.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "5m garbage"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="--wait-duration"):
        parse_duration(text)
