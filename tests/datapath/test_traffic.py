"""Real traffic between network namespaces this test creates: two (three) pods on one node.

The node is a namespace of its own; nothing routes out of it. The receiving process says what
arrived, so a drop is proven by absence at the receiver, not by a counter alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ciliumctl.datapath import Datapath, netlink
from ciliumctl.datapath.events import DropReason, EventType
from ciliumctl.datapath.model import (
    Backend,
    Direction,
    EndpointPolicy,
    PolicyEntry,
    Protocol,
    ServiceFrontend,
)
from tests.datapath.conftest import Namespaces, _require_root
from tests.datapath.traffic import Node, Server, probe

IN, EG = Direction.INGRESS, Direction.EGRESS
ID_CLIENT, ID_SERVER, ID_OTHER = 1000, 2000, 3000
CLIENT4, CLIENT6 = "10.200.0.1", "fd00:200::1"
SERVER4, SERVER6 = "10.200.0.2", "fd00:200::2"
OTHER4 = "10.200.0.3"


@pytest.fixture(scope="module")
def node(bpffs: str) -> Iterator[Node]:
    _require_root()
    ns = Namespaces()
    root = os.path.join(bpffs, "one-node")
    os.makedirs(root)
    try:
        node_ns = ns.new("node")
        netlink.enable_forwarding(node_ns)
        dp = Datapath(root, netns=node_ns, routing="native")
        n = Node(node_ns, dp)
        n.add_pod("client", ns.new("client"), 11, ID_CLIENT, CLIENT4, CLIENT6)
        n.add_pod("server", ns.new("server"), 12, ID_SERVER, SERVER4, SERVER6)
        n.add_pod("other", ns.new("other"), 13, ID_OTHER, OTHER4)
        yield n
        dp.close()
    finally:
        ns.cleanup()


@pytest.fixture
def servers(node: Node) -> Iterator[dict[str, Server]]:
    srv = node.pods["server"].netns
    started = {
        "tcp80": Server(srv, "tcp", 80),
        "tcp81": Server(srv, "tcp", 81),
        "udp53": Server(srv, "udp", 53),
    }
    try:
        yield started
    finally:
        for s in started.values():
            s.stop()


def set_policy(
    node: Node, pod: str, *entries: PolicyEntry, ingress: bool = True, egress: bool = False
) -> None:
    node.dp.replace_policy(node.pods[pod].spec.id, EndpointPolicy(tuple(entries), ingress, egress))
    node.dp.ct_flush()


def test_programs_are_attached_on_the_host_side(node: Node) -> None:
    attached = netlink.attached_programs("lxc11", node.netns)
    assert attached == {"ingress": "cil_from_container", "egress": "cil_to_container"}


def test_tcp_udp_icmp_allowed_and_denied_by_identity_and_port(
    node: Node, servers: dict[str, Server]
) -> None:
    client, other = node.pods["client"].netns, node.pods["other"].netns
    set_policy(
        node,
        "server",
        PolicyEntry(ID_CLIENT, IN, Protocol.TCP, 80, 80),
        PolicyEntry(ID_CLIENT, IN, Protocol.UDP, 53, 53),
        PolicyEntry(ID_CLIENT, IN, Protocol.ICMP, 8, 8),
        PolicyEntry(ID_CLIENT, IN, Protocol.ICMPV6, 128, 128),
    )
    assert probe(client, "tcp", SERVER4, "80", "allowed-tcp") == (0, "ok allowed-tcp")
    assert probe(client, "tcp", SERVER6, "80", "allowed-tcp6") == (0, "ok allowed-tcp6")
    assert probe(client, "udp", SERVER4, "53", "allowed-udp") == (0, "ok allowed-udp")
    assert probe(client, "ping", SERVER4)[0] == 0
    assert probe(client, "ping", SERVER6)[0] == 0
    # Denied: wrong port for the client; any port for another identity.
    assert probe(client, "tcp", SERVER4, "81", "denied-port")[0] == 1
    assert probe(other, "tcp", SERVER4, "80", "denied-identity")[0] == 1
    assert probe(other, "udp", SERVER4, "53", "denied-udp")[0] == 1
    assert probe(other, "ping", SERVER4)[0] == 1

    got = servers["tcp80"].received() + servers["tcp81"].received() + servers["udp53"].received()
    assert sorted(got) == sorted(
        [
            f"got tcp {CLIENT4} allowed-tcp",
            f"got tcp {CLIENT6} allowed-tcp6",
            f"got udp {CLIENT4} allowed-udp",
        ]
    )
    assert node.dp.metrics()[(int(DropReason.POLICY_DENIED), "ingress")][0] >= 4


def test_egress_policy_and_deny(node: Node, servers: dict[str, Server]) -> None:
    client = node.pods["client"].netns
    set_policy(node, "server", PolicyEntry(0, IN))
    node.dp.replace_policy(
        11,
        EndpointPolicy(
            (
                PolicyEntry(ID_SERVER, EG),
                PolicyEntry(ID_SERVER, EG, Protocol.TCP, 81, 81, deny=True),
            ),
            ingress_enforced=False,
            egress_enforced=True,
        ),
    )
    reader = node.dp.events()
    try:
        reader.drain()
        assert probe(client, "tcp", SERVER4, "80", "egress-ok")[0] == 0
        assert probe(client, "tcp", SERVER4, "81", "egress-denied")[0] == 1
        assert probe(client, "tcp", OTHER4, "80", "not-allowed")[0] == 1
        drops = [e for e in reader.read(0.5) if e.type == EventType.DROP]
    finally:
        reader.close()
        node.dp.replace_policy(11, EndpointPolicy())
    assert servers["tcp81"].received() == []
    assert {(d.reason, d.dst, d.dport, d.direction, d.endpoint) for d in drops} == {
        (DropReason.POLICY_DENY, SERVER4, 81, EG, 11),
        (DropReason.POLICY_DENIED, OTHER4, 80, EG, 11),
    }


def test_cluster_ip_spreads_connections_over_two_backends(node: Node) -> None:
    client = node.pods["client"].netns
    set_policy(node, "server", PolicyEntry(0, IN))
    set_policy(node, "other", PolicyEntry(0, IN))
    backends = [
        Server(node.pods["server"].netns, "tcp", 8080),
        Server(node.pods["other"].netns, "tcp", 8080),
    ]
    node.dp.upsert_service(
        ServiceFrontend("10.96.0.10", 80, backends=(Backend(SERVER4, 8080), Backend(OTHER4, 8080)))
    )
    try:
        replies = [probe(client, "tcp", "10.96.0.10", "80", f"conn{i}") for i in range(16)]
        assert all(r == (0, f"ok conn{i}") for i, r in enumerate(replies))  # reverse NAT works
        seen = [len(b.received()) for b in backends]
        assert sum(seen) == 16 and min(seen) >= 1, seen
    finally:
        node.dp.delete_service("10.96.0.10", 80)
        for b in backends:
            b.stop()
    assert probe(client, "tcp", "10.96.0.10", "80", "gone")[0] == 1


def test_service_without_backend_drops_with_its_reason(node: Node) -> None:
    node.dp.upsert_service(ServiceFrontend("10.96.0.11", 80))
    reader = node.dp.events()
    try:
        reader.drain()
        assert probe(node.pods["client"].netns, "tcp", "10.96.0.11", "80", "x")[0] == 1
        drops = [e for e in reader.read(0.5) if e.type == EventType.DROP]
    finally:
        reader.close()
        node.dp.delete_service("10.96.0.11", 80)
    assert drops and {d.reason for d in drops} == {DropReason.NO_SERVICE}


def test_policy_swap_under_load_never_lets_a_denied_packet_through(
    node: Node, servers: dict[str, Server]
) -> None:
    """Port 53 allowed, port 54 denied, in two different policies swapped 40 times while the
    client streams to both; the receiver must see port-53 traffic throughout and no port 54."""
    import subprocess
    import time

    from tests.datapath.traffic import in_ns

    client, srv = node.pods["client"].netns, node.pods["server"].netns
    denied = Server(srv, "udp", 54)
    filler = tuple(
        PolicyEntry(10000 + i, IN, Protocol.TCP, 1000 + i, 1000 + i) for i in range(1000)
    )
    base = (
        PolicyEntry(ID_CLIENT, IN, Protocol.UDP, 53, 53),
        PolicyEntry(ID_CLIENT, IN, Protocol.UDP, 54, 54, deny=True),
    )
    policies = [
        EndpointPolicy(base + filler, True),
        EndpointPolicy((*base[:1], PolicyEntry(ID_OTHER, IN)), True),
    ]
    set_policy(node, "server", *policies[0].entries)
    try:
        allowed = subprocess.Popen(in_ns(client, "stream", SERVER4, "53", "600"))
        blocked = subprocess.Popen(in_ns(client, "stream", SERVER4, "54", "600"))
        swaps = 0
        while allowed.poll() is None or blocked.poll() is None:
            node.dp.replace_policy(12, policies[swaps % 2])
            swaps += 1
            time.sleep(0.02)
        assert swaps >= 20
        got53 = [ln for ln in servers["udp53"].received(0.5) if "seq" in ln]
        assert len(got53) >= 500  # the allowed flow kept flowing through every swap
        assert denied.received(0) == []
    finally:
        denied.stop()


def test_nodeport_from_a_client_outside_the_node(node: Node) -> None:
    """A client namespace on the node's external link reaches a pod through NodePort."""
    from tests.datapath.conftest import Namespaces as _Ns

    ns = _Ns()
    try:
        ext = ns.new("ext")
        netlink.create_veth("ext0", ext, node.netns)
        netlink.add_address("ext0", "192.168.77.1/24", node.netns)
        netlink.add_address("eth0", "192.168.77.2/24", ext)
        node.dp.attach_host_device("ext0")
        set_policy(node, "server", PolicyEntry(2, IN, Protocol.TCP, 8080, 8080))  # WORLD
        node.dp.upsert_service(
            ServiceFrontend(
                "192.168.77.1", 30080, Protocol.TCP, "NodePort", (Backend(SERVER4, 8080),)
            )
        )
        backend = Server(node.pods["server"].netns, "tcp", 8080)
        try:
            assert probe(ext, "tcp", "192.168.77.1", "30080", "via-nodeport") == (
                0,
                "ok via-nodeport",
            )
        finally:
            backend.stop()
            node.dp.delete_service("192.168.77.1", 30080)
        assert backend.lines == ["got tcp 192.168.77.2 via-nodeport"]
        assert any(r["dir"] == "nodeport" for r in node.dp.dump_map("cilium_ct4_global"))
        assert netlink.attached_programs("ext0", node.netns) == {
            "ingress": "cil_from_netdev",
            "egress": "cil_to_netdev",
        }
    finally:
        netlink.delete_link("ext0", node.netns)
        ns.cleanup()
