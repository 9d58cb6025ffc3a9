"""The policy map compiler: the LPM keys it writes give, under the programs' lookup (longest
match for the remote identity and for the identity wildcard, deny wins), exactly the verdict
of the rules read directly. No kernel here: the kernel side is tests/datapath."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ciliumctl.datapath import maps
from ciliumctl.datapath.datapath import _port_blocks, compile_policy
from ciliumctl.datapath.errors import DatapathError
from ciliumctl.datapath.model import Direction, EndpointPolicy, PolicyEntry, Protocol

PROTOS = [Protocol.ANY, Protocol.TCP, Protocol.UDP]


def lpm_verdict(table: dict[bytes, bytes], ident: int, egress: int, proto: int, port: int) -> str:
    """What bpf_lxc.c's policy_check decides for one packet (flow: new)."""

    def longest(identity: int) -> tuple[int, int, int] | None:
        best = None
        for k, v in table.items():
            plen, kid, kdir, kproto, kport = maps.POLICY_KEY.unpack(k)
            if kid != identity or kdir != egress:
                continue
            if plen > 40 and kproto != proto:
                continue
            bits = plen - 48
            if bits > 0 and (struct.unpack(">H", kport)[0] >> (16 - bits)) != (port >> (16 - bits)):
                continue
            _, _, deny, flags, _, _ = maps.POLICY_VALUE.unpack(v)
            if best is None or plen > best[0]:
                best = (plen, deny, flags)
        return best

    a, b = longest(ident), longest(0)
    if (a and a[1]) or (b and b[1]):
        return "deny"
    if a or b:
        return "allow"
    cfg = table[maps.POLICY_KEY.pack(64, maps.POLICY_CONFIG_ID, maps.POLICY_CONFIG_DIR, 0, b"\0\0")]
    enforced = maps.POLICY_VALUE.unpack(cfg)[3] & (2 if egress else 1)
    return "deny" if enforced else "allow"


def rule_verdict(policy: EndpointPolicy, ident: int, egress: int, proto: int, port: int) -> str:
    """The rules read directly: any matching deny denies, else any matching allow allows."""

    def matches(e: PolicyEntry) -> bool:
        if int(e.direction) != egress or e.identity not in (0, ident):
            return False
        if e.protocol == Protocol.ANY:
            return True
        if int(e.protocol) != proto:
            return False
        if e.port == 0 and e.port_end == 0:
            return True
        return e.port <= port <= (e.port_end or e.port)

    hits = [e for e in policy.entries if matches(e)]
    if any(e.deny for e in hits):
        return "deny"
    if hits:
        return "allow"
    enforced = policy.egress_enforced if egress else policy.ingress_enforced
    return "deny" if enforced else "allow"


@st.composite
def entries(draw: st.DrawFn) -> PolicyEntry:
    proto = draw(st.sampled_from(PROTOS))
    port = end = 0
    if proto != Protocol.ANY and draw(st.booleans()):
        port = draw(st.integers(1, 300))
        end = draw(st.integers(port, 310)) if draw(st.booleans()) else port
    return PolicyEntry(
        identity=draw(st.sampled_from([0, 100, 200])),
        direction=draw(st.sampled_from([Direction.INGRESS, Direction.EGRESS])),
        protocol=proto,
        port=port,
        port_end=end,
        deny=draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(entries(), max_size=6),
    ingress=st.booleans(),
    egress=st.booleans(),
    packets=st.lists(
        st.tuples(
            st.sampled_from([100, 200, 300]),
            st.sampled_from([0, 1]),
            st.sampled_from([6, 17]),
            st.integers(0, 320),
        ),
        min_size=1,
        max_size=20,
    ),
)
def test_compiled_map_gives_the_rules_verdict(rules, ingress, egress, packets) -> None:  # type: ignore[no-untyped-def]
    policy = EndpointPolicy(tuple(rules), ingress, egress)
    table = compile_policy(policy)
    for ident, direction, proto, port in packets:
        assert lpm_verdict(table, ident, direction, proto, port) == rule_verdict(
            policy, ident, direction, proto, port
        )


@given(lo=st.integers(0, 65535), span=st.integers(0, 70000))
def test_port_blocks_cover_the_range_exactly(lo: int, span: int) -> None:
    hi = min(65535, lo + span)
    covered = []
    for start, bits in _port_blocks(lo, hi):
        size = 1 << (16 - bits)
        assert start % size == 0  # prefix-aligned
        covered.extend(range(start, start + size))
    assert covered == list(range(lo, hi + 1))


def test_bad_entries_name_the_entry_and_the_fix() -> None:
    with pytest.raises(DatapathError, match=r"ep policy: entry 0: a port \(80\) needs a protocol"):
        compile_policy(EndpointPolicy((PolicyEntry(0, Direction.INGRESS, port=80),)), "ep policy")
    with pytest.raises(DatapathError, match="ICMP types are 0-255"):
        compile_policy(
            EndpointPolicy((PolicyEntry(0, Direction.INGRESS, Protocol.ICMP, 300, 300),))
        )
