"""The endpoint programs on crafted packets (BPF_PROG_TEST_RUN): no traffic, the real kernel.

One compile for the whole module: the policy, ipcache, services and CT change between tests
through the maps, exactly as the agent changes them at run time.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ciliumctl.datapath import Datapath, maps
from ciliumctl.datapath.bpfsys import prog_test_run
from ciliumctl.datapath.errors import DatapathError, PolicyTooLargeError
from ciliumctl.datapath.events import DropReason, EventReader, EventType, PolicyMatch
from ciliumctl.datapath.model import (
    Backend,
    Direction,
    EndpointPolicy,
    EndpointSpec,
    Enforcement,
    IPCacheEntry,
    PolicyEntry,
    Protocol,
    ServiceFrontend,
)
from tests.datapath.packets import ACK, ICMP, ICMPV6, SCTP, SYN, TCP, UDP, Frame, parse

OK, SHOT = 0, 2
POD4, POD6 = "10.0.0.10", "fd00::10"
A4, A6, B4 = "10.0.1.1", "fd00:1::1", "10.0.2.1"
ID_POD, ID_A, ID_B = 1000, 2000, 3000
EP = EndpointSpec(id=10, host_ifname="unused", identity=ID_POD, ipv4=POD4, ipv6=POD6)
IN, EG = Direction.INGRESS, Direction.EGRESS


@dataclass
class Env:
    dp: Datapath
    out_fd: int  # cil_from_container: what the pod sends
    in_fd: int  # cil_to_container: what the pod receives
    events: EventReader

    def send(self, frame: Frame) -> tuple[int, bytes]:
        r = prog_test_run(self.out_fd, frame.bytes())
        return r.retval, r.data

    def recv(self, frame: Frame) -> tuple[int, bytes]:
        r = prog_test_run(self.in_fd, frame.bytes())
        return r.retval, r.data

    def policy(self, *entries: PolicyEntry, ingress: bool = True, egress: bool = True) -> None:
        self.dp.replace_policy(EP.id, EndpointPolicy(tuple(entries), ingress, egress))
        self.dp.ct_flush()
        self.events.drain()


@pytest.fixture(scope="module")
def env(bpffs: str) -> Iterator[Env]:
    import os

    root = os.path.join(bpffs, "programs")
    os.makedirs(root)
    dp = Datapath(root, routing="native", ct_max_entries=64)
    for prefix, ident in (
        (POD4, ID_POD),
        (POD6, ID_POD),
        (A4, ID_A),
        (A6, ID_A),
        ("10.0.2.0/24", ID_B),
    ):
        dp.upsert_ipcache(IPCacheEntry(prefix, ident))
    dp.replace_policy(EP.id, EndpointPolicy())
    prog = dp.load_endpoint(EP)
    reader = dp.events()
    try:
        yield Env(dp, prog.fds["cil_from_container"], prog.fds["cil_to_container"], reader)
    finally:
        reader.close()
        prog.close()
        dp.close()


def verdict(env: Env) -> list:
    return [e for e in env.events.drain() if e.type == EventType.POLICY_VERDICT]


# --- lookup order --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (PolicyEntry(ID_A, IN, Protocol.TCP, 80, 80), PolicyMatch.L3_L4),
        (PolicyEntry(0, IN, Protocol.TCP, 80, 80), PolicyMatch.L4_ONLY),
        (PolicyEntry(ID_A, IN), PolicyMatch.L3_ONLY),
        (PolicyEntry(0, IN), PolicyMatch.ALL),
    ],
    ids=["l3-l4", "l4-only", "l3-only", "wildcard"],
)
def test_each_lookup_case_allows_its_packets(
    env: Env, entry: PolicyEntry, match: PolicyMatch
) -> None:
    env.policy(entry)
    assert env.recv(Frame(A4, POD4, dport=80))[0] == OK
    [v] = verdict(env)
    assert (v.match, v.dropped, v.src_identity, v.dst_identity, v.endpoint) == (
        match,
        False,
        ID_A,
        ID_POD,
        EP.id,
    )
    # Another identity (B) is only allowed by the identity-wildcard entries.
    expected = OK if entry.identity == 0 else SHOT
    assert env.recv(Frame(B4, POD4, dport=80))[0] == expected
    # Another port is only allowed by the port-wildcard entries.
    expected = OK if entry.protocol == Protocol.ANY else SHOT
    assert env.recv(Frame(A4, POD4, dport=81))[0] == expected


def test_lookup_order_prefers_l3_l4_then_l4_then_l3(env: Env) -> None:
    env.policy(
        PolicyEntry(ID_A, IN),
        PolicyEntry(0, IN, Protocol.TCP, 80, 80),
        PolicyEntry(ID_A, IN, Protocol.TCP, 443, 443),
    )
    env.recv(Frame(A4, POD4, dport=443))
    env.recv(Frame(A4, POD4, dport=80, sport=1))
    env.recv(Frame(A4, POD4, dport=22, sport=2))
    assert [v.match for v in verdict(env)] == [
        PolicyMatch.L3_L4,
        PolicyMatch.L4_ONLY,
        PolicyMatch.L3_ONLY,
    ]


def test_enforcement_off_allows_unmatched_but_still_denies(env: Env) -> None:
    env.policy(PolicyEntry(ID_B, IN, deny=True), ingress=False)
    assert env.recv(Frame(A4, POD4))[0] == OK
    assert env.recv(Frame(B4, POD4))[0] == SHOT
    env.policy(ingress=True)
    assert env.recv(Frame(A4, POD4))[0] == SHOT


def test_enforcement_modes(env: Env) -> None:
    rules = EndpointPolicy((PolicyEntry(ID_A, IN), PolicyEntry(ID_B, IN, deny=True)))
    env.dp.replace_policy(EP.id, rules, Enforcement.DEFAULT)  # not enforced: only the deny
    assert [env.recv(Frame(x, POD4))[0] for x in (A4, B4, "10.9.9.9")] == [OK, SHOT, OK]
    env.dp.ct_flush()
    env.dp.replace_policy(EP.id, rules, Enforcement.ALWAYS)  # default deny
    assert [env.recv(Frame(x, POD4))[0] for x in (A4, B4, "10.9.9.9")] == [OK, SHOT, SHOT]
    env.dp.ct_flush()
    env.dp.replace_policy(EP.id, rules, Enforcement.NEVER)  # nothing enforced
    assert [env.recv(Frame(x, POD4))[0] for x in (A4, B4, "10.9.9.9")] == [OK, OK, OK]


# --- deny, ranges, ICMP, IPv6 --------------------------------------------------------------


def test_deny_wins_over_allow(env: Env) -> None:
    # A specific allow under a broader deny of the same identity, and an L3 allow against an
    # identity-wildcard deny of one port.
    env.policy(
        PolicyEntry(ID_A, IN, Protocol.TCP, 80, 80),
        PolicyEntry(ID_A, IN, Protocol.TCP, deny=True),
        PolicyEntry(ID_B, IN),
        PolicyEntry(0, IN, Protocol.UDP, 53, 53, deny=True),
    )
    assert env.recv(Frame(A4, POD4, dport=80))[0] == SHOT
    assert env.recv(Frame(B4, POD4, proto=UDP, dport=53))[0] == SHOT
    assert env.recv(Frame(B4, POD4, proto=UDP, dport=54))[0] == OK
    drops = [e for e in env.events.drain() if e.type == EventType.DROP]
    assert [d.reason for d in drops] == [DropReason.POLICY_DENY, DropReason.POLICY_DENY]


def test_deny_range_partially_overlapping_an_allow_range(env: Env) -> None:
    env.policy(
        PolicyEntry(ID_A, IN, Protocol.TCP, 80, 100),
        PolicyEntry(ID_A, IN, Protocol.TCP, 90, 110, deny=True),
    )
    results = {
        p: env.recv(Frame(A4, POD4, dport=p, sport=p))[0] for p in (80, 89, 90, 97, 100, 101)
    }
    assert results == {80: OK, 89: OK, 90: SHOT, 97: SHOT, 100: SHOT, 101: SHOT}


def test_port_ranges(env: Env) -> None:
    env.policy(
        PolicyEntry(ID_A, IN, Protocol.TCP, 8000, 8099),
        PolicyEntry(ID_A, IN, Protocol.UDP, 1, 65535),
    )
    got = {
        p: env.recv(Frame(A4, POD4, dport=p, sport=p))[0] for p in (7999, 8000, 8050, 8099, 8100)
    }
    assert got == {7999: SHOT, 8000: OK, 8050: OK, 8099: OK, 8100: SHOT}
    assert env.recv(Frame(A4, POD4, proto=UDP, dport=65535))[0] == OK
    rows = env.dp.dump_map("cilium_policy_00010")
    tcp = sorted((r["port"], r["port_end"]) for r in rows if r.get("protocol") == TCP)
    assert tcp[0][0] == 8000 and tcp[-1][1] == 8099  # prefix blocks covering the range
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(tcp))
    assert [r["endpoint_id"] for r in env.dp.dump_map(maps.POLICY_OUTER)] == [EP.id]


def test_icmp_by_type_v4_and_v6(env: Env) -> None:
    env.policy(
        PolicyEntry(ID_A, IN, Protocol.ICMP, 8, 8), PolicyEntry(ID_A, IN, Protocol.ICMPV6, 128, 128)
    )
    assert env.recv(Frame(A4, POD4, proto=ICMP, icmp_type=8))[0] == OK
    assert env.recv(Frame(A4, POD4, proto=ICMP, icmp_type=13))[0] == SHOT
    assert env.recv(Frame(A6, POD6, proto=ICMPV6, icmp_type=128))[0] == OK
    assert env.recv(Frame(A6, POD6, proto=ICMPV6, icmp_type=139))[0] == SHOT
    # Neighbour discovery is never subject to policy.
    assert env.recv(Frame(A6, POD6, proto=ICMPV6, icmp_type=135))[0] == OK


def test_ipv6_tcp_and_udp_by_identity_and_port(env: Env) -> None:
    env.policy(
        PolicyEntry(ID_A, IN, Protocol.TCP, 443, 443), PolicyEntry(ID_A, EG, Protocol.UDP, 53, 53)
    )
    assert env.recv(Frame(A6, POD6, dport=443))[0] == OK
    assert env.recv(Frame(A6, POD6, dport=444))[0] == SHOT
    assert env.send(Frame(POD6, A6, proto=UDP, dport=53))[0] == OK
    assert env.send(Frame(POD6, A6, proto=UDP, dport=54))[0] == SHOT
    # An unknown address is identity WORLD (2), which the policy does not allow.
    assert env.send(Frame(POD6, "fd00:99::1", proto=UDP, dport=53))[0] == SHOT
    drops = [e for e in env.events.drain() if e.type == EventType.DROP]
    assert drops[-1].dst_identity == 2 and drops[-1].dst == "fd00:99::1"


def _with_hop_by_hop(frame: bytes) -> bytes:
    """Insert an 8-byte hop-by-hop options header (PadN) after the IPv6 header."""
    ip = bytearray(frame[14:54])
    hbh = bytes([ip[6], 0, 1, 4, 0, 0, 0, 0])
    ip[6] = 0
    ip[4:6] = (int.from_bytes(ip[4:6], "big") + 8).to_bytes(2, "big")
    return frame[:14] + bytes(ip) + hbh + frame[54:]


def test_ipv6_extension_headers_are_skipped(env: Env) -> None:
    env.policy(PolicyEntry(ID_A, IN, Protocol.TCP, 443, 443))
    ok = _with_hop_by_hop(Frame(A6, POD6, dport=443).bytes())
    assert prog_test_run(env.in_fd, ok).retval == OK
    bad = _with_hop_by_hop(Frame(A6, POD6, dport=444, sport=2).bytes())
    assert prog_test_run(env.in_fd, bad).retval == SHOT
    assert _drop(env).dport == 444  # the TCP port behind the extension header
    # MLD (ICMPv6 143 behind hop-by-hop), like neighbour discovery, is never policy-dropped.
    mld = _with_hop_by_hop(Frame(POD6, "ff02::16", proto=ICMPV6, icmp_type=143).bytes())
    assert prog_test_run(env.out_fd, mld).retval == OK


# --- conntrack ------------------------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), [(POD4, A4), (POD6, A6)], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("proto", [TCP, UDP, ICMP], ids=["tcp", "udp", "icmp"])
def test_reply_allowed_through_conntrack(env: Env, src: str, dst: str, proto: int) -> None:
    if proto == ICMP and ":" in src:
        proto = ICMPV6
    icmp_type = 128 if proto == ICMPV6 else 8
    env.policy(PolicyEntry(ID_A, EG))  # egress to A allowed, ingress enforced with nothing
    out = Frame(src, dst, proto=proto, icmp_type=icmp_type)
    assert env.send(out)[0] == OK
    assert env.recv(out.reply())[0] == OK  # the reply, through CT
    assert (
        env.recv(Frame(dst, src, proto=proto, icmp_type=icmp_type, sport=5555, ident=99))[0] == SHOT
    )
    assert env.send(out)[0] == OK  # established
    assert len(verdict(env)) == 2  # one for the new flow, one for the dropped new flow


@pytest.mark.parametrize(("src", "dst"), [(POD4, A4), (POD6, A6)], ids=["ipv4", "ipv6"])
def test_sctp_reply_allowed_through_conntrack(env: Env, src: str, dst: str) -> None:
    env.policy(PolicyEntry(ID_A, EG, Protocol.SCTP, 9000, 9000))
    out = Frame(src, dst, proto=SCTP, sport=5000, dport=9000)
    assert env.send(out)[0] == OK
    assert env.recv(out.reply())[0] == OK
    assert env.send(Frame(src, dst, proto=SCTP, dport=9001))[0] == SHOT
    assert env.recv(Frame(dst, src, proto=SCTP, sport=9000, dport=5001))[0] == SHOT


def test_new_flow_after_policy_change_is_checked_again(env: Env) -> None:
    env.policy(PolicyEntry(ID_A, IN, Protocol.TCP, 80, 80))
    old = Frame(A4, POD4, dport=80, sport=1111)
    assert env.recv(old)[0] == OK
    env.dp.replace_policy(
        EP.id, EndpointPolicy((PolicyEntry(ID_A, IN, Protocol.TCP, 81, 81),), True, True)
    )
    assert env.recv(Frame(A4, POD4, dport=80, sport=2222))[0] == SHOT
    assert env.recv(Frame(A4, POD4, dport=81, sport=2222))[0] == OK
    assert env.recv(Frame(A4, POD4, dport=80, sport=1111, flags=ACK))[0] == OK  # established


def test_ct_gc_removes_expired_entries(env: Env) -> None:
    env.policy(PolicyEntry(0, EG))
    env.send(Frame(POD4, A4, proto=UDP, dport=53))
    rows = env.dp.dump_map(maps.CT4)
    assert [(r["dst"], r["dport"], r["dir"]) for r in rows] == [(A4, 53, "egress")]
    assert env.dp.ct_gc() == 0
    assert env.dp.ct_gc(now=rows[0]["expires"] + 1) == 1
    assert env.dp.dump_map(maps.CT4) == []


def test_ct_lifetimes_follow_tcp_state(env: Env) -> None:
    import time

    env.policy(PolicyEntry(0, EG))
    syn = Frame(POD4, A4, dport=80, flags=SYN)
    env.send(syn)
    now = time.monotonic()
    [row] = env.dp.dump_map(maps.CT4)
    assert row["expires"] - now <= 61  # SYN timeout
    env.recv(syn.reply())
    [row] = env.dp.dump_map(maps.CT4)
    assert row["expires"] - now > 21000  # established
    env.send(Frame(POD4, A4, dport=80, flags=FIN_ACK))
    [row] = env.dp.dump_map(maps.CT4)
    assert row["expires"] - now <= 11  # closing


FIN_ACK = 0x11


# --- services -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "frontend", "fport", "proto"),
    [
        ("ClusterIP", "10.96.0.10", 80, TCP),
        ("NodePort", "192.168.50.1", 30080, TCP),
        ("ClusterIP", "10.96.0.53", 53, UDP),
    ],
    ids=["clusterip-tcp", "nodeport-tcp", "clusterip-udp"],
)
def test_service_dnat_and_reverse_nat(
    env: Env, kind: str, frontend: str, fport: int, proto: int
) -> None:
    env.policy(PolicyEntry(ID_B, EG, Protocol(proto), 8080, 8080))
    env.dp.upsert_service(
        ServiceFrontend(frontend, fport, Protocol(proto), kind, (Backend("10.0.2.5", 8080),))
    )
    req = Frame(POD4, frontend, proto=proto, dport=fport, sport=33000)
    rc, data = env.send(req)
    assert rc == OK
    out = parse(data)
    assert (out["dst"], out["dport"], out["ip_csum_ok"], out["l4_csum_ok"]) == (
        "10.0.2.5",
        8080,
        True,
        True,
    )
    rc, data = env.recv(
        Frame("10.0.2.5", POD4, proto=proto, sport=8080, dport=33000, flags=SYN | ACK)
    )
    assert rc == OK
    back = parse(data)
    assert (back["src"], back["sport"], back["ip_csum_ok"], back["l4_csum_ok"]) == (
        frontend,
        fport,
        True,
        True,
    )
    # The same flow keeps its backend; the CT holds it.
    assert parse(env.send(req)[1])["dst"] == "10.0.2.5"
    assert env.dp.delete_service(frontend, fport, Protocol(proto))


def test_service_backend_kept_per_flow_and_spread(env: Env) -> None:
    env.policy(PolicyEntry(ID_B, EG))
    env.dp.upsert_service(
        ServiceFrontend(
            "10.96.0.11",
            53,
            Protocol.UDP,
            backends=(Backend("10.0.2.5", 5353), Backend("10.0.2.6", 5353)),
        )
    )
    chosen = {}
    for sport in range(20000, 20030):
        f = Frame(POD4, "10.96.0.11", proto=UDP, dport=53, sport=sport)
        first = parse(env.send(f)[1])["dst"]
        assert parse(env.send(f)[1])["dst"] == first
        chosen[sport] = first
    assert set(chosen.values()) == {"10.0.2.5", "10.0.2.6"}
    rows = env.dp.dump_map(maps.LB4_SERVICES)
    assert sorted(r["slot"] for r in rows if r["frontend"] == "10.96.0.11:53") == [0, 1, 2]
    env.dp.delete_service("10.96.0.11", 53, Protocol.UDP)
    assert env.dp.dump_map(maps.LB4_BACKENDS) == []


# --- drop reasons in events and metrics -----------------------------------------------------


def _drop(env: Env) -> object:
    drops = [e for e in env.events.drain() if e.type == EventType.DROP]
    assert len(drops) == 1
    return drops[0]


def test_drop_policy_denied_event(env: Env) -> None:
    env.policy()
    assert env.recv(Frame(A4, POD4, dport=22, sport=40001))[0] == SHOT
    d = _drop(env)
    assert (d.reason, d.direction, d.src, d.dst, d.sport, d.dport, d.protocol) == (
        DropReason.POLICY_DENIED,
        IN,
        A4,
        POD4,
        40001,
        22,
        TCP,
    )
    assert (d.src_identity, d.dst_identity, d.endpoint, d.reason_text) == (
        ID_A,
        ID_POD,
        EP.id,
        "Policy denied",
    )


def test_drop_no_service_backend_event(env: Env) -> None:
    env.policy(PolicyEntry(0, EG))
    env.dp.upsert_service(ServiceFrontend("10.96.0.12", 80))
    assert env.send(Frame(POD4, "10.96.0.12", dport=80))[0] == SHOT
    d = _drop(env)
    assert (d.reason, d.direction, d.dst, d.dport) == (DropReason.NO_SERVICE, EG, "10.96.0.12", 80)
    env.dp.delete_service("10.96.0.12", 80)


def test_drop_invalid_packet_event(env: Env) -> None:
    env.policy(PolicyEntry(0, IN))
    raw = bytearray(Frame(A4, POD4).bytes())
    raw[14] = 0x43  # IHL 3: not a valid IPv4 header
    assert prog_test_run(env.in_fd, bytes(raw)).retval == SHOT
    assert _drop(env).reason == DropReason.INVALID_PACKET


def test_drop_unknown_l4_protocol_event(env: Env) -> None:
    env.policy(PolicyEntry(0, IN))
    raw = bytearray(Frame(A4, POD4, proto=UDP).bytes())
    raw[14 + 9] = 47  # GRE
    assert prog_test_run(env.in_fd, bytes(raw)).retval == SHOT
    assert _drop(env).reason == DropReason.CT_UNKNOWN_PROTO


def test_drop_ct_map_full_event(env: Env) -> None:
    env.policy(PolicyEntry(0, EG))
    ct = env.dp.maps[maps.CT4]
    for i in range(ct.info.max_entries):
        key = maps.CT4_KEY.pack(
            b"\x0a\x09\x00\x01", struct.pack(">I", i), b"\0\1", b"\0\2", UDP, 1, 0
        )
        ct.update(key, maps.CT_VALUE.pack(2**40, 0, 0, 0, 0, 0, 0))
    assert env.send(Frame(POD4, A4, proto=UDP, dport=53))[0] == SHOT
    d = _drop(env)
    assert (d.reason, d.reason_text) == (
        DropReason.CT_MAP_INSERTION_FAILED,
        "CT: Map insertion failed",
    )
    env.dp.ct_flush()


def test_metrics_count_per_reason_and_direction(env: Env) -> None:
    before = env.dp.metrics()
    env.policy(PolicyEntry(ID_A, IN))
    env.recv(Frame(A4, POD4))
    env.recv(Frame(B4, POD4))
    after = env.dp.metrics()

    def delta(key: tuple[int, str]) -> int:
        return after.get(key, (0, 0))[0] - before.get(key, (0, 0))[0]

    assert delta((0, "ingress")) == 1
    assert delta((int(DropReason.POLICY_DENIED), "ingress")) == 1


def test_ipcache_longest_prefix_and_bulk_insert(env: Env) -> None:
    env.policy(PolicyEntry(ID_B, IN), PolicyEntry(4000, IN))
    env.dp.upsert_ipcache_many([IPCacheEntry(f"10.3.{i}.0/24", 4000) for i in range(256)])
    env.dp.upsert_ipcache(IPCacheEntry("10.3.7.7/32", ID_B))
    assert env.recv(Frame("10.3.200.1", POD4))[0] == OK  # /24 -> 4000
    assert env.recv(Frame("10.3.7.7", POD4))[0] == OK  # /32 -> B
    assert env.recv(Frame("10.4.0.1", POD4))[0] == SHOT  # no entry: WORLD
    rows = {r["prefix"]: r["identity"] for r in env.dp.dump_map(maps.IPCACHE)}
    assert rows["10.3.7.7/32"] == ID_B and rows["10.3.255.0/24"] == 4000
    for i in range(256):
        env.dp.delete_ipcache(f"10.3.{i}.0/24")
    assert env.dp.delete_ipcache("10.3.7.7/32")
    assert env.recv(Frame("10.3.200.1", POD4, sport=3))[0] == SHOT


def test_ipcache_bad_input_is_rejected(env: Env) -> None:
    with pytest.raises(DatapathError, match="prefix 'nonsense' is not an IP prefix"):
        env.dp.upsert_ipcache(IPCacheEntry("nonsense", 5))
    with pytest.raises(DatapathError, match="tunnel endpoint 'fd00::1' is not an IPv4 address"):
        env.dp.upsert_ipcache_many(
            [IPCacheEntry("10.5.0.0/16", 5), IPCacheEntry("10.6.0.0/16", 6, "fd00::1")]
        )
    assert "10.5.0.0/16" not in {
        r["prefix"] for r in env.dp.dump_map(maps.IPCACHE)
    }  # all or nothing


# --- bad input ------------------------------------------------------------------------------


def test_policy_that_does_not_fit_keeps_the_old_one(env: Env) -> None:
    env.policy(PolicyEntry(ID_A, IN))
    too_big = EndpointPolicy(
        tuple(PolicyEntry(5000 + i, IN) for i in range(env.dp.policy_max_entries + 1)), True, True
    )
    with pytest.raises(PolicyTooLargeError, match="old policy stays in force"):
        env.dp.replace_policy(EP.id, too_big)
    assert env.recv(Frame(A4, POD4))[0] == OK


def test_invalid_policy_entry_is_rejected_before_anything_changes(env: Env) -> None:
    env.policy(PolicyEntry(ID_A, IN))
    with pytest.raises(DatapathError, match="entry 1: port range 90-80"):
        env.dp.replace_policy(
            EP.id,
            EndpointPolicy((PolicyEntry(0, IN), PolicyEntry(0, IN, Protocol.TCP, 90, 80)), True),
        )
    assert env.recv(Frame(B4, POD4))[0] == SHOT  # the old policy (A only) is in force
