"""Two "nodes" (namespaces joined by a veth underlay) in tunnel mode: pods reach each other
through each node's collect-metadata cilium_vxlan, the tunnel key carrying the source identity,
the tunnel endpoint coming from the ipcache."""

from __future__ import annotations

import os

from ciliumctl.datapath import Datapath, netlink
from ciliumctl.datapath.events import DropReason, EventType, TracePoint
from ciliumctl.datapath.model import Direction, EndpointPolicy, IPCacheEntry, PolicyEntry, Protocol
from tests.datapath.conftest import Namespaces
from tests.datapath.traffic import Node, Server, probe

IN = Direction.INGRESS
POD1, POD2 = "10.201.1.10", "10.201.2.10"
POD1_6, POD2_6 = "fd00:201:1::10", "fd00:201:2::10"
UNDERLAY1, UNDERLAY2 = "10.250.0.1", "10.250.0.2"


def test_pods_on_two_nodes_over_vxlan(bpffs: str, netns: Namespaces) -> None:
    n1, n2 = netns.new("node1"), netns.new("node2")
    netlink.create_veth("under0", n2, n1, peer_ifname="under0")
    netlink.add_address("under0", f"{UNDERLAY1}/24", n1)
    netlink.add_address("under0", f"{UNDERLAY2}/24", n2)
    nodes = []
    for i, ns in ((1, n1), (2, n2)):
        netlink.enable_forwarding(ns)
        root = os.path.join(bpffs, f"vxlan-node{i}")
        os.makedirs(root)
        dp = Datapath(root, netns=ns, routing="tunnel")
        if i == 1:  # node 2 gets its cilium_vxlan with its first endpoint
            dp.setup_tunnel()
        nodes.append(Node(ns, dp))
    node1, node2 = nodes
    try:
        pod1 = node1.add_pod("pod1", netns.new("pod1"), 31, 1000, POD1, POD1_6)
        pod2 = node2.add_pod("pod2", netns.new("pod2"), 32, 2000, POD2, POD2_6)
        # Each node knows the other's pod through the ipcache, with the node as tunnel endpoint.
        for address in (POD2, POD2_6):
            node1.dp.upsert_ipcache(IPCacheEntry(address, 2000, UNDERLAY2))
        for address in (POD1, POD1_6):
            node2.dp.upsert_ipcache(IPCacheEntry(address, 1000, UNDERLAY1))
        node2.dp.replace_policy(
            32,
            EndpointPolicy(
                (
                    PolicyEntry(1000, IN, Protocol.TCP, 80, 80),
                    PolicyEntry(1000, IN, Protocol.ICMP, 8, 8),
                    PolicyEntry(1000, IN, Protocol.ICMPV6, 128, 128),
                ),
                ingress_enforced=True,
            ),
        )
        web, other = Server(pod2.netns, "tcp", 80), Server(pod2.netns, "tcp", 81)
        reader = node2.dp.events()
        try:
            reader.drain()
            assert probe(pod1.netns, "tcp", POD2, "80", "over-vxlan") == (0, "ok over-vxlan")
            assert probe(pod1.netns, "tcp", POD2_6, "80", "over-vxlan6") == (0, "ok over-vxlan6")
            assert probe(pod1.netns, "ping", POD2)[0] == 0
            assert probe(pod1.netns, "tcp", POD2, "81", "denied")[0] == 1
            events = reader.read(0.5)
        finally:
            reader.close()
            web.stop()
            other.stop()
        assert [ln for ln in web.lines] == [
            f"got tcp {POD1} over-vxlan",
            f"got tcp {POD1_6} over-vxlan6",
        ]
        assert other.lines == []
        traces = [
            e for e in events if e.type == EventType.TRACE and e.reason == TracePoint.FROM_OVERLAY
        ]
        assert traces and all(t.src_identity == 1000 for t in traces)  # identity from the VNI
        drops = [e for e in events if e.type == EventType.DROP]
        assert {(d.reason, d.src, d.dport, d.src_identity) for d in drops} == {
            (DropReason.POLICY_DENIED, POD1, 81, 1000)
        }
        for ns in (n1, n2):
            assert netlink.attached_programs("cilium_vxlan", ns) == {"ingress": "cil_from_overlay"}
        # Without a tunnel endpoint in the ipcache the packets go to the stack: native
        # routing over kernel routes to the other node's pod.
        node1.dp.upsert_ipcache(IPCacheEntry(POD2, 2000))
        node2.dp.upsert_ipcache(IPCacheEntry(POD1, 1000))
        node1.dp.ct_flush()
        node2.dp.ct_flush()
        assert probe(pod1.netns, "tcp", POD2, "80", "no-route")[0] == 1
        netlink.add_route(f"{POD2}/32", n1, gateway=UNDERLAY2)
        netlink.add_route(f"{POD1}/32", n2, gateway=UNDERLAY1)
        native = Server(pod2.netns, "tcp", 80)
        try:
            assert probe(pod1.netns, "tcp", POD2, "80", "native") == (0, "ok native")
        finally:
            native.stop()
        assert native.lines == [f"got tcp {POD1} native"]
    finally:
        for n in nodes:
            n.dp.close()
