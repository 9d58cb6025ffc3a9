"""--selector parsing and LabelSelector validation."""

from __future__ import annotations

import pytest

from ciliumctl.nodeconfig.options import closest, unknown_key_warnings
from ciliumctl.nodeconfig.selectors import (
    SelectorError,
    compile_selector,
    format_selector,
    parse_selector,
)


def test_equality_terms_become_match_labels() -> None:
    assert parse_selector("pool=a,example.com/hw==xdp") == {
        "matchLabels": {"pool": "a", "example.com/hw": "xdp"}
    }


def test_set_terms_and_existence() -> None:
    sel = parse_selector("pool in (a, b),zone notin (z1),gpu,!legacy,tier!=db")
    assert sel["matchExpressions"] == [
        {"key": "pool", "operator": "In", "values": ["a", "b"]},
        {"key": "zone", "operator": "NotIn", "values": ["z1"]},
        {"key": "gpu", "operator": "Exists"},
        {"key": "legacy", "operator": "DoesNotExist"},
        {"key": "tier", "operator": "NotIn", "values": ["db"]},
    ]
    assert format_selector(sel) == "pool in (a,b),zone notin (z1),gpu,!legacy,tier notin (db)"
    assert format_selector({}) == "<all nodes>"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty --selector"),
        ("pool=a,,x=y", "empty term"),
        ("pool in (a", "unbalanced"),
        ("bad key=a", "invalid"),
        ("pool=a b", "invalid label value"),
        ("-pool=a", "invalid label key"),
        ("pool=a,pool=b", "two values"),
        ("Example.com/x=1", "not a DNS subdomain"),
        ("pool in ()", "needs at least one value"),
    ],
)
def test_invalid_selectors_are_rejected_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        parse_selector(text)


def test_compile_rejects_what_the_api_server_accepts_but_the_agent_does_not() -> None:
    with pytest.raises(SelectorError, match="takes no values"):
        compile_selector(
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}
        )
    with pytest.raises(SelectorError, match="not a valid operator"):
        compile_selector({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})
    with pytest.raises(SelectorError, match="unknown field"):
        compile_selector({"matchLabel": {"a": "b"}})
    assert compile_selector(None).matches({"any": "thing"})


def test_unknown_keys_warn_with_the_closest_known_option() -> None:
    assert closest("enable-ipv4-big-tpc") == "enable-ipv4-big-tcp"
    warnings = unknown_key_warnings(["hubble-event-queue-size", "hubble-event-queu-size", "zzzz"])
    assert warnings == [
        "hubble-event-queu-size is not a known agent option; did you mean hubble-event-queue-size?",
        "zzzz is not a known agent option",
    ]
