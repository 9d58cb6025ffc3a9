"""The :class:`Datapath` facade: what the agent calls to program the kernel.

One instance per node (per bpffs root). All state lives in pinned maps and attached tc
filters, so a new instance over the same root (a restarted agent) picks everything up while
packets keep flowing; programs are only compiled when an endpoint is created.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import threading
import time
from typing import Any, Literal, NamedTuple

from ciliumctl.datapath import bpfsys, maps, netlink
from ciliumctl.datapath.bpfsys import Map
from ciliumctl.datapath.errors import DatapathError, PolicyTooLargeError
from ciliumctl.datapath.events import EventReader
from ciliumctl.datapath.loader import (
    Program,
    drop_templates,
    load_from_template,
)
from ciliumctl.datapath.model import (
    EndpointPolicy,
    EndpointSpec,
    Enforcement,
    IPCacheEntry,
    PolicyEntry,
    Protocol,
    ServiceFrontend,
)

RoutingMode = Literal["tunnel", "native"]
_ICMP = (Protocol.ICMP, Protocol.ICMPV6)


class _Key(NamedTuple):
    """One LPM key of a policy map: identity, direction, protocol, port prefix."""

    identity: int
    egress: int
    protocol: int
    port: int
    port_bits: int  # 0..16 significant high bits of the port; ignored when protocol == 0

    def covers(self, other: _Key) -> bool:
        if self.egress != other.egress or self.identity not in (0, other.identity):
            return False
        if self.protocol == 0:
            return True
        if self.protocol != other.protocol:
            return False
        if other.protocol == 0:
            return False
        if self.port_bits > other.port_bits:
            return False
        shift = 16 - self.port_bits
        return (self.port >> shift) == (other.port >> shift) if self.port_bits else True

    def pack(self) -> bytes:
        plen = 40 if self.protocol == 0 else 48 + self.port_bits
        return maps.POLICY_KEY.pack(
            plen, self.identity, self.egress, self.protocol, maps.port_bytes(self.port)
        )


def _port_blocks(lo: int, hi: int) -> list[tuple[int, int]]:
    """Split the inclusive range lo..hi into prefix-aligned blocks (start, prefix bits)."""
    out: list[tuple[int, int]] = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << 16
        while size > hi - lo + 1:
            size >>= 1
        out.append((lo, 16 - size.bit_length() + 1))
        lo += size
    return out


def policy_keys(entry: PolicyEntry) -> list[_Key]:
    """The LPM keys of one policy entry (a port range becomes prefix-aligned blocks)."""
    ident, proto, port = entry.identity, int(entry.protocol), entry.port
    egress = int(entry.direction)
    if not 0 <= ident < maps.POLICY_CONFIG_ID:
        raise DatapathError(f"identity {ident} out of range")
    if proto == 0:
        if port or entry.port_end:
            raise DatapathError(
                f"a port ({port}) needs a protocol", "set protocol TCP, UDP or SCTP"
            )
        return [_Key(ident, egress, 0, 0, 0)]
    end = entry.port_end or port
    limit = 255 if proto in _ICMP else 65535
    if end == port and 0 < port <= limit:  # the common case: one port (or ICMP type)
        return [_Key(ident, egress, proto, port, 16)]
    if not 0 <= port <= end <= limit:
        raise DatapathError(
            f"port range {port}-{entry.port_end} is not within 0-{limit}",
            "use port <= port_end" + (" (ICMP types are 0-255)" if limit == 255 else ""),
        )
    if port == 0 and end == 0:
        return [_Key(ident, egress, proto, 0, 0)]
    return [_Key(ident, egress, proto, start, bits) for start, bits in _port_blocks(port, end)]


def _policy_value(deny: bool, l4: bool) -> bytes:
    return maps.POLICY_VALUE.pack(0, 0, 1 if deny else 0, maps.POLICY_FLAG_L4 if l4 else 0, 0, 0)


_VALUES = {(d, l4): _policy_value(d, l4) for d in (False, True) for l4 in (False, True)}


def compile_policy(policy: EndpointPolicy, where: str = "policy") -> dict[bytes, bytes]:
    """Packed key -> value of a policy map, deny winning over any allow it covers."""
    allow: dict[_Key, None] = {}
    deny: dict[_Key, None] = {}
    for i, entry in enumerate(policy.entries):
        try:
            keys = policy_keys(entry)
        except DatapathError as exc:
            raise DatapathError(f"{where}: entry {i}: {exc.message}", exc.hint) from None
        (deny if entry.deny else allow).update(dict.fromkeys(keys))
    # Deny keys by (direction, identity): an allow key is only covered by those of its own
    # identity or of the identity wildcard.
    deny_by: dict[tuple[int, int], list[_Key]] = {}
    for d in deny:
        deny_by.setdefault((d.egress, d.identity), []).append(d)
    out: dict[bytes, bytes] = {}
    pack = maps.POLICY_KEY.pack
    for group, always_deny in ((allow, False), (deny, True)):
        for key in group:
            denied = always_deny
            if not denied and deny_by:
                cands = deny_by.get((key.egress, key.identity), []) + deny_by.get(
                    (key.egress, 0), []
                )
                denied = any(d.covers(key) for d in cands)
            plen = 40 if key.protocol == 0 else 48 + key.port_bits
            k = pack(plen, key.identity, key.egress, key.protocol, key.port.to_bytes(2, "big"))
            out[k] = _VALUES[(denied, key.protocol != 0)]
    flags = (1 if policy.ingress_enforced else 0) | (2 if policy.egress_enforced else 0)
    cfg = maps.POLICY_KEY.pack(
        maps.POLICY_FULL_PREFIX, maps.POLICY_CONFIG_ID, maps.POLICY_CONFIG_DIR, 0, b"\0\0"
    )
    out[cfg] = maps.POLICY_VALUE.pack(0, 0, 0, flags, 0, 0)
    return out


class Datapath:
    """The node's eBPF datapath under one bpffs root."""

    def __init__(
        self,
        pin_root: str = maps.DEFAULT_PIN_ROOT,
        *,
        netns: str | None = None,
        routing: RoutingMode = "tunnel",
        vxlan_ifname: str = "cilium_vxlan",
        ct_max_entries: int = 262144,
        ipcache_max_entries: int = 512000,
        policy_max_entries: int = maps.POLICY_DEFAULT_MAX,
        trace_all: bool = False,
    ) -> None:
        if os.geteuid() != 0:
            raise DatapathError(
                "the eBPF datapath needs root (CAP_BPF, CAP_NET_ADMIN)", "run as root"
            )
        if routing not in ("tunnel", "native"):
            raise DatapathError(f"routing mode {routing!r} is unknown", "use tunnel or native")
        maps.check_bpffs(pin_root)
        os.makedirs(pin_root, exist_ok=True)
        self.pin_root = pin_root
        self.netns = netns
        self.routing: RoutingMode = routing
        self.vxlan_ifname = vxlan_ifname
        self.policy_max_entries = policy_max_entries
        self.trace_all = trace_all
        self.maps: dict[str, Map] = {}
        for spec in maps.specs(ct_max_entries, ipcache_max_entries).values():
            self.maps[spec.name] = maps.open_or_create(pin_root, spec)
        inner = maps.policy_inner_spec(policy_max_entries)
        with Map.create(
            inner.type, inner.key_size, inner.value_size, 1, "policy_tmpl", inner.flags
        ) as tmpl:
            outer = maps.MapSpec(
                maps.POLICY_OUTER,
                bpfsys.ARRAY_OF_MAPS,
                struct.Struct("<I"),
                struct.Struct("<I"),
                65536,
            )
            self.maps[maps.POLICY_OUTER] = maps.open_or_create(pin_root, outer, tmpl.fd)
        self._vxlan_ifindex = 0
        self._tunnel_lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close this process's map fds; pinned maps and attached programs stay."""
        drop_templates(self.pin_root)
        for m in self.maps.values():
            m.close()
        self.maps.clear()

    def __enter__(self) -> Datapath:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _pin(self, name: str) -> str:
        return os.path.join(self.pin_root, name)

    # --- routing -----------------------------------------------------------------------

    def setup_tunnel(self) -> int:
        """Create ``cilium_vxlan`` (collect metadata) and attach cil_from_overlay to it."""
        if self.routing != "tunnel":
            raise DatapathError("setup_tunnel needs routing mode tunnel", "use routing='tunnel'")
        idx = netlink.create_vxlan(self.vxlan_ifname, self.netns)
        prog = load_from_template(
            "bpf_overlay.c", ("cil_from_overlay",), self.pin_root, {}, {}, self.maps[maps.EVENTS].fd
        )
        try:
            netlink.attach_bpf(
                self.vxlan_ifname,
                "ingress",
                prog.fds["cil_from_overlay"],
                "cil_from_overlay",
                self.netns,
            )
        finally:
            prog.close()
        self._vxlan_ifindex = idx
        return idx

    def attach_host_device(self, ifname: str) -> None:
        """Serve NodePort frontends to clients outside the node on ``ifname`` (its external
        device): DNAT at tc ingress, reverse NAT of the replies at tc egress."""
        prog = load_from_template(
            "bpf_host.c",
            ("cil_from_netdev", "cil_to_netdev"),
            self.pin_root,
            {},
            {},
            self.maps[maps.EVENTS].fd,
        )
        try:
            netlink.attach_bpf(
                ifname, "ingress", prog.fds["cil_from_netdev"], "cil_from_netdev", self.netns
            )
            netlink.attach_bpf(
                ifname, "egress", prog.fds["cil_to_netdev"], "cil_to_netdev", self.netns
            )
        finally:
            prog.close()

    # --- endpoints ---------------------------------------------------------------------

    def create_endpoint(
        self,
        spec: EndpointSpec,
        policy: EndpointPolicy | None = None,
        programs: Program | None = None,
    ) -> None:
        """Register an endpoint, install its policy, compile and attach its programs
        (``programs``: already loaded by :meth:`load_endpoint`)."""
        if not 0 < spec.id < 65536:
            raise DatapathError(f"endpoint id {spec.id} is not within 1-65535")
        self.replace_policy(spec.id, policy or EndpointPolicy())
        with netlink.session(self.netns):  # one netlink socket for the lookups and attaches
            self._register_endpoint(spec, programs)

    def _register_endpoint(self, spec: EndpointSpec, programs: Program | None) -> None:
        ifindex = netlink.ifindex(spec.host_ifname, self.netns)
        host_mac = spec.host_mac or netlink.link_mac(spec.host_ifname, self.netns)
        for address in (spec.ipv4, spec.ipv6):
            if address:
                fam, raw = maps.addr16(address)
                value = maps.LXC_VALUE.pack(
                    ifindex,
                    spec.id,
                    0,
                    spec.identity,
                    bytes.fromhex((spec.mac or "00:00:00:00:00:00").replace(":", "")),
                    bytes.fromhex(host_mac.replace(":", "")),
                )
                self.maps[maps.LXC].update(maps.LXC_KEY.pack(raw, fam), value)
        self.attach_endpoint(spec, programs)

    def load_endpoint(self, spec: EndpointSpec) -> Program:
        """Compile and load the endpoint's programs with its constants (not attached)."""
        tunnel = self.routing == "tunnel"
        if tunnel and not self._vxlan_ifindex:
            with self._tunnel_lock:  # endpoints may be created from several threads at once
                if not self._vxlan_ifindex:
                    try:
                        self._vxlan_ifindex = netlink.ifindex(self.vxlan_ifname, self.netns)
                    except DatapathError:  # first endpoint of a fresh node: make the device
                        self.setup_tunnel()
        # Node-wide settings are compiled in; the endpoint's own constants are patched into
        # the compiled template (compiled once per process and node configuration).
        return load_from_template(
            "bpf_lxc.c",
            ("cil_from_container", "cil_to_container"),
            self.pin_root,
            {"ENABLE_TUNNEL": 1 if tunnel else 0, "TRACE_ALL": 1 if self.trace_all else 0},
            {"EP_ID": spec.id, "EP_IDENTITY": spec.identity}
            | ({"VXLAN_IFINDEX": self._vxlan_ifindex} if tunnel else {}),
            self.maps[maps.EVENTS].fd,
        )

    def prepare_endpoint_programs(self) -> None:
        """Compile the endpoint programs' template now (bcc: seconds, once per node and
        configuration) rather than for the first pod, which every other pod starting on the
        node would then wait for."""
        self.load_endpoint(EndpointSpec(id=1, host_ifname="", identity=5)).close()

    def attach_endpoint(self, spec: EndpointSpec, programs: Program | None = None) -> None:
        """(Re)compile the endpoint's programs and attach them to its host-side veth.

        tc ingress there carries what the pod sends (its egress policy), tc egress what is
        delivered to it (its ingress policy). Replacing the filters is atomic per direction.
        """
        prog = programs or self.load_endpoint(spec)
        try:
            for direction, fn in (
                ("ingress", "cil_from_container"),
                ("egress", "cil_to_container"),
            ):
                netlink.attach_bpf(spec.host_ifname, direction, prog.fds[fn], fn, self.netns)
        finally:
            if programs is None:
                prog.close()

    def detach_endpoint(self, spec: EndpointSpec) -> None:
        netlink.detach_bpf(spec.host_ifname, self.netns)

    def delete_endpoint(self, spec: EndpointSpec) -> None:
        """Detach the programs and remove the endpoint's maps entries and policy."""
        self.detach_endpoint(spec)
        for address in (spec.ipv4, spec.ipv6):
            if address:
                fam, raw = maps.addr16(address)
                self.maps[maps.LXC].delete(maps.LXC_KEY.pack(raw, fam))
        self.maps[maps.POLICY_OUTER].delete(struct.pack("<I", spec.id))
        path = self._pin(f"cilium_policy_{spec.id:05d}")
        if os.path.exists(path):
            os.unlink(path)

    # --- policy ------------------------------------------------------------------------

    def replace_policy(
        self,
        endpoint_id: int,
        policy: EndpointPolicy,
        enforcement: Enforcement = Enforcement.DEFAULT,
    ) -> int:
        """Replace an endpoint's whole policy atomically; returns the number of map entries.

        ``enforcement`` is Cilium's ``enable-policy``: ``default`` takes the policy's own
        ingress/egress enforcement, ``always`` enforces both directions (default deny),
        ``never`` installs an allow-everything map (deny rules included: nothing enforced).

        A new map is filled, then one outer-map update swaps it in: a packet sees either the
        old or the new policy, never half of one. A policy that does not fit raises
        :class:`PolicyTooLargeError` before anything changes.
        """
        where = f"endpoint {endpoint_id} policy"
        if enforcement == Enforcement.ALWAYS:
            policy = EndpointPolicy(policy.entries, True, True)
        elif enforcement == Enforcement.NEVER:
            policy = EndpointPolicy()
        entries = compile_policy(policy, where)
        if len(entries) > self.policy_max_entries:
            raise PolicyTooLargeError(
                f"{where} needs {len(entries)} map entries, the policy map holds "
                f"{self.policy_max_entries}; the old policy stays in force",
                "raise bpf-policy-map-max or merge rules (port ranges, fewer identities)",
            )
        spec = maps.policy_inner_spec(self.policy_max_entries)
        new = Map.create(
            spec.type,
            spec.key_size,
            spec.value_size,
            spec.max_entries,
            f"cilium_policy_{endpoint_id}",
            spec.flags,
        )
        try:
            new.update_batch(list(entries), list(entries.values()))
            self.maps[maps.POLICY_OUTER].update(struct.pack("<I", endpoint_id), new.fd)
            path = self._pin(f"cilium_policy_{endpoint_id:05d}")
            tmp = self._pin(f"tmp_cilium_policy_{endpoint_id:05d}")
            if os.path.exists(tmp):
                os.unlink(tmp)
            new.pin(tmp)
            os.replace(tmp, path)
        finally:
            new.close()
        return len(entries)

    # --- ipcache -----------------------------------------------------------------------

    @staticmethod
    def _ipcache_item(entry: IPCacheEntry) -> tuple[bytes, bytes]:
        tunnel = b"\0\0\0\0"
        if entry.tunnel_endpoint:
            try:
                tunnel = socket.inet_pton(socket.AF_INET, entry.tunnel_endpoint)
            except OSError:
                raise DatapathError(
                    f"ipcache {entry.prefix}: tunnel endpoint {entry.tunnel_endpoint!r} "
                    "is not an IPv4 address",
                    "the underlay (node addresses) is IPv4",
                ) from None
        try:
            key = maps.ipcache_key(entry.prefix)
        except ValueError as exc:
            raise DatapathError(f"ipcache: prefix {entry.prefix!r} is not an IP prefix") from exc
        if not 0 <= entry.identity < 1 << 32:
            raise DatapathError(f"ipcache {entry.prefix}: identity {entry.identity} out of range")
        return key, maps.IPCACHE_VALUE.pack(entry.identity, tunnel, 0)

    def upsert_ipcache(self, entry: IPCacheEntry) -> None:
        """Insert or update one prefix -> identity (and tunnel endpoint)."""
        self.maps[maps.IPCACHE].update(*self._ipcache_item(entry))

    def upsert_ipcache_many(self, entries: list[IPCacheEntry]) -> None:
        """Insert many entries in batches (an agent's initial sync); all validated first."""
        items = [self._ipcache_item(e) for e in entries]
        m = self.maps[maps.IPCACHE]
        for i in range(0, len(items), 8192):
            chunk = items[i : i + 8192]
            m.update_batch([k for k, _ in chunk], [v for _, v in chunk])

    def delete_ipcache(self, prefix: str) -> bool:
        return self.maps[maps.IPCACHE].delete(maps.ipcache_key(prefix))

    # --- services ----------------------------------------------------------------------

    def _lb_key(self, address: str, port: int, proto: int, slot: int) -> bytes:
        ip = ipaddress.ip_address(address)
        if ip.version != 4:
            raise DatapathError(f"service {address}:{port}: only IPv4 frontends are supported")
        return maps.LB4_KEY.pack(ip.packed, maps.port_bytes(port), slot, proto, 0, 0)

    def _services(self) -> dict[bytes, tuple[int, int]]:
        """slot-0 key -> (count, rev_nat_index) of every service."""
        out = {}
        for k, v in self.maps[maps.LB4_SERVICES].items():
            _, _, slot, _, _, _ = maps.LB4_KEY.unpack(k)
            if slot == 0:
                _, count, revnat, _ = maps.LB4_SERVICE.unpack(v)
                out[k] = (count, revnat)
        return out

    def _backend_ids(self) -> dict[bytes, int]:
        return {v: struct.unpack("<I", k)[0] for k, v in self.maps[maps.LB4_BACKENDS].items()}

    def upsert_service(self, svc: ServiceFrontend) -> int:
        """Create or update a frontend and its backends; returns its reverse-NAT index."""
        if svc.kind not in ("ClusterIP", "NodePort"):
            raise DatapathError(
                f"service {svc.address}:{svc.port}: kind {svc.kind!r} is unknown",
                "use ClusterIP or NodePort",
            )
        if svc.protocol not in (Protocol.TCP, Protocol.UDP):
            raise DatapathError(f"service {svc.address}:{svc.port}: protocol must be TCP or UDP")
        proto = int(svc.protocol)
        master = self._lb_key(svc.address, svc.port, proto, 0)
        existing = self._services()
        if master in existing:
            old_count, revnat = existing[master]
        else:
            old_count = 0
            used = {r for _, r in existing.values()}
            revnat = next(i for i in range(1, 65536) if i not in used)
        backends = self._backend_ids()
        ids = []
        for be in svc.backends:
            ip = ipaddress.ip_address(be.address)
            if ip.version != 4 or not 0 < be.port < 65536:
                raise DatapathError(
                    f"service {svc.address}:{svc.port}: backend {be.address}:{be.port} is invalid"
                )
            value = maps.LB4_BACKEND.pack(ip.packed, maps.port_bytes(be.port), proto, 0)
            if value not in backends:
                bid = max(backends.values(), default=0) + 1
                self.maps[maps.LB4_BACKENDS].update(struct.pack("<I", bid), value)
                backends[value] = bid
            ids.append(backends[value])
        rn = maps.LB4_REVNAT_VALUE.pack(
            ipaddress.ip_address(svc.address).packed, maps.port_bytes(svc.port), 0
        )
        self.maps[maps.LB4_REVNAT].update(maps.LB4_REVNAT_KEY.pack(revnat), rn)
        for slot, bid in enumerate(ids, start=1):
            self.maps[maps.LB4_SERVICES].update(
                self._lb_key(svc.address, svc.port, proto, slot),
                maps.LB4_SERVICE.pack(bid, 0, revnat, 0),
            )
        self.maps[maps.LB4_SERVICES].update(master, maps.LB4_SERVICE.pack(0, len(ids), revnat, 0))
        for slot in range(len(ids) + 1, old_count + 1):
            self.maps[maps.LB4_SERVICES].delete(self._lb_key(svc.address, svc.port, proto, slot))
        self._gc_backends()
        return revnat

    def delete_service(self, address: str, port: int, protocol: Protocol = Protocol.TCP) -> bool:
        master = self._lb_key(address, port, int(protocol), 0)
        existing = self._services()
        if master not in existing:
            return False
        count, revnat = existing[master]
        self.maps[maps.LB4_SERVICES].delete(master)
        for slot in range(1, count + 1):
            self.maps[maps.LB4_SERVICES].delete(self._lb_key(address, port, int(protocol), slot))
        self.maps[maps.LB4_REVNAT].delete(maps.LB4_REVNAT_KEY.pack(revnat))
        self._gc_backends()
        return True

    def _gc_backends(self) -> None:
        used = set()
        for k, v in self.maps[maps.LB4_SERVICES].items():
            if maps.LB4_KEY.unpack(k)[2] > 0:
                used.add(maps.LB4_SERVICE.unpack(v)[0])
        for bid in self._backend_ids().values():
            if bid not in used:
                self.maps[maps.LB4_BACKENDS].delete(struct.pack("<I", bid))

    # --- observability -----------------------------------------------------------------

    def events(self) -> EventReader:
        """A reader of the cilium_events ring buffer (close it when done)."""
        return EventReader(Map.open_pinned(self._pin(maps.EVENTS)))

    def metrics(self) -> dict[tuple[int, str], tuple[int, int]]:
        """(reason, 'ingress'|'egress') -> (packets, bytes), summed over CPUs."""
        out = {}
        for row in maps.dump(self.maps[maps.METRICS], maps.METRICS):
            direction = {1: "ingress", 2: "egress"}.get(row["direction"], str(row["direction"]))
            out[(row["reason"], direction)] = (row["count"], row["bytes"])
        return out

    def map_names(self) -> list[str]:
        return sorted(
            n
            for n in os.listdir(self.pin_root)
            if n.startswith("cilium_") and not n.endswith(".new")
        )

    def map_list(self) -> list[dict[str, Any]]:
        """Each pinned map with its entry count and size (``cilium-dbg map list``); the
        ring buffer has no entries to count."""
        out: list[dict[str, Any]] = []
        for name in self.map_names():
            with Map.open_pinned(self._pin(name)) as m:
                size = m.info.max_entries
                entries = None if name == maps.EVENTS else sum(1 for _ in m.keys())  # noqa: SIM118 (Map is not iterable)
            out.append({"name": name, "path": self._pin(name), "entries": entries,
                        "max-entries": size})  # fmt: skip
        return out

    def dump_map(self, name: str) -> list[dict[str, Any]]:
        """Decoded entries of a pinned map (``cilium-dbg bpf ... list``)."""
        if name == maps.EVENTS:
            raise DatapathError(
                "cilium_events is a ring buffer, not a table", "read it with events()"
            )
        path = self._pin(name)
        if not os.path.exists(path):
            raise DatapathError(
                f"no map {name} under {self.pin_root}", f"one of: {', '.join(self.map_names())}"
            )
        with Map.open_pinned(path) as m:
            return list(maps.dump(m, name))

    def ct_gc(self, now: float | None = None) -> int:
        """Delete expired conntrack entries (both families); returns how many."""
        t = int(time.monotonic() if now is None else now)
        removed = 0
        for name in (maps.CT4, maps.CT6):
            m = self.maps[name]
            for k, v in list(m.items()):
                if maps.CT_VALUE.unpack(v)[0] < t and m.delete(k):
                    removed += 1
        return removed

    def ct_flush(self) -> int:
        removed = 0
        for name in (maps.CT4, maps.CT6):
            m = self.maps[name]
            for k in list(m.keys()):
                removed += m.delete(k)
        return removed
