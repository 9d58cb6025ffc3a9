"""The shortcuts of the semantic rules find exactly what the full checks find."""

from __future__ import annotations

from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from ciliumctl.validators import policy_rules

octets = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "010", "-1", ""]))
lengths = st.one_of(st.integers(0, 40).map(str), st.sampled_from(["08", "032", "", "x"]))
prefixes = st.builds(
    lambda a, b, c, d, n: f"{a}.{b}.{c}.{d}/{n}", octets, octets, octets, octets, lengths
)
cidrs: st.SearchStrategy[Any] = st.one_of(
    prefixes,
    st.builds(lambda a, n: f"10.{a}.0.0/{n}", st.integers(0, 3).map(str), st.integers(8, 32)),
    st.sampled_from(["2001:db8::/32", "::/0", "::ffff:10.0.0.0/104", "10.0.0.0", "x/8"]),
    st.just("10.0.0.0/8/8"),
    st.sampled_from([5, None, ["10.0.0.0/8"]]),
)  # fmt: skip


def _without_shortcuts(run: Any) -> Any:
    with mock.patch.object(policy_rules, "_v4", lambda text: None):
        return run()


@settings(max_examples=3000, deadline=None)
@given(cidr=cidrs, excepts=st.lists(cidrs, max_size=3), selector=st.booleans())
def test_cidr_rules(cidr: Any, excepts: list[Any], selector: bool) -> None:
    rule: dict[str, Any] = {"cidr": cidr, "except": excepts}
    if selector:
        rule["cidrGroupSelector"] = {"matchLabels": {"bad key!": "x"}}
    fast = list(policy_rules.check_cidr_rule(rule, ("p",)))
    assert fast == _without_shortcuts(lambda: list(policy_rules.check_cidr_rule(rule, ("p",))))
    fast = list(policy_rules.check_cidr(cidr, ("p",)))
    assert fast == _without_shortcuts(lambda: list(policy_rules.check_cidr(cidr, ("p",))))
