"""The shortcuts of the semantic rules find exactly what the full checks find."""

from __future__ import annotations

import copy
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


def _typical(i: int) -> dict[str, Any]:
    """The bench's typical policy (the shape the clean-policy shortcut is for)."""
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": f"app-{i}", "namespace": "team"},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": f"app-{i}", "tier": "backend"}},
            "ingress": [
                {
                    "fromEndpoints": [{"matchLabels": {"app": "client", "k8s:io.x/ns": "t"}}],
                    "toPorts": [
                        {
                            "ports": [{"port": "8000", "protocol": "TCP"}],
                            "rules": {"http": [{"method": "GET", "path": "/api/.*"}]},
                        }
                    ],
                }
            ],
            "egress": [{"toCIDRSet": [{"cidr": "10.1.0.0/16", "except": ["10.1.2.0/24"]}]}],
        },
    }


_SELECTOR_LISTS = ("Endpoints", "Nodes", "Requires")
#: role of a dict in a policy -> (key, value) mutations that each trip one check there
#: (or put a type there that the checks must tolerate); "{w}" is "from" or "to".
_MUTATIONS: dict[str, list[tuple[str, Any]]] = {
    "obj": [("spec", {}), ("spec", None), ("spec", []), ("specs", []), ("specs", [{}])],
    "spec": [
        ("endpointSelector", {}), ("endpointSelector", None), ("nodeSelector", {}),
        ("nodeSelector", {"matchLabels": {"a": "b"}}), ("ingress", []), ("ingress", None),
        ("egress", None), ("ingress", "x"), ("ingress", [{}, 5]), ("ingressDeny", [{}]),
        ("egressDeny", [{"toEntities": ["all"]}]), ("enableDefaultDeny", {"ingress": True}),
        ("log", {"value": "x"}),
    ],
    "selector": [
        ("matchLabels", {}), ("matchLabels", {"bad key!": "x"}), ("matchLabels", None),
        ("matchLabels", {"reserved:init": ""}), ("matchLabels", {7: "x"}),
        ("matchLabels", {"unknown:x": ""}), ("matchExpressions", []),
        ("matchExpressions", [{"key": "a", "operator": "In"}]),
        ("matchExpressions", [{"key": "reserved:init", "operator": "Exists"}]),
    ],
    "direction": [
        ("{w}Endpoints", [{}]), ("{w}Endpoints", [{"matchLabels": {"a": "b"}}]),
        ("{w}Endpoints", [5]), ("{w}Nodes", [{}]), ("{w}Nodes", [{"matchLabels": {"a": "b"}}]),
        ("{w}Requires", [{"matchLabels": {"a": "b"}}]), ("{w}Requires", []),
        ("{w}Entities", ["all"]), ("{w}Entities", ["world"]), ("{w}Entities", "all"),
        ("{w}CIDR", ["10.0.0.1/8"]), ("{w}CIDR", ["10.0.0.0/8"]), ("{w}CIDR", ["x/8", 5]),
        ("{w}CIDRSet", [{"cidr": "10.0.0.1/8"}]), ("{w}CIDRSet", [5]),
        ("{w}CIDRSet", [{"cidr": "10.0.0.0/8", "except": ["11.0.0.0/24"]}]),
        ("toServices", [{}]), ("toFQDNs", [{"matchName": "x.io"}]), ("toFQDNs", []),
        ("icmps", [{"fields": []}]), ("toPorts", []), ("toPorts", [{}]), ("toPorts", 5),
    ],
    "port-rule": [
        ("ports", [{"port": "80"}] * 41), ("ports", [{"port": "80", "endPort": 70}]),
        ("ports", [{"port": "0", "protocol": "TCP"}]), ("ports", [{"port": "80"}]),
        ("ports", [{"port": "80", "protocol": "UDP"}]), ("ports", [5]), ("rules", None),
        ("rules", {}), ("rules", {"dns": [{"matchPattern": "*"}]}), ("rules", {"l7": [{}]}),
        ("rules", {"kafka": [{"role": "produce"}]}), ("rules", {"l7proto": "x"}),
        ("rules", {"http": None}), ("rules", {"http": [{}], "dns": None}),
        ("serverNames", ["x.io"]), ("serverNames", []), ("terminatingTLS", {"a": 1}),
        ("listener", {"name": "l"}),
    ],
    "port": [
        ("port", "0"), ("port", 0), ("port", "http"), ("port", "53"), ("protocol", "UDP"),
        ("protocol", "tcp"), ("protocol", ""), ("protocol", 5), ("endPort", 70),
        ("endPort", 9000), ("endPort", 0),
    ],
    "l7": [
        ("http", None), ("http", []), ("http", [{"method": "(?=x)"}]), ("http", [5]),
        ("dns", [{"matchName": "x.io"}]), ("dns", None), ("kafka", []), ("l7proto", "x"),
        ("l7", None), ("l7", [{}]),
    ],
    "http": [
        ("method", "(?=x)"), ("method", ""), ("method", 5), ("path", "a(b"), ("host", "\\C"),
        ("headerMatches", [{"secret": {}}]), ("headerMatches", [{"secret": {"name": "s"}}]),
    ],
    "cidr-rule": [
        ("cidr", "10.0.0.1/8"), ("cidr", "x/8"), ("cidr", "::/0"), ("cidr", 5),
        ("except", ["10.2.0.0/24"]), ("except", ["10.1.0.0/8"]), ("except", ["x/8", 5]),
        ("except", "x"), ("cidrGroupSelector", {"matchLabels": {"bad key!": "x"}}),
        ("cidrGroupSelector", {"matchLabels": {"a": "b"}}),
    ],
}  # fmt: skip
_ROLE_OF_KEY = {"spec": "spec", "rules": "l7", "endpointSelector": "selector"}
_ROLE_OF_ITEMS = {"toPorts": "port-rule", "ports": "port", "http": "http", "specs": "spec"}


def _roles(value: Any, role: str, word: str = "") -> list[tuple[dict[str, Any], str, str]]:
    """Every dict of a policy with its role (and, for direction rules, from or to)."""
    found: list[tuple[dict[str, Any], str, str]] = []
    if not isinstance(value, dict):
        return found
    found.append((value, role, word))
    for key, item in value.items():
        child = _ROLE_OF_KEY.get(key) or (
            "selector" if key in ("nodeSelector", "cidrGroupSelector") else None
        )
        if child is not None:
            found += _roles(item, child)
        if not isinstance(item, list):
            continue
        each, sub = _ROLE_OF_ITEMS.get(key), ""
        if key in ("ingress", "ingressDeny", "egress", "egressDeny"):
            each, sub = "direction", "from" if key.startswith("ingress") else "to"
        elif isinstance(key, str) and key.endswith(_SELECTOR_LISTS):
            each = "selector"
        elif isinstance(key, str) and key.endswith("CIDRSet"):
            each = "cidr-rule"
        for entry in item if each else ():
            found += _roles(entry, each, sub)
    return found


@settings(max_examples=4000, deadline=None)
@given(
    data=st.data(),
    kind=st.sampled_from(["CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"]),
    target=st.sampled_from([(1, 16), (1, 18), (1, 18)]),
)
def test_clean_policy_shortcut(data: Any, kind: str, target: tuple[int, int]) -> None:
    """Whatever one or two changes make of a typical policy, the shortcut never hides a
    finding of the full checks."""
    obj = _typical(0)
    obj["spec"]["egress"] += [
        {"toEndpoints": [{"matchLabels": {"a": "b"}}], "toPorts": [{"ports": [{"port": "53"}]}]},
        {"toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]},
    ]
    for _ in range(data.draw(st.integers(1, 2))):
        where, role, word = data.draw(st.sampled_from(_roles(obj, "obj")))
        key, value = data.draw(st.sampled_from([*_MUTATIONS[role], ("", None)]))
        if not key:
            if where:
                del where[data.draw(st.sampled_from(sorted(where, key=str)))]
            continue
        where[key.replace("{w}", word)] = copy.deepcopy(value)
    fast = list(policy_rules.check_policy(obj, kind, target))
    with mock.patch.object(policy_rules, "_clean_policy", lambda *args: False):
        full = list(policy_rules.check_policy(obj, kind, target))
    assert fast == full


def test_clean_policy_takes_the_typical_policy() -> None:
    """The bench's policies, at the default target, go through the shortcut (else it saves
    nothing); older targets take the full checks (the per-field version walk)."""
    for kind in ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"):
        assert policy_rules._clean_policy(_typical(1), kind, (1, 18))
        assert not policy_rules._clean_policy(_typical(1), kind, (1, 14))


def test_v4_memo_gives_the_computed_answer() -> None:
    for text in ("10.0.0.0/8", "10.0.0.1/33", "010.0.0.0/8", "x", "10.0.0.0/8"):
        policy_rules._V4_MEMO.pop(text, None)
        first = policy_rules._v4(text)
        assert policy_rules._v4(text) == first
    assert policy_rules._v4("10.0.0.0/8") == (10 << 24, 8, 0xFF000000)
    assert policy_rules._v4("10.0.0.1/33") is None
