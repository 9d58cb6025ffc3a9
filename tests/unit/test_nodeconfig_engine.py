"""The effective-configuration engine, rule by rule, on plain data (no cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from ciliumctl.errors import UsageError
from ciliumctl.nodeconfig.engine import (
    ConfigSource,
    Inputs,
    NodeConfigError,
    NodeInfo,
    default_sources,
    differences,
    is_configmap_key,
    parse_sources,
    resolve,
    resolve_all,
)

NS = "kube-system"
CM = {(NS, "cilium-config"): {"debug": "false", "datapath-mode": "veth", "enable-hubble": "true"}}


def cnc(
    name: str,
    defaults: dict[str, str],
    selector: dict[str, Any] | None = None,
    *,
    version: str = "cilium.io/v2",
    namespace: str = NS,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"defaults": defaults}
    if selector is not None:
        spec["nodeSelector"] = selector
    return {
        "apiVersion": version,
        "kind": "CiliumNodeConfig",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def node(name: str = "n1", **labels: str) -> NodeInfo:
    return NodeInfo(name, {k.replace("_", "-"): v for k, v in labels.items()})


def values(eff: Any) -> dict[str, tuple[str, str]]:
    return {k: (s.value, s.source) for k, s in eff.values.items()}


def test_configmap_only_when_no_cnc_matches() -> None:
    eff = resolve(
        node(pool="a"),
        Inputs(NS, CM, [cnc("x", {"debug": "true"}, {"matchLabels": {"pool": "b"}})]),
    )
    assert eff.plain()["debug"] == "false"
    assert eff.values["debug"].source == "config-map:kube-system/cilium-config"
    assert eff.plain()["config-sources"] == "config-map:kube-system/cilium-config"


def test_matching_cnc_overrides_configmap_and_is_named_as_source() -> None:
    eff = resolve(
        node(pool="a"),
        Inputs(NS, CM, [cnc("xdp", {"debug": "true"}, {"matchLabels": {"pool": "a"}})]),
    )
    assert values(eff)["debug"] == ("true", "cilium-node-config:kube-system/xdp")
    assert values(eff)["datapath-mode"] == ("veth", "config-map:kube-system/cilium-config")
    assert eff.sources == [
        "config-map:kube-system/cilium-config",
        "cilium-node-config:kube-system/xdp",
    ]


def test_later_names_win_and_overlap_warns() -> None:
    sel = {"matchLabels": {"pool": "a"}}
    inputs = Inputs(
        NS, CM, [cnc("b-second", {"debug": "b"}, sel), cnc("a-first", {"debug": "a"}, sel)]
    )
    eff = resolve(node(pool="a"), inputs)
    assert values(eff)["debug"] == ("b", "cilium-node-config:kube-system/b-second")
    assert any(
        "debug is set by several CiliumNodeConfigs (a-first, b-second)" in w for w in eff.warnings
    )
    assert eff.sources[1:] == [
        "cilium-node-config:kube-system/a-first",
        "cilium-node-config:kube-system/b-second",
    ]


def test_empty_defaults_are_ignored_even_when_matching() -> None:
    inputs = Inputs(NS, CM, [cnc("empty", {}, {})])
    eff = resolve(node(), inputs)
    assert eff.sources == ["config-map:kube-system/cilium-config"]


def test_empty_selector_selects_all_and_missing_selector_selects_none() -> None:
    inputs = Inputs(
        NS, CM, [cnc("all", {"debug": "all"}, {}), cnc("zz-none", {"debug": "none"}, None)]
    )
    assert resolve(node(), inputs).plain()["debug"] == "all"


def test_cnc_in_other_namespace_is_not_read() -> None:
    inputs = Inputs(NS, CM, [cnc("other", {"debug": "x"}, {}, namespace="default")])
    assert resolve(node(), inputs).plain()["debug"] == "false"


def test_v2_overrides_v2alpha1_key_by_key() -> None:
    inputs = Inputs(
        NS,
        CM,
        [
            cnc("z-alpha", {"debug": "alpha", "mtu": "1400"}, {}, version="cilium.io/v2alpha1"),
            cnc("a-v2", {"debug": "v2"}, {}),
        ],
    )
    eff = resolve(node(), inputs)
    # v2 wins although its name sorts first; keys only in v2alpha1 still apply.
    assert values(eff)["debug"] == ("v2", "cilium-node-config:kube-system/a-v2")
    assert values(eff)["mtu"] == ("1400", "cilium-node-config:kube-system/z-alpha")


def test_deny_keys_apply_to_every_source_but_the_first() -> None:
    inputs = Inputs(NS, CM, [cnc("x", {"debug": "true", "mtu": "9000"}, {})], deny_keys=["debug"])
    eff = resolve(node(), inputs)
    assert eff.plain()["debug"] == "false"
    assert eff.plain()["mtu"] == "9000"
    assert eff.ignored[0]["key"] == "debug" and "deny-config-keys" in eff.ignored[0]["reason"]


def test_allow_keys_take_precedence_over_deny_keys() -> None:
    inputs = Inputs(
        NS,
        CM,
        [cnc("x", {"debug": "true", "mtu": "9000"}, {})],
        allow_keys=["debug"],
        deny_keys=["debug"],
    )
    eff = resolve(node(), inputs)
    assert eff.plain()["debug"] == "true"
    assert "mtu" not in eff.plain()


def test_first_source_is_never_filtered_even_when_it_is_a_cnc_source() -> None:
    sources = [
        ConfigSource("cilium-node-config", NS, ""),
        ConfigSource("config-map", NS, "cilium-config"),
    ]
    inputs = Inputs(
        NS,
        CM,
        [cnc("x", {"mtu": "9000", "debug": "x"}, {})],
        sources=sources,
        allow_keys=["nothing"],
    )
    eff = resolve(node(), inputs)
    assert eff.plain()["mtu"] == "9000"  # first source: not filtered
    assert eff.plain()["debug"] == "x"  # the ConfigMap's debug is filtered out
    assert {"key": "debug"}.items() <= eff.ignored[0].items()


def test_node_source_reads_labels_then_annotations() -> None:
    sources = [*default_sources(NS), ConfigSource("node", "", "")]
    info = NodeInfo(
        "n1",
        {"config.cilium.io/debug": "label", "config.cilium.io/mtu": "1300"},
        {"config.cilium.io/debug": "annotation", "config.cilium.ioX": "bad"},
    )
    eff = resolve(info, Inputs(NS, CM, [cnc("x", {"debug": "cnc"}, {})], sources=sources))
    assert values(eff)["debug"] == ("annotation", "node:n1")
    assert values(eff)["mtu"] == ("1300", "node:n1")
    assert any("has no /KEY" in w for w in eff.warnings)


def test_node_source_is_not_read_by_default() -> None:
    info = NodeInfo("n1", {"config.cilium.io/debug": "label"})
    assert resolve(info, Inputs(NS, CM)).plain()["debug"] == "false"


def test_named_cnc_source_ignores_the_selector() -> None:
    sources = [
        ConfigSource("config-map", NS, "cilium-config"),
        ConfigSource("cilium-node-config", NS, "pick"),
    ]
    inputs = Inputs(
        NS,
        CM,
        [
            cnc("pick", {"debug": "picked"}, {"matchLabels": {"no": "match"}}),
            cnc("other", {"debug": "o"}, {}),
        ],
        sources=sources,
    )
    assert resolve(node(), inputs).plain()["debug"] == "picked"


def test_missing_or_empty_configmap_contributes_nothing() -> None:
    inputs = Inputs(NS, {(NS, "cilium-config"): {}}, [cnc("x", {"debug": "true"}, {})])
    eff = resolve(node(), inputs)
    assert eff.sources == ["cilium-node-config:kube-system/x"]
    assert resolve(node(), Inputs(NS, {})).plain() == {"config-sources": ""}


def test_invalid_configmap_keys_in_cnc_are_skipped() -> None:
    eff = resolve(node(), Inputs(NS, CM, [cnc("x", {"bad key": "1", "..x": "2", "ok": "3"}, {})]))
    assert "bad key" not in eff.plain() and "..x" not in eff.plain() and eff.plain()["ok"] == "3"
    assert sum("not a valid ConfigMap key" in w for w in eff.warnings) == 2


def test_invalid_selector_in_a_cnc_is_an_error_naming_it() -> None:
    bad = cnc("broken", {"debug": "1"}, {"matchExpressions": [{"key": "pool", "operator": "In"}]})
    with pytest.raises(NodeConfigError, match="CiliumNodeConfig broken"):
        resolve(node(), Inputs(NS, CM, [bad]))


def test_match_expressions_semantics() -> None:
    sel = {
        "matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["a", "b"]},
            {"key": "zone", "operator": "NotIn", "values": ["z1"]},
            {"key": "hw", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ]
    }
    inputs = Inputs(NS, CM, [cnc("x", {"debug": "hit"}, sel)])
    assert resolve(node(pool="a", hw="1"), inputs).plain()["debug"] == "hit"
    assert resolve(node(pool="b", hw="1", zone="z2"), inputs).plain()["debug"] == "hit"
    assert resolve(node(pool="c", hw="1"), inputs).plain()["debug"] == "false"
    assert resolve(node(pool="a", hw="1", zone="z1"), inputs).plain()["debug"] == "false"
    assert resolve(node(pool="a"), inputs).plain()["debug"] == "false"
    assert resolve(node(pool="a", hw="1", legacy="y"), inputs).plain()["debug"] == "false"


def test_parse_sources_like_build_config() -> None:
    assert parse_sources(
        ["config-map:cilium-config,cilium-node-config:kube-system"], NS
    ) == default_sources(NS)
    parsed = parse_sources(
        ["config-map:other/my-cm", "config-map:mine", "cilium-node-config", "node", "node:n7"], NS
    )
    assert [str(s) for s in parsed] == [
        "config-map:other/my-cm",
        "config-map:kube-system/mine",
        "cilium-node-config:kube-system/",
        "node:/",
        "node:/n7",
    ]
    with pytest.raises(UsageError, match="unknown config source"):
        parse_sources(["secret:foo"], NS)


def test_configmap_key_rule() -> None:
    assert is_configmap_key("enable-ipv4-big-tcp") and is_configmap_key("a.b_c")
    assert (
        not is_configmap_key("..data") and not is_configmap_key("a/b") and not is_configmap_key("")
    )
    assert not is_configmap_key("x" * 254)


def test_differences_and_grouping_across_many_nodes() -> None:
    cncs = [cnc("xdp", {"bpf-lb-acceleration": "native"}, {"matchLabels": {"hw": "xdp"}})]
    nodes = [node(f"n{i}", hw="xdp" if i % 2 else "plain") for i in range(10)]
    result = resolve_all(nodes, Inputs(NS, CM, cncs))
    diffs = differences(result["n1"], CM[(NS, "cilium-config")])
    assert diffs == {
        "bpf-lb-acceleration": {
            "configmap": None,
            "effective": "native",
            "source": "cilium-node-config:kube-system/xdp",
        }
    }
    assert differences(result["n0"], CM[(NS, "cilium-config")]) == {}
    assert result["n1"].fingerprint() == result["n3"].fingerprint() != result["n0"].fingerprint()
    assert result["n3"].node == "n3"
