"""The agent's external device for NodePort/hostPort: the ``devices`` option, else the
device of the IPv4 default route, read over netlink in a namespace of the test's own."""

from __future__ import annotations

import pytest

from ciliumctl.agent.config import AgentConfig
from ciliumctl.agent.main import host_devices
from ciliumctl.datapath import netlink
from ciliumctl.errors import CiliumctlError
from tests.datapath.conftest import Namespaces


def test_default_route_device_in_a_namespace(netns: Namespaces) -> None:
    ns = netns.new("dev")
    assert netlink.default_route_device(ns) is None  # only lo: no default route
    with netlink.ipr(ns) as ip:
        ip.link("add", ifname="ext0", kind="veth", peer="ext0p")
        ip.link("set", index=ip.link_lookup(ifname="ext0p")[0], state="up")
        idx = ip.link_lookup(ifname="ext0")[0]
        ip.addr("add", index=idx, address="192.0.2.10", prefixlen=24)
        ip.link("set", index=idx, state="up")
        ip.route("add", dst="0.0.0.0/0", gateway="192.0.2.1", oif=idx)
    assert netlink.default_route_device(ns) == "ext0"
    assert host_devices(AgentConfig.load(None, {}), ns) == ["ext0"]


def test_devices_option_wins_and_no_default_route_is_a_clear_error(netns: Namespaces) -> None:
    ns = netns.new("nodef")
    named = AgentConfig.load(None, {"devices": "eth1, eth2"})
    assert host_devices(named, ns) == ["eth1", "eth2"]
    with pytest.raises(CiliumctlError) as info:
        host_devices(AgentConfig.load(None, {}), ns)
    assert "no IPv4 default route" in str(info.value)
    assert "`devices` option" in str(info.value.hint)
