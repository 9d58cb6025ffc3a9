"""The datapath's pinned maps: layouts (mirroring bpf/lib/common.h), creation and decoding.

User space creates and pins every map before a program is compiled, so a restarted agent, the
programs of every endpoint and ``cilium-dbg bpf ... list`` share the same kernel objects. Map
names follow Cilium's.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ciliumctl.datapath import bpfsys
from ciliumctl.datapath.bpfsys import Map
from ciliumctl.datapath.errors import DatapathError

DEFAULT_PIN_ROOT = "/sys/fs/bpf/tc/globals"
BPF_FS_MAGIC = 0xCAFE4A11

IPCACHE = "cilium_ipcache"
POLICY_OUTER = "cilium_policy_v2"
CT4 = "cilium_ct4_global"
CT6 = "cilium_ct6_global"
LB4_SERVICES = "cilium_lb4_services_v2"
LB4_BACKENDS = "cilium_lb4_backends_v3"
LB4_REVNAT = "cilium_lb4_reverse_nat"
LXC = "cilium_lxc"
METRICS = "cilium_metrics"
EVENTS = "cilium_events"

# Struct formats (little-endian hosts; network-order fields are kept as raw bytes).
IPCACHE_KEY = struct.Struct("<IB3x16s")
IPCACHE_VALUE = struct.Struct("<I4sI")
POLICY_KEY = struct.Struct("<IIBB2s")
POLICY_VALUE = struct.Struct("<QQBBHI")
CT4_KEY = struct.Struct("<4s4s2s2sBBH")
CT6_KEY = struct.Struct("<16s16s2s2sBBH")
CT_VALUE = struct.Struct("<QQQIIHB5x")
LB4_KEY = struct.Struct("<4s2sHBBH")
LB4_SERVICE = struct.Struct("<IHHB3x")
LB4_BACKEND = struct.Struct("<4s2sBB")
LB4_REVNAT_KEY = struct.Struct("<H")
LB4_REVNAT_VALUE = struct.Struct("<4s2sH")
LXC_KEY = struct.Struct("<16sB3x")
LXC_VALUE = struct.Struct("<IHHI6s6s")
METRICS_KEY = struct.Struct("<BBHI")
METRICS_VALUE = struct.Struct("<QQ")

POLICY_FULL_PREFIX = 64
POLICY_CONFIG_ID = 0xFFFFFFFF
POLICY_CONFIG_DIR = 0xFF
POLICY_FLAG_L4 = 1
POLICY_DEFAULT_MAX = 16384


@dataclass(frozen=True)
class MapSpec:
    """How a pinned map is created; its struct formats say how it is read."""

    name: str
    type: int
    key: struct.Struct | None
    value: struct.Struct | None
    max_entries: int
    flags: int = 0

    @property
    def key_size(self) -> int:
        return self.key.size if self.key else 0

    @property
    def value_size(self) -> int:
        return self.value.size if self.value else 0


def specs(ct_max_entries: int = 262144, ipcache_max_entries: int = 512000) -> dict[str, MapSpec]:
    """The global maps, sized as the caller (the agent's configuration) asks."""
    h, lpm, pc = bpfsys.HASH, bpfsys.LPM_TRIE, bpfsys.PERCPU_HASH
    nopre = bpfsys.F_NO_PREALLOC
    out = [
        MapSpec(IPCACHE, lpm, IPCACHE_KEY, IPCACHE_VALUE, ipcache_max_entries, nopre),
        MapSpec(CT4, h, CT4_KEY, CT_VALUE, ct_max_entries, nopre),
        MapSpec(CT6, h, CT6_KEY, CT_VALUE, ct_max_entries, nopre),
        MapSpec(LB4_SERVICES, h, LB4_KEY, LB4_SERVICE, 65536),
        MapSpec(LB4_BACKENDS, h, struct.Struct("<I"), LB4_BACKEND, 65536),
        MapSpec(LB4_REVNAT, h, LB4_REVNAT_KEY, LB4_REVNAT_VALUE, 65536),
        MapSpec(LXC, h, LXC_KEY, LXC_VALUE, 65535),
        MapSpec(METRICS, pc, METRICS_KEY, METRICS_VALUE, 1024),
        MapSpec(EVENTS, bpfsys.RINGBUF, None, None, 1 << 20),
    ]
    return {s.name: s for s in out}


def policy_inner_spec(max_entries: int = POLICY_DEFAULT_MAX) -> MapSpec:
    return MapSpec(
        "cilium_policy",
        bpfsys.LPM_TRIE,
        POLICY_KEY,
        POLICY_VALUE,
        max_entries,
        bpfsys.F_NO_PREALLOC,
    )


def check_bpffs(root: str) -> None:
    """Fail with one line when ``root`` is not on a mounted bpffs."""
    probe = root
    while not os.path.exists(probe):
        probe = os.path.dirname(probe) or "/"
    best = ""
    fstype = ""
    real = os.path.realpath(probe)
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            mnt = left.split()[4]
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                best, fstype = mnt, right.split()[0]
    if fstype != "bpf":
        raise DatapathError(
            f"{root} is not on a BPF filesystem (found {fstype or 'none'} at {best or '/'})",
            "mount one: mount -t bpf bpf /sys/fs/bpf",
        )


def open_or_create(root: str, spec: MapSpec, inner_map_fd: int = 0) -> Map:
    """Open ``root/name`` if pinned (checking its layout), else create and pin it."""
    path = os.path.join(root, spec.name)
    if os.path.exists(path):
        m = Map.open_pinned(path)
        i = m.info
        if (i.type, i.key_size, i.value_size) != (spec.type, spec.key_size, spec.value_size):
            m.close()
            raise DatapathError(
                f"pinned map {path} has another layout (type {i.type}, key {i.key_size} B, "
                f"value {i.value_size} B; expected {spec.type}, {spec.key_size}, "
                f"{spec.value_size})",
                f"remove the stale pin: rm {path}",
            )
        return m
    m = Map.create(
        spec.type,
        spec.key_size,
        spec.value_size,
        spec.max_entries,
        spec.name,
        spec.flags,
        inner_map_fd,
    )
    m.pin(path)
    return m


# --- address helpers ---------------------------------------------------------------------


def addr16(address: str) -> tuple[int, bytes]:
    """(family 4|6, address bytes padded to 16)."""
    ip = ipaddress.ip_address(address)
    return ip.version, ip.packed.ljust(16, b"\0")


def addr_str(family: int, raw: bytes) -> str:
    return str(ipaddress.ip_address(raw[:4] if family == 4 else raw[:16]))


def ipcache_key(prefix: str) -> bytes:
    """The LPM key of ``a.b.c.d[/n]`` or ``x::y[/n]`` (host bits cleared).

    Parsed with inet_pton rather than :mod:`ipaddress`: an agent syncs 100,000s of prefixes.
    Raises ValueError for anything that is not an IP prefix.
    """
    addr, _, plen_text = prefix.partition("/")
    v6 = ":" in addr
    try:
        raw = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, addr)
    except OSError:
        raise ValueError(f"{prefix!r} is not an IP prefix") from None
    maxlen = 128 if v6 else 32
    if plen_text and not plen_text.isdigit():
        raise ValueError(f"{prefix!r} is not an IP prefix")
    plen = int(plen_text) if plen_text else maxlen
    if plen > maxlen:
        raise ValueError(f"{prefix!r} is not an IP prefix")
    if plen < maxlen:
        value = int.from_bytes(raw, "big") & ~((1 << (maxlen - plen)) - 1)
        raw = value.to_bytes(maxlen // 8, "big")
    return IPCACHE_KEY.pack(32 + plen, 6 if v6 else 4, raw)


def port_bytes(port: int) -> bytes:
    return struct.pack(">H", port)


# --- decoding for dumps ------------------------------------------------------------------


def _decode_ipcache(k: bytes, v: bytes) -> dict[str, Any]:
    plen, fam, addr = IPCACHE_KEY.unpack(k)
    ident, tunnel, _ = IPCACHE_VALUE.unpack(v)
    out: dict[str, Any] = {"prefix": f"{addr_str(fam, addr)}/{plen - 32}", "identity": ident}
    if tunnel != b"\0\0\0\0":
        out["tunnel_endpoint"] = socket.inet_ntoa(tunnel)
    return out


def decode_policy(k: bytes, v: bytes) -> dict[str, Any]:
    plen, ident, egress, proto, dport = POLICY_KEY.unpack(k)
    packets, nbytes, deny, flags, _, _ = POLICY_VALUE.unpack(v)
    if ident == POLICY_CONFIG_ID and egress == POLICY_CONFIG_DIR:
        return {
            "config": True,
            "ingress_enforced": bool(flags & 1),
            "egress_enforced": bool(flags & 2),
        }
    port_bits = max(0, plen - 48)
    port = struct.unpack(">H", dport)[0]
    span = 1 << (16 - port_bits) if port_bits else 0
    return {
        "identity": ident,
        "direction": "egress" if egress else "ingress",
        "protocol": proto if plen >= 48 else 0,
        "port": port if port_bits else 0,
        "port_end": port + span - 1 if port_bits else 0,
        "deny": bool(deny),
        "packets": packets,
        "bytes": nbytes,
    }


def _decode_ct(fmt: struct.Struct, fam: int) -> Any:
    def dec(k: bytes, v: bytes) -> dict[str, Any]:
        s, d, sp, dp, proto, direction, _ = fmt.unpack(k)
        exp, pk, by, src_id, backend, revnat, flags = CT_VALUE.unpack(v)
        return {
            "src": addr_str(fam, s),
            "dst": addr_str(fam, d),
            "sport": struct.unpack(">H", sp)[0],
            "dport": struct.unpack(">H", dp)[0],
            "proto": proto,
            "dir": ["ingress", "egress", "service", "nodeport"][direction]
            if direction < 4
            else direction,
            "expires": exp,
            "packets": pk,
            "bytes": by,
            "src_identity": src_id,
            "backend_id": backend,
            "rev_nat_index": revnat,
            "flags": flags,
        }

    return dec


def _decode_lb4_service(k: bytes, v: bytes) -> dict[str, Any]:
    addr, port, slot, proto, _, _ = LB4_KEY.unpack(k)
    backend, cnt, revnat, _ = LB4_SERVICE.unpack(v)
    return {
        "frontend": f"{socket.inet_ntoa(addr)}:{struct.unpack('>H', port)[0]}",
        "proto": proto,
        "slot": slot,
        "backend_id": backend,
        "count": cnt,
        "rev_nat_index": revnat,
    }


def _decode_lb4_backend(k: bytes, v: bytes) -> dict[str, Any]:
    (bid,) = struct.unpack("<I", k)
    addr, port, _, _ = LB4_BACKEND.unpack(v)
    return {"id": bid, "address": f"{socket.inet_ntoa(addr)}:{struct.unpack('>H', port)[0]}"}


def _decode_revnat(k: bytes, v: bytes) -> dict[str, Any]:
    (idx,) = LB4_REVNAT_KEY.unpack(k)
    addr, port, _ = LB4_REVNAT_VALUE.unpack(v)
    return {"index": idx, "address": f"{socket.inet_ntoa(addr)}:{struct.unpack('>H', port)[0]}"}


def _decode_lxc(k: bytes, v: bytes) -> dict[str, Any]:
    addr, fam = LXC_KEY.unpack(k)
    ifindex, ep_id, _, ident, mac, node_mac = LXC_VALUE.unpack(v)
    return {
        "address": addr_str(fam, addr),
        "ifindex": ifindex,
        "endpoint_id": ep_id,
        "identity": ident,
        "mac": mac.hex(":"),
        "node_mac": node_mac.hex(":"),
    }


def _decode_policy_outer(k: bytes, v: bytes) -> dict[str, Any]:
    """An endpoint's slot of cilium_policy_v2: the kernel id of its policy map."""
    return {"endpoint_id": struct.unpack("<I", k)[0], "policy_map_id": struct.unpack("<I", v)[0]}


DECODERS: dict[str, Any] = {
    POLICY_OUTER: _decode_policy_outer,
    IPCACHE: _decode_ipcache,
    CT4: _decode_ct(CT4_KEY, 4),
    CT6: _decode_ct(CT6_KEY, 6),
    LB4_SERVICES: _decode_lb4_service,
    LB4_BACKENDS: _decode_lb4_backend,
    LB4_REVNAT: _decode_revnat,
    LXC: _decode_lxc,
}


def dump(m: Map, name: str) -> Iterator[dict[str, Any]]:
    """Decoded entries of a map (raw hex for maps without a decoder)."""
    base = "cilium_policy" if name.startswith("cilium_policy_") and name != POLICY_OUTER else name
    if base == METRICS:
        for k, v in m.items():
            reason, direction, _, _ = METRICS_KEY.unpack(k)
            count = sum(METRICS_VALUE.unpack(c)[0] for c in m.percpu_values(v))
            nbytes = sum(METRICS_VALUE.unpack(c)[1] for c in m.percpu_values(v))
            yield {"reason": reason, "direction": direction, "count": count, "bytes": nbytes}
        return
    dec = decode_policy if base == "cilium_policy" else DECODERS.get(base)
    for k, v in m.items():
        yield dec(k, v) if dec else {"key": k.hex(), "value": v.hex()}
