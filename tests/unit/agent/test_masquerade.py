"""IPv4 masquerading in iptables mode: the rules for the node's pod CIDRs, rewritten as a
whole (a restarted agent converges), failures reported in status, and the configurations
this agent cannot honour refused with the key named."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ciliumctl.agent import masquerade
from ciliumctl.agent.config import AgentConfig
from ciliumctl.dbg.render import _masquerading
from ciliumctl.errors import ConfigError


class FakeIptables:
    """The nat table's chains as iptables would keep them (the one thing not run for real:
    the real-node tests check the rules in a node)."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.chains: dict[str, list[list[str]]] = {"POSTROUTING": []}
        self.fail_on = fail_on

    def __call__(self, args: Sequence[str]) -> tuple[int, str]:
        op, chain, *rest = args if args[0] != "-n" else args[1:]
        if self.fail_on == op:
            return 4, "iptables: Permission denied"
        if op == "-L":
            return (0, "") if chain in self.chains else (1, "No chain/target/match")
        if op == "-N":
            self.chains[chain] = []
        elif op == "-C":
            return (0, "") if rest in self.chains[chain] else (1, "Bad rule")
        elif op == "-I":
            self.chains[chain].insert(int(rest[0]) - 1, rest[1:])
        elif op == "-F":
            self.chains[chain] = []
        elif op == "-A":
            self.chains[chain].append(rest)
        return 0, ""


def _config(**values: str) -> AgentConfig:
    return AgentConfig.load(overrides=values)


def test_tunnel_mode_masquerades_pod_traffic_leaving_outside_the_overlay() -> None:
    ipt = FakeIptables()
    m = masquerade.Masquerader(_config(), run=ipt)
    m.sync(["10.244.1.0/24"])
    assert ipt.chains["POSTROUTING"] == [["-j", "CILIUM_POST_nat"]]
    assert ipt.chains["CILIUM_POST_nat"] == [
        ["-d", "10.244.1.0/24", "-m", "comment", "--comment", masquerade.KEEP_COMMENT,
         "-j", "RETURN"],
        ["-s", "10.244.1.0/24", "!", "-o", "cilium_+",
         "-m", "comment", "--comment", masquerade.COMMENT, "-j", "MASQUERADE"],
    ]  # fmt: skip
    assert m.status() == {"enabled": True, "mode": "IPTables", "enabledProtocols": {"ipv4": True}}
    assert _masquerading(m.status()) == "IPTables [IPv4: Enabled, IPv6: Disabled]"


def test_a_second_sync_or_a_restarted_agent_rewrites_instead_of_adding() -> None:
    ipt = FakeIptables()
    masquerade.Masquerader(_config(), run=ipt).sync(["10.244.1.0/24"])
    again = masquerade.Masquerader(_config(), run=ipt)  # the restarted agent
    again.sync(["10.244.1.0/24", "10.244.9.0/24", "fd00::/64"])
    assert ipt.chains["POSTROUTING"] == [["-j", "CILIUM_POST_nat"]]
    # every pod CIDR is kept from every other, then each is masqueraded once
    assert [r[:2] for r in ipt.chains["CILIUM_POST_nat"]] == [
        ["-d", "10.244.1.0/24"], ["-d", "10.244.9.0/24"],
        ["-s", "10.244.1.0/24"], ["-s", "10.244.9.0/24"],
    ]  # fmt: skip


def test_native_routing_keeps_the_native_routing_cidr_unmasqueraded() -> None:
    ipt = FakeIptables()
    config = _config(**{"routing-mode": "native", "ipv4-native-routing-cidr": "10.244.0.0/16"})
    masquerade.check_config(config)
    masquerade.Masquerader(config, run=ipt).sync(["10.244.1.0/24"])
    assert [r[:2] for r in ipt.chains["CILIUM_POST_nat"]] == [
        ["-d", "10.244.0.0/16"],
        ["-s", "10.244.1.0/24"],
    ]


def test_failure_and_waiting_show_in_status_not_as_enabled() -> None:
    m = masquerade.Masquerader(_config(), run=FakeIptables(fail_on="-N"))
    assert _masquerading(m.status()).endswith("waiting for this node's pod CIDRs")
    m.sync(["10.244.1.0/24"])
    line = _masquerading(m.status())
    assert line.startswith("IPTables [IPv4: Disabled") and "Permission denied" in line
    assert _masquerading({"enabled": False}) == "Disabled"


def test_configurations_this_agent_cannot_honour_are_refused() -> None:
    with pytest.raises(ConfigError, match="ipv4-native-routing-cidr") as native:
        masquerade.check_config(_config(**{"routing-mode": "native"}))
    assert "enableIPv4Masquerade=false" in str(native.value.hint)
    with pytest.raises(ConfigError, match=r"enable-bpf-masquerade=true \(flag\)") as bpf:
        _config(**{"enable-bpf-masquerade": "true"})
    assert "bpf.masquerade=false" in str(bpf.value.hint)
    assert not masquerade.wanted(_config(**{"enable-ipv4-masquerade": "false"}))


def test_kube_proxy_replacement_masquerades_nodeport_traffic_to_remote_backends_first() -> None:
    ipt = FakeIptables()
    config = _config(**{"kube-proxy-replacement": "true"})
    assert masquerade.needed(config)
    masquerade.Masquerader(config, run=ipt).sync(["10.244.1.0/24"])
    chain = ipt.chains["CILIUM_POST_nat"]
    # before the kept range: a remote backend may sit in it (native routing)
    assert chain[0] == [
        "-m", "mark", "--mark", "0xa00/0xf00",
        "-m", "comment", "--comment", masquerade.NODEPORT_COMMENT, "-j", "MASQUERADE",
    ]  # fmt: skip
    assert [r[:2] for r in chain[1:]] == [["-d", "10.244.1.0/24"], ["-s", "10.244.1.0/24"]]
    # the mark is the host program's MARK_MAGIC_NODEPORT_SNAT under MARK_MAGIC_MASK
    from pathlib import Path

    common = (Path(__file__).parents[3] / "bpf" / "lib" / "common.h").read_text()
    assert "#define MARK_MAGIC_NODEPORT_SNAT 0x0A00" in common
    assert "#define MARK_MAGIC_MASK 0x0F00" in common


def test_nodeport_rule_alone_when_pod_traffic_is_not_masqueraded() -> None:
    ipt = FakeIptables()
    config = _config(**{"kube-proxy-replacement": "true", "enable-ipv4-masquerade": "false"})
    assert masquerade.needed(config) and not masquerade.wanted(config)
    m = masquerade.Masquerader(config, run=ipt)
    m.sync(["10.244.1.0/24"])
    assert [r[-1] for r in ipt.chains["CILIUM_POST_nat"]] == ["MASQUERADE"]
    assert ipt.chains["CILIUM_POST_nat"][0][:2] == ["-m", "mark"]
    assert m.status() == {"enabled": False}
    assert not masquerade.needed(
        _config(**{"kube-proxy-replacement": "false", "enable-ipv4-masquerade": "false"})
    )
