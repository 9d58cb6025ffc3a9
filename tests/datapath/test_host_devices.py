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


def test_a_namespace_socket_is_made_in_it_without_moving_the_process(
    netns: Namespaces,
) -> None:
    """netlink's per-namespace sockets come from a short-lived thread that enters the
    namespace (no fork): they see that namespace's links, by name or by a /proc fd path, and
    every thread of the caller stays in its own namespace."""
    import os

    own = os.stat("/proc/thread-self/ns/net").st_ino
    ns = netns.new("sock")
    with netlink.ipr(ns) as ip:
        ip.link("add", ifname="only-here", kind="veth", peer="only-herep")
    assert os.stat("/proc/thread-self/ns/net").st_ino == own
    assert os.stat("/proc/self/ns/net").st_ino == own
    fd = os.open(netlink.netns_path(ns), os.O_RDONLY)
    try:
        # the agent's form: the plugin's descriptor, as /proc/self/fd/N
        assert netlink.ifindex("only-here", f"/proc/self/fd/{fd}") > 0
    finally:
        os.close(fd)
    with pytest.raises(CiliumctlError):
        netlink.ifindex("only-here")  # not in the caller's namespace
    with pytest.raises(FileNotFoundError):
        netlink.ifindex("lo", "no-such-namespace-here")
