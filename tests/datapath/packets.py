"""Crafted Ethernet/IPv4/IPv6/TCP/UDP/ICMP frames for BPF_PROG_TEST_RUN, with checksums."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

TCP, UDP, ICMP, ICMPV6, SCTP = 6, 17, 1, 58, 132
SYN, ACK, FIN = 0x02, 0x10, 0x01


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def l4(
    proto: int,
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    flags: int,
    payload: bytes,
    icmp_type: int,
    ident: int,
) -> bytes:
    if proto == TCP:
        hdr = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)
        seg = hdr + payload
        c = _csum(_pseudo(src, dst, TCP, len(seg)) + seg)
        return seg[:16] + struct.pack("!H", c) + seg[18:]
    if proto in (UDP, SCTP):
        seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        if proto == SCTP:
            return seg
        c = _csum(_pseudo(src, dst, UDP, len(seg)) + seg) or 0xFFFF
        return seg[:6] + struct.pack("!H", c) + seg[8:]
    # ICMP / ICMPv6: type, code, checksum, identifier, sequence
    seg = struct.pack("!BBHHH", icmp_type, 0, 0, ident, 1) + payload
    c = _csum((_pseudo(src, dst, ICMPV6, len(seg)) if proto == ICMPV6 else b"") + seg)
    return seg[:2] + struct.pack("!H", c) + seg[4:]


@dataclass(frozen=True)
class Frame:
    src: str
    dst: str
    proto: int = TCP
    sport: int = 40000
    dport: int = 80
    flags: int = SYN
    icmp_type: int = 8
    ident: int = 7
    payload: bytes = b"hello"

    def reply(self, **kw: object) -> Frame:
        """The frame travelling back (ports and addresses swapped, echo request -> reply)."""
        icmp_type = {8: 0, 128: 129}.get(self.icmp_type, self.icmp_type)
        base = dict(
            src=self.dst,
            dst=self.src,
            proto=self.proto,
            sport=self.dport,
            dport=self.sport,
            flags=SYN | ACK if self.flags == SYN else ACK,
            icmp_type=icmp_type,
            ident=self.ident,
            payload=self.payload,
        )
        base.update(kw)
        return Frame(**base)  # type: ignore[arg-type]

    def bytes(self) -> bytes:
        s = ipaddress.ip_address(self.src)
        d = ipaddress.ip_address(self.dst)
        seg = l4(
            self.proto,
            s.packed,
            d.packed,
            self.sport,
            self.dport,
            self.flags,
            self.payload,
            self.icmp_type,
            self.ident,
        )
        eth = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")
        if s.version == 4:
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(seg),
                1,
                0x4000,
                64,
                self.proto,
                0,
                s.packed,
                d.packed,
            )
            ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
            return eth + b"\x08\x00" + ip + seg
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(seg), self.proto, 64, s.packed, d.packed)
        return eth + b"\x86\xdd" + ip + seg


def parse(frame: bytes) -> dict[str, object]:
    """Addresses and ports of a (possibly rewritten) frame, and whether its checksums hold."""
    et = struct.unpack("!H", frame[12:14])[0]
    out: dict[str, object] = {}
    if et == 0x0800:
        ihl = (frame[14] & 0xF) * 4
        ip = frame[14 : 14 + ihl]
        out["src"] = str(ipaddress.ip_address(ip[12:16]))
        out["dst"] = str(ipaddress.ip_address(ip[16:20]))
        proto = ip[9]
        seg = frame[14 + ihl :]
        out["ip_csum_ok"] = _csum(ip) == 0
        src, dst = ip[12:16], ip[16:20]
    else:
        ip = frame[14:54]
        out["src"] = str(ipaddress.ip_address(ip[8:24]))
        out["dst"] = str(ipaddress.ip_address(ip[24:40]))
        proto = ip[6]
        seg = frame[54:]
        src, dst = ip[8:24], ip[24:40]
    if proto in (TCP, UDP):
        out["sport"], out["dport"] = struct.unpack("!HH", seg[:4])
        out["l4_csum_ok"] = _csum(_pseudo(src, dst, proto, len(seg)) + seg) == 0
    return out
