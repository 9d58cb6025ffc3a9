"""Monitor events from the ``cilium_events`` ring buffer, as typed records.

The ring buffer is read by mmap (no bcc needed), so a restarted agent or ``cilium-dbg
monitor`` can attach to the pinned map at any time.
"""

from __future__ import annotations

import enum
import mmap
import select
import struct
import time
from dataclasses import dataclass

from ciliumctl.datapath.bpfsys import Map
from ciliumctl.datapath.maps import addr_str
from ciliumctl.datapath.model import Direction


class EventType(enum.IntEnum):
    DROP = 1
    TRACE = 4
    POLICY_VERDICT = 5


class DropReason(enum.IntEnum):
    """Cilium's drop reason numbers for the reasons this datapath produces."""

    POLICY_DENIED = 133
    INVALID_PACKET = 134
    CT_UNKNOWN_PROTO = 137
    WRITE_ERROR = 141
    CT_MAP_INSERTION_FAILED = 155
    NO_SERVICE = 158
    POLICY_DENY = 181


DROP_REASON_TEXT = {
    0: "Forwarded",
    DropReason.POLICY_DENIED: "Policy denied",
    DropReason.INVALID_PACKET: "Invalid packet",
    DropReason.CT_UNKNOWN_PROTO: "CT: Unknown L4 protocol",
    DropReason.WRITE_ERROR: "Failed to write or read to/from packet",
    DropReason.CT_MAP_INSERTION_FAILED: "CT: Map insertion failed",
    DropReason.NO_SERVICE: "Service backend not found",
    DropReason.POLICY_DENY: "Policy denied by denylist",
}


class TracePoint(enum.IntEnum):
    TO_LXC = 0
    TO_OVERLAY = 4
    FROM_LXC = 5
    FROM_OVERLAY = 9


class PolicyMatch(enum.IntEnum):
    NONE = 0
    L3_ONLY = 1
    L3_L4 = 2
    L4_ONLY = 3
    ALL = 4


_EVENT = struct.Struct("<BBBBBBHIIHHIIBBH16s16sQ")


@dataclass(frozen=True)
class Event:
    """One monitor event: a drop, a policy verdict or a trace, with its 5-tuple."""

    type: EventType
    reason: int  # drop reason (DropReason), policy verdict's drop reason or 0, trace point
    direction: Direction
    protocol: int
    src: str
    dst: str
    sport: int
    dport: int
    src_identity: int
    dst_identity: int
    endpoint: int
    ifindex: int
    length: int
    dropped: bool
    match: PolicyMatch
    tcp_flags: int
    timestamp_ns: int

    @property
    def reason_text(self) -> str:
        if self.type == EventType.TRACE:
            return (
                TracePoint(self.reason).name
                if self.reason in TracePoint._value2member_map_
                else str(self.reason)
            )
        return DROP_REASON_TEXT.get(self.reason, f"reason {self.reason}")

    @classmethod
    def decode(cls, raw: bytes) -> Event:
        (
            etype,
            reason,
            direction,
            family,
            proto,
            match,
            ep,
            src_id,
            dst_id,
            sport,
            dport,
            ifindex,
            length,
            verdict,
            tcp_flags,
            _,
            saddr,
            daddr,
            ts,
        ) = _EVENT.unpack_from(raw)
        return cls(
            EventType(etype),
            reason,
            Direction(direction),
            proto,
            addr_str(family, saddr),
            addr_str(family, daddr),
            sport,
            dport,
            src_id,
            dst_id,
            ep,
            ifindex,
            length,
            bool(verdict),
            PolicyMatch(match) if match in PolicyMatch._value2member_map_ else PolicyMatch.NONE,
            tcp_flags,
            ts,
        )


_BUSY = 1 << 31
_DISCARD = 1 << 30
_HDR = 8


class EventReader:
    """Consumer of the ``cilium_events`` ring buffer (BPF_MAP_TYPE_RINGBUF) through mmap."""

    def __init__(self, ringbuf: Map) -> None:
        self._map = ringbuf
        self._size = ringbuf.info.max_entries
        self._mask = self._size - 1
        page = mmap.PAGESIZE
        self._cons = mmap.mmap(
            ringbuf.fd, page, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE
        )
        self._prod = mmap.mmap(
            ringbuf.fd,
            page + 2 * self._size,
            flags=mmap.MAP_SHARED,
            prot=mmap.PROT_READ,
            offset=page,
        )
        self._page = page
        self._poll = select.poll()
        self._poll.register(ringbuf.fd, select.POLLIN)

    def close(self) -> None:
        self._cons.close()
        self._prod.close()
        self._map.close()

    def drain(self) -> list[Event]:
        """Every event available now."""
        out: list[Event] = []
        (cons,) = struct.unpack_from("<Q", self._cons, 0)
        (prod,) = struct.unpack_from("<Q", self._prod, 0)
        while cons < prod:
            off = self._page + (cons & self._mask)
            length, _ = struct.unpack_from("<II", self._prod, off)
            if length & _BUSY:
                break
            size = length & ~(_BUSY | _DISCARD)
            if not length & _DISCARD:
                start = off + _HDR
                out.append(Event.decode(bytes(self._prod[start : start + size])))
            cons += (size + _HDR + 7) // 8 * 8
            struct.pack_into("<Q", self._cons, 0, cons)
        return out

    def read(self, timeout: float = 1.0, until: int = 0) -> list[Event]:
        """Events within ``timeout`` seconds; returns early once ``until`` (> 0) have arrived."""
        deadline = time.monotonic() + timeout
        out = self.drain()
        while time.monotonic() < deadline and (until == 0 or len(out) < until):
            self._poll.poll(max(1, int((deadline - time.monotonic()) * 1000)))
            out.extend(self.drain())
        return out
