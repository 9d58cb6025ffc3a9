"""A small DNS server configured by a CoreDNS-style Corefile: one implementation for the
dev cluster's cluster DNS (``kube-dns``), cilium-cli's DNS test server and the world
namespace's resolver.

Supported (each with CoreDNS's meaning; anything else in a Corefile is an error, never
silently ignored):

- server blocks ``ZONE[:PORT] ... { ... }`` (the most specific zone answers a query);
- ``bind ADDR...`` (default: all addresses), ``errors``, ``log``;
- ``health [ADDR]`` (HTTP ``/health``, default ``:8080``), ``ready [ADDR]`` (HTTP ``/ready``,
  default ``:8181``, 200 once every kubernetes block has synced);
- ``local``: localhost names and their reverse zones;
- ``hosts { IP NAME... ; ttl N ; fallthrough [ZONES] }``: static A/AAAA/PTR records;
- ``kubernetes ZONES... { pods insecure|disabled ; ttl N ; fallthrough [ZONES] ; kubeconfig PATH
  [CONTEXT] ; resync SECONDS }``: Services (ClusterIP, headless via EndpointSlices,
  ExternalName as CNAME, SRV for named ports) and PTR of their addresses, read through
  the project's Kubernetes client;
- ``forward . ADDR[:PORT]... | /etc/resolv.conf``: everything else is relayed to upstreams;
- ``cache [SECONDS]``: forwarded answers are kept for their TTL, at most SECONDS.

Names not served and not forwarded get NXDOMAIN (authoritative zones) or REFUSED.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import ipaddress
import os
import random
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ciliumctl.errors import ConfigError

# record types and classes
A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 16, 28, 33, 41, 255
IN = 1
TYPE_NAMES = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", PTR: "PTR", TXT: "TXT"}
TYPE_NAMES |= {AAAA: "AAAA", SRV: "SRV", OPT: "OPT", ANY: "ANY"}
# response codes
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5

DEFAULT_TTL = 5
MAX_UDP = 512


class DnsConfigError(ConfigError):
    """The Corefile cannot be used as written."""


# --------------------------------------------------------------------------- wire format


def normalize(name: str) -> str:
    """Lower-case, fully qualified (trailing dot) form of a domain name."""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def encode_name(name: str) -> bytes:
    """Uncompressed wire form of ``name``."""
    out = b""
    for label in normalize(name).rstrip(".").split("."):
        if label:
            raw = label.encode("idna") if not label.isascii() else label.encode()
            if len(raw) > 63:
                raise ValueError(f"label too long in {name!r}")
            out += bytes([len(raw)]) + raw
    return out + b"\x00"


def decode_name(data: bytes, offset: int) -> tuple[str, int]:
    """Read a (possibly compressed) name at ``offset``; returns it and the next offset."""
    labels: list[str] = []
    end: int | None = None
    for _ in range(128):
        if offset >= len(data):
            raise ValueError("name runs past the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise ValueError("truncated compression pointer")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length == 0:
            name = ".".join(labels).lower() + "."
            return (name if labels else "."), (end if end is not None else offset + 1)
        labels.append(data[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    raise ValueError("compression loop")


@dataclass(frozen=True)
class Question:
    """The question of a query."""

    name: str
    qtype: int
    qclass: int = IN


@dataclass(frozen=True)
class Record:
    """A resource record with its RDATA already in wire form."""

    name: str
    rtype: int
    ttl: int
    rdata: bytes

    def encode(self) -> bytes:
        """Wire form (class IN)."""
        return (
            encode_name(self.name)
            + struct.pack("!HHIH", self.rtype, IN, self.ttl, len(self.rdata))
            + self.rdata
        )


def rr_a(name: str, ip: str, ttl: int) -> Record:
    """An A or AAAA record for ``ip``."""
    addr = ipaddress.ip_address(ip)
    return Record(name, A if addr.version == 4 else AAAA, ttl, addr.packed)


def rr_ptr(name: str, target: str, ttl: int) -> Record:
    return Record(name, PTR, ttl, encode_name(target))


def rr_cname(name: str, target: str, ttl: int) -> Record:
    return Record(name, CNAME, ttl, encode_name(target))


def rr_srv(name: str, target: str, port: int, ttl: int) -> Record:
    return Record(name, SRV, ttl, struct.pack("!HHH", 0, 100, port) + encode_name(target))


def rr_soa(zone: str, ttl: int) -> Record:
    rdata = encode_name(f"ns.dns.{zone}") + encode_name(f"hostmaster.{zone}")
    rdata += struct.pack("!IIIII", int(time.time()) & 0xFFFFFFFF, 7200, 1800, 86400, ttl)
    return Record(zone, SOA, ttl, rdata)


@dataclass
class Message:
    """A parsed query: id, flags and the first question."""

    id: int
    flags: int
    question: Question | None
    raw: bytes

    @property
    def rd(self) -> bool:
        return bool(self.flags & 0x0100)


def parse_query(data: bytes) -> Message:
    """Parse the header and first question of ``data``; ``ValueError`` when malformed."""
    if len(data) < 12:
        raise ValueError("short message")
    ident, flags, qd, _an, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
    question = None
    if qd:
        name, off = decode_name(data, 12)
        if off + 4 > len(data):
            raise ValueError("truncated question")
        qtype, qclass = struct.unpack("!HH", data[off : off + 4])
        question = Question(name, qtype, qclass)
    return Message(ident, flags, question, data)


def build_response(
    query: Message,
    rcode: int,
    answers: Sequence[Record] = (),
    authority: Sequence[Record] = (),
    *,
    authoritative: bool = True,
    max_size: int | None = None,
) -> bytes:
    """A response to ``query``; sets TC and drops answers that do not fit ``max_size``."""
    flags = 0x8000 | (query.flags & 0x7900) | 0x0080 | (rcode & 0xF)  # QR, opcode+RD, RA
    if authoritative:
        flags |= 0x0400
    question = b""
    if query.question is not None:
        q = query.question
        question = encode_name(q.name) + struct.pack("!HH", q.qtype, q.qclass)
    body_an = [r.encode() for r in answers]
    body_ns = [r.encode() for r in authority]

    def assemble(an: list[bytes], ns: list[bytes], fl: int) -> bytes:
        header = struct.pack("!HHHHHH", query.id, fl, 1 if question else 0, len(an), len(ns), 0)
        return header + question + b"".join(an) + b"".join(ns)

    out = assemble(body_an, body_ns, flags)
    if max_size is not None and len(out) > max_size:
        out = assemble([], [], flags | 0x0200)
    return out


def min_ttl(response: bytes) -> int | None:
    """The smallest TTL among a response's answer and authority records."""
    try:
        _id, _fl, qd, an, ns, _ar = struct.unpack("!HHHHHH", response[:12])
        off = 12
        for _ in range(qd):
            _, off = decode_name(response, off)
            off += 4
        ttls = []
        for _ in range(an + ns):
            _, off = decode_name(response, off)
            _t, _c, ttl, rdlen = struct.unpack("!HHIH", response[off : off + 10])
            ttls.append(ttl)
            off += 10 + rdlen
        return min(ttls) if ttls else None
    except (ValueError, struct.error):
        return None


def reverse_name(ip: str) -> str:
    """The in-addr.arpa / ip6.arpa name of ``ip``."""
    return normalize(ipaddress.ip_address(ip).reverse_pointer)


# --------------------------------------------------------------------------- answers


@dataclass
class Answer:
    """What a plugin says about a question: records, or NXDOMAIN/NODATA in ``zone``."""

    rcode: int = NOERROR
    records: list[Record] = field(default_factory=list)
    zone: str | None = None


class Plugin(Protocol):
    """One link of a server block's chain: answer, or None to pass the query on."""

    def lookup(self, q: Question) -> Answer | None: ...


def _in_zone(name: str, zone: str) -> bool:
    return zone == "." or name == zone or name.endswith("." + zone)


#: ``fallthrough [ZONES...]``: None = answer NXDOMAIN; () = pass every unknown name on;
#: zones = pass on unknown names in those zones only (CoreDNS's meaning).
Fallthrough = tuple[str, ...] | None


def falls_through(fallthrough: Fallthrough, name: str) -> bool:
    """Whether an unknown ``name`` goes on to the next plugin."""
    if fallthrough is None:
        return False
    return not fallthrough or any(_in_zone(name, z) for z in fallthrough)


class Names:
    """A name -> records table with NXDOMAIN/NODATA semantics (used by hosts, local,
    kubernetes)."""

    def __init__(self) -> None:
        self.records: dict[str, list[Record]] = {}

    def add(self, record: Record) -> None:
        self.records.setdefault(normalize(record.name), []).append(record)

    def exists(self, name: str) -> bool:
        """True when ``name`` or any name below it has records (empty non-terminals)."""
        if name in self.records:
            return True
        suffix = "." + name
        return any(n.endswith(suffix) for n in self.records)

    def answer(self, q: Question, zone: str) -> Answer | None:
        """Records of ``q``; None when the name is unknown here."""
        recs = self.records.get(q.name)
        if recs is None:
            return Answer(NOERROR, [], zone) if self.exists(q.name) else None
        cname = [r for r in recs if r.rtype == CNAME]
        if cname and q.qtype != CNAME:
            return Answer(NOERROR, cname, zone)
        return Answer(NOERROR, [r for r in recs if q.qtype in (r.rtype, ANY)], zone)


class StaticPlugin:
    """``hosts`` and ``local``: a fixed table, authoritative for its zones."""

    def __init__(self, names: Names, zones: list[str], fallthrough: Fallthrough) -> None:
        self.names = names
        self.zones = zones
        self.fallthrough = fallthrough

    def lookup(self, q: Question) -> Answer | None:
        zone = next((z for z in self.zones if _in_zone(q.name, z)), None)
        if zone is None:
            return None
        found = self.names.answer(q, zone)
        if found is not None:
            return found
        if falls_through(self.fallthrough, q.name):
            return None
        return Answer(NXDOMAIN, [], zone)


def local_plugin() -> StaticPlugin:
    """CoreDNS's ``local``: localhost and the loopback reverse names."""
    names = Names()
    for host in ("localhost.", "localhost.localdomain."):
        names.add(rr_a(host, "127.0.0.1", 3600))
        names.add(rr_a(host, "::1", 3600))
    names.add(rr_ptr(reverse_name("127.0.0.1"), "localhost.", 3600))
    names.add(rr_ptr(reverse_name("::1"), "localhost.", 3600))
    zones = ["localhost.", "localhost.localdomain.", "127.in-addr.arpa."]
    zones.append(normalize(ipaddress.ip_address("::1").reverse_pointer))
    return _LocalPlugin(names, zones)


class _LocalPlugin(StaticPlugin):
    """``local`` answers only its own names and passes everything else on."""

    def __init__(self, names: Names, zones: list[str]) -> None:
        super().__init__(names, zones, fallthrough=())

    def lookup(self, q: Question) -> Answer | None:
        if any(_in_zone(q.name, z) for z in self.zones):
            found = self.names.answer(q, q.name)
            return found or Answer(NXDOMAIN, [], next(z for z in self.zones if _in_zone(q.name, z)))
        return None


# --------------------------------------------------------------------------- kubernetes


class ServiceSource(Protocol):
    """What the kubernetes plugin needs from the API (the project's k8s Client has it)."""

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[Any]: ...


def _svc_name(svc: dict[str, Any]) -> tuple[str, str]:
    meta = svc.get("metadata") or {}
    return str(meta.get("name", "")), str(meta.get("namespace", ""))


def cluster_names(
    services: list[dict[str, Any]], slices: list[dict[str, Any]], zone: str, ttl: int
) -> Names:
    """The records of a cluster domain ``zone`` (e.g. ``cluster.local.``) and the PTRs of
    the addresses it names, from Services and EndpointSlices."""
    names = Names()
    by_service: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        owner = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if owner:
            by_service.setdefault((str(owner), str(meta.get("namespace", ""))), []).append(sl)
    for svc in services:
        name, ns = _svc_name(svc)
        spec = svc.get("spec") or {}
        fqdn = f"{name}.{ns}.svc.{zone}"
        if spec.get("type") == "ExternalName" and spec.get("externalName"):
            names.add(rr_cname(fqdn, normalize(str(spec["externalName"])), ttl))
            continue
        ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip]
        headless = not ips or ips == ["None"]
        targets: list[tuple[str, str]] = []  # (name, ip) a headless service resolves to
        if headless:
            for sl in by_service.get((name, ns), []):
                for ep in sl.get("endpoints") or []:
                    if (ep.get("conditions") or {}).get("ready") is False:
                        continue
                    host = ep.get("hostname")
                    for ip in ep.get("addresses") or []:
                        names.add(rr_a(fqdn, ip, ttl))
                        if host:
                            names.add(rr_a(f"{host}.{fqdn}", ip, ttl))
                            names.add(rr_ptr(reverse_name(ip), f"{host}.{fqdn}", ttl))
                            targets.append((f"{host}.{fqdn}", ip))
        else:
            for ip in ips:
                names.add(rr_a(fqdn, ip, ttl))
                names.add(rr_ptr(reverse_name(ip), fqdn, ttl))
        for port in spec.get("ports") or []:
            if not port.get("name"):
                continue
            proto = str(port.get("protocol") or "TCP").lower()
            srv = f"_{port['name']}._{proto}.{fqdn}"
            if headless and targets:
                for target, _ip in targets:
                    names.add(rr_srv(srv, target, int(port.get("port") or 0), ttl))
            elif not headless:
                names.add(rr_srv(srv, fqdn, int(port.get("port") or 0), ttl))
    return names


class KubernetesPlugin:
    """Cluster names from the API server, re-listed every ``resync`` seconds."""

    def __init__(
        self,
        zones: list[str],
        *,
        ttl: int = DEFAULT_TTL,
        pods: str = "disabled",
        fallthrough: Fallthrough = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        resync: float = 1.0,
        source: ServiceSource | None = None,
    ) -> None:
        self.zones = zones
        self.cluster_zone = next((z for z in zones if not z.endswith(".arpa.")), "cluster.local.")
        self.reverse_zones = [z for z in zones if z.endswith(".arpa.")]
        self.ttl = ttl
        self.pods = pods
        self.fallthrough = fallthrough
        self.kubeconfig = kubeconfig
        self.context = context
        self.resync = resync
        self._source = source
        self._names = Names()
        self.synced = threading.Event()
        self._stop = threading.Event()
        self.last_error: str | None = None

    def _client(self) -> ServiceSource:
        if self._source is None:
            from ciliumctl.k8s import Client

            self._source = Client(self.kubeconfig, self.context)
        return self._source

    def sync(self) -> None:
        """List Services and EndpointSlices once and swap in the new table."""
        source = self._client()
        services = source.list("v1", "Service")
        slices = source.list("discovery.k8s.io/v1", "EndpointSlice")
        self._names = cluster_names(services, slices, self.cluster_zone, self.ttl)
        self.synced.set()

    def start(self) -> None:
        """Sync in a background thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.sync()
                    self.last_error = None
                except Exception as exc:
                    if self.last_error != str(exc):
                        sys.stderr.write(f"dns: kubernetes sync failed: {exc}\n")
                    self.last_error = str(exc)
                self._stop.wait(self.resync)

        threading.Thread(target=loop, daemon=True, name="dns-kubernetes").start()

    def stop(self) -> None:
        self._stop.set()

    def lookup(self, q: Question) -> Answer | None:
        zone = next((z for z in self.zones if _in_zone(q.name, z)), None)
        if zone is None:
            return None
        if self.pods == "insecure" and q.name.endswith(f".pod.{self.cluster_zone}"):
            label = q.name[: -len(f".pod.{self.cluster_zone}")].split(".")[0]
            ip = label.replace("-", ":" if label.count("-") > 3 else ".")
            try:
                rec = rr_a(q.name, str(ipaddress.ip_address(ip)), self.ttl)
            except ValueError:
                rec = None
            if rec is not None:
                return Answer(NOERROR, [rec] if q.qtype in (rec.rtype, ANY) else [], zone)
        found = self._names.answer(q, zone)
        if found is not None:
            return found
        if falls_through(self.fallthrough, q.name):
            return None
        return Answer(NXDOMAIN, [], zone)


# --------------------------------------------------------------------------- forward


class Forwarder:
    """Relays queries to upstream resolvers (UDP, TCP when the answer was truncated)."""

    def __init__(self, upstreams: list[tuple[str, int]], timeout: float = 2.0) -> None:
        self.upstreams = upstreams
        self.timeout = timeout

    def query(self, raw: bytes, tcp: bool = False) -> bytes | None:
        """The first upstream's answer to ``raw``, or None when none answered."""
        for host, port in random.sample(self.upstreams, len(self.upstreams)):
            try:
                if tcp:
                    return self._tcp(raw, host, port)
                answer = self._udp(raw, host, port)
                if answer is not None and len(answer) > 2 and answer[2] & 0x02:  # TC
                    return self._tcp(raw, host, port)
                if answer is not None:
                    return answer
            except OSError:
                continue
        return None

    def _udp(self, raw: bytes, host: str, port: int) -> bytes | None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(self.timeout)
            s.connect((host, port))  # connected: a closed port fails at once, not by timeout
            s.send(raw)
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                data = s.recv(65535)
                if data[:2] == raw[:2]:
                    return data
        return None

    def _tcp(self, raw: bytes, host: str, port: int) -> bytes:
        with socket.create_connection((host, port), timeout=self.timeout) as s:
            s.sendall(struct.pack("!H", len(raw)) + raw)
            length = struct.unpack("!H", _recv_exact(s, 2))[0]
            return _recv_exact(s, length)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def resolv_conf_nameservers(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """The ``nameserver`` lines of a resolv.conf."""
    out = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            out.append((parts[1].split("%")[0], 53))
    return out


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:53``, ``[::1]:53``, ``::1``, ``dns://host:port``."""
    text = text.removeprefix("dns://")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest.lstrip(":") or default_port)
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = int(p or default_port)
    else:
        host, port = text, default_port
    if host:
        ipaddress.ip_address(host)
    return host, port


# --------------------------------------------------------------------------- Corefile


@dataclass
class Directive:
    """One plugin line of a Corefile, with its block's lines."""

    name: str
    args: list[str]
    block: list[Directive]
    line: int


@dataclass
class ServerBlock:
    """A parsed server block: its zones, port and plugin chain."""

    zones: list[str]
    port: int
    bind: list[str] = field(default_factory=list)
    log: bool = False
    health: str | None = None
    ready: str | None = None
    plugins: list[Plugin] = field(default_factory=list)
    forward: Forwarder | None = None
    cache_seconds: int = 0
    kubernetes: list[KubernetesPlugin] = field(default_factory=list)


def _tokens(text: str) -> Iterator[tuple[str, int]]:
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        for tok in line.replace("{", " { ").replace("}", " } ").split():
            yield tok, number
        yield "\n", number


def _parse_blocks(text: str, where: str) -> list[tuple[list[str], list[Directive], int]]:
    toks = list(_tokens(text))
    pos = 0

    def parse_body(start_line: int) -> list[Directive]:
        nonlocal pos
        out: list[Directive] = []
        current: list[str] = []
        line = start_line
        while pos < len(toks):
            tok, line = toks[pos]
            pos += 1
            if tok == "}":
                if current:
                    out.append(Directive(current[0], current[1:], [], line))
                return out
            if tok == "{":
                if not current:
                    raise DnsConfigError(f"{where} line {line}: a block without a plugin name")
                out.append(Directive(current[0], current[1:], parse_body(line), line))
                current = []
            elif tok == "\n":
                if current:
                    out.append(Directive(current[0], current[1:], [], line))
                current = []
            else:
                current.append(tok)
        raise DnsConfigError(f"{where} line {start_line}: block is not closed with }}")

    blocks: list[tuple[list[str], list[Directive], int]] = []
    keys: list[str] = []
    while pos < len(toks):
        tok, line = toks[pos]
        pos += 1
        if tok == "\n":
            continue
        if tok == "{":
            if not keys:
                raise DnsConfigError(f"{where} line {line}: server block without a zone")
            blocks.append((keys, parse_body(line), line))
            keys = []
        elif tok == "}":
            raise DnsConfigError(f"{where} line {line}: unexpected }}")
        else:
            keys.append(tok.rstrip(","))
    if keys:
        raise DnsConfigError(f"{where}: zone {' '.join(keys)} has no {{ ... }} block")
    return blocks


SUPPORTED: tuple[str, ...] = (
    "bind",
    "errors",
    "log",
    "health",
    "ready",
    "local",
    "hosts",
    "kubernetes",
    "forward",
    "cache",
)


def _flag_block(d: Directive, where: str, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for sub in d.block:
        if sub.name not in allowed:
            raise DnsConfigError(
                f"{where} line {sub.line}: {d.name} option {sub.name!r} is not supported",
                f"supported {d.name} options: {', '.join(allowed) or 'none'}",
            )
        out[sub.name] = sub.args
    return out


def _int(value: str, what: str) -> int:
    try:
        out = int(value)
    except ValueError:
        raise DnsConfigError(f"{what}: {value!r} is not a number") from None
    if out < 0:
        raise DnsConfigError(f"{what}: {value!r} must not be negative")
    return out


def parse_corefile(text: str, where: str = "Corefile", default_port: int = 53) -> list[ServerBlock]:
    """Parse a Corefile into server blocks; :class:`DnsConfigError` names the bad line."""
    servers: list[ServerBlock] = []
    for keys, body, line in _parse_blocks(text, where):
        zones: list[str] = []
        ports: set[int] = set()
        for key in keys:
            key = key.removeprefix("dns://")
            zone, _, port = key.rpartition(":") if ":" in key else (key, "", "")
            zones.append(normalize(zone or "."))
            ports.add(_int(port, f"{where} line {line} port") if port else default_port)
        if len(ports) != 1:
            raise DnsConfigError(f"{where} line {line}: one server block, one port")
        block = ServerBlock(zones, ports.pop())
        for d in body:
            at = f"{where} line {d.line}"
            if d.name not in SUPPORTED:
                raise DnsConfigError(
                    f"{at}: plugin {d.name!r} is not supported by ciliumctl's DNS server",
                    f"supported plugins: {', '.join(SUPPORTED)}",
                )
            if d.name == "bind":
                for addr in d.args:
                    try:
                        ipaddress.ip_address(addr)
                    except ValueError:
                        raise DnsConfigError(f"{at}: bind {addr!r} is not an IP address") from None
                block.bind += d.args
            elif d.name == "errors":
                _flag_block(d, at, ())
            elif d.name == "log":
                _flag_block(d, at, ())
                block.log = True
            elif d.name in ("health", "ready"):
                _flag_block(d, at, ())
                default = ":8080" if d.name == "health" else ":8181"
                setattr(block, d.name, d.args[0] if d.args else default)
            elif d.name == "local":
                block.plugins.append(local_plugin())
            elif d.name == "hosts":
                block.plugins.append(_hosts(d, at, zones))
            elif d.name == "kubernetes":
                plugin = _kubernetes(d, at, zones)
                block.plugins.append(plugin)
                block.kubernetes.append(plugin)
            elif d.name == "forward":
                block.forward = _forward(d, at)
            elif d.name == "cache":
                _flag_block(d, at, ())
                block.cache_seconds = _int(d.args[0], f"{at} cache") if d.args else 3600
        servers.append(block)
    return servers


def _hosts(d: Directive, at: str, server_zones: list[str]) -> StaticPlugin:
    if d.args and not d.args[0].endswith(".") and "/" in d.args[0]:
        raise DnsConfigError(f"{at}: hosts files are not supported", "list entries inline")
    zones = [normalize(z) for z in d.args] or server_zones
    names = Names()
    ttl = 3600
    fallthrough: Fallthrough = None
    entries: list[tuple[str, list[str], int]] = []
    for sub in d.block:
        if sub.name == "ttl":
            ttl = _int(sub.args[0] if sub.args else "", f"{at} hosts ttl")
        elif sub.name == "fallthrough":
            fallthrough = tuple(normalize(z) for z in sub.args)
        else:
            entries.append((sub.name, sub.args, sub.line))
    for ip, hostnames, line in entries:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise DnsConfigError(
                f"{at}: hosts entry on line {line} starts with {ip!r}, not an IP address"
            ) from None
        if not hostnames:
            raise DnsConfigError(f"{at}: hosts entry {ip} on line {line} has no name")
        for i, host in enumerate(hostnames):
            names.add(rr_a(normalize(host), ip, ttl))
            if i == 0:
                names.add(rr_ptr(reverse_name(ip), normalize(host), ttl))
    # reverse names of the entries are answered too, as CoreDNS's hosts plugin does
    reverse = sorted({n for n in names.records if n.endswith(".arpa.")})
    return StaticPlugin(names, zones + reverse, fallthrough)


def _kubernetes(d: Directive, at: str, server_zones: list[str]) -> KubernetesPlugin:
    opts = _flag_block(d, at, ("pods", "ttl", "fallthrough", "kubeconfig", "resync"))
    pods = (opts.get("pods") or ["disabled"])[0]
    if pods not in ("disabled", "insecure"):
        raise DnsConfigError(
            f"{at}: kubernetes pods {pods!r} is not supported", "use pods insecure or disabled"
        )
    kubeconfig = opts.get("kubeconfig") or []
    return KubernetesPlugin(
        [normalize(z) for z in d.args] or server_zones,
        ttl=_int((opts.get("ttl") or [str(DEFAULT_TTL)])[0], f"{at} kubernetes ttl"),
        pods=pods,
        fallthrough=(
            tuple(normalize(z) for z in opts["fallthrough"]) if "fallthrough" in opts else None
        ),
        kubeconfig=kubeconfig[0] if kubeconfig else None,
        context=kubeconfig[1] if len(kubeconfig) > 1 else None,
        resync=float((opts.get("resync") or ["1"])[0]),
    )


def _forward(d: Directive, at: str) -> Forwarder:
    _flag_block(d, at, ())
    if len(d.args) < 2 or d.args[0] != ".":
        raise DnsConfigError(f"{at}: use `forward . ADDRESS...`")
    upstreams: list[tuple[str, int]] = []
    for arg in d.args[1:]:
        if arg.startswith("/"):
            try:
                upstreams += resolv_conf_nameservers(arg)
            except OSError as exc:
                raise DnsConfigError(f"{at}: cannot read {arg}: {exc}") from None
            continue
        try:
            upstreams.append(parse_hostport(arg, 53))
        except ValueError:
            raise DnsConfigError(f"{at}: forward to {arg!r}: not an IP[:PORT]") from None
    if not upstreams:
        raise DnsConfigError(f"{at}: forward has no upstream resolver")
    return Forwarder(upstreams)


# --------------------------------------------------------------------------- server


class Resolver:
    """Answers queries for a set of server blocks sharing one port."""

    def __init__(self, blocks: list[ServerBlock]) -> None:
        self.blocks = blocks
        self._cache: dict[tuple[str, int, int], tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def _block(self, name: str) -> ServerBlock | None:
        best: tuple[int, ServerBlock] | None = None
        for block in self.blocks:
            for zone in block.zones:
                if _in_zone(name, zone) and (best is None or len(zone) > best[0]):
                    best = (len(zone), block)
        return best[1] if best else None

    def handle(self, data: bytes, tcp: bool = False, client: str = "") -> bytes | None:
        """The response to one query message (None: drop it)."""
        try:
            query = parse_query(data)
        except ValueError:
            if len(data) >= 2:
                return struct.pack("!HHHHHH", int.from_bytes(data[:2]), 0x8001, 0, 0, 0, 0)
            return None
        limit = None if tcp else MAX_UDP
        q = query.question
        if q is None or (query.flags >> 11) & 0xF != 0:
            return build_response(query, NOTIMP if q else FORMERR, max_size=limit)
        block = self._block(q.name)
        if block is None:
            return build_response(query, REFUSED, authoritative=False, max_size=limit)
        response = self._answer(block, query, q, tcp, limit)
        if block.log:
            rcode = response[3] & 0xF if response and len(response) > 3 else -1
            sys.stderr.write(
                f'[INFO] {client} "{TYPE_NAMES.get(q.qtype, q.qtype)} IN {q.name} '
                f'{"tcp" if tcp else "udp"} {len(data)}" rcode={rcode}\n'
            )
        return response

    def _answer(
        self, block: ServerBlock, query: Message, q: Question, tcp: bool, limit: int | None
    ) -> bytes:
        for plugin in block.plugins:
            ans = plugin.lookup(q)
            if ans is None:
                continue
            authority = [rr_soa(ans.zone, DEFAULT_TTL)] if ans.zone and not ans.records else []
            return build_response(query, ans.rcode, ans.records, authority, max_size=limit)
        if block.forward is None:
            zone = next((z for z in block.zones if _in_zone(q.name, z)), ".")
            return build_response(query, NXDOMAIN, [], [rr_soa(zone, DEFAULT_TTL)], max_size=limit)
        key = (q.name, q.qtype, q.qclass)
        if block.cache_seconds:
            with self._lock:
                hit = self._cache.get(key)
            if hit and hit[0] > time.monotonic():
                return query.raw[:2] + hit[1][2:]
        answer = block.forward.query(query.raw, tcp=tcp)
        if answer is None:
            return build_response(query, SERVFAIL, authoritative=False, max_size=limit)
        if block.cache_seconds and not answer[2] & 0x02:
            ttl = min(block.cache_seconds, min_ttl(answer) or 0)
            if ttl > 0:
                with self._lock:
                    self._cache[key] = (time.monotonic() + ttl, answer)
        return answer


class _UDPHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        assert isinstance(self.server, _UDPServer)
        out = self.server.resolver.handle(data, client=str(self.client_address[0]))
        if out is not None:
            sock.sendto(out, self.client_address)


class _TCPHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        assert isinstance(self.server, _TCPServer)
        resolver = self.server.resolver
        sock: socket.socket = self.request
        sock.settimeout(10)
        try:
            for _ in range(100):
                length = struct.unpack("!H", _recv_exact(sock, 2))[0]
                out = resolver.handle(
                    _recv_exact(sock, length), tcp=True, client=str(self.client_address[0])
                )
                if out is None:
                    return
                sock.sendall(struct.pack("!H", len(out)) + out)
        except (OSError, ConnectionError, struct.error):
            return


class _DualStack:
    """Bind IPv6 sockets dual-stack (IPv4-mapped too), as CoreDNS does on ``::``."""

    socket: socket.socket
    address_family: int

    def _dual_stack(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)


class _UDPServer(_DualStack, socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, family: int, address: tuple[str, int], resolver: Resolver) -> None:
        self.address_family = family
        self.resolver = resolver
        super().__init__(address, _UDPHandler, bind_and_activate=False)
        self._dual_stack()
        self.server_bind()
        self.server_activate()


class _TCPServer(_DualStack, socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, family: int, address: tuple[str, int], resolver: Resolver) -> None:
        self.address_family = family
        self.resolver = resolver
        super().__init__(address, _TCPHandler, bind_and_activate=False)
        self._dual_stack()
        self.server_bind()
        self.server_activate()


class _Health(http.server.BaseHTTPRequestHandler):
    check: Callable[[], bool] = staticmethod(lambda: True)
    path_ok = "/health"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        ok = self.path.split("?")[0] == self.path_ok and type(self).check()
        body = b"OK" if ok else b"not ready"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class DnsServer:
    """Running servers of a Corefile; :meth:`stop` shuts them down."""

    blocks: list[ServerBlock]
    servers: list[socketserver.BaseServer] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)

    def ready(self) -> bool:
        """True once every kubernetes block has synced at least once."""
        return all(k.synced.is_set() for b in self.blocks for k in b.kubernetes)

    def start(self) -> DnsServer:
        """Bind every port (UDP and TCP per address) and serve in threads."""
        by_port: dict[int, list[ServerBlock]] = {}
        for block in self.blocks:
            by_port.setdefault(block.port, []).append(block)
        for port, blocks in sorted(by_port.items()):
            resolver = Resolver(blocks)
            addrs = sorted({a for b in blocks for a in b.bind}) or [_any_address()]
            for addr in addrs:
                family = socket.AF_INET6 if ":" in addr else socket.AF_INET
                udp = _UDPServer(family, (addr, port), resolver)
                actual = int(udp.server_address[1])
                tcp = _TCPServer(family, (addr, actual), resolver)
                self.servers += [udp, tcp]
                self.ports[f"{addr}:{port}"] = actual
        for block in self.blocks:
            for plugin in block.kubernetes:
                plugin.start()
            if block.health:
                self._http(block.health, "/health", lambda: True)
            if block.ready:
                self._http(block.ready, "/ready", self.ready)
        for srv in self.servers:
            threading.Thread(target=srv.serve_forever, daemon=True).start()
        return self

    def _http(self, addr: str, path: str, check: Callable[[], bool]) -> None:
        host, port = ("", int(addr[1:])) if addr.startswith(":") else parse_hostport(addr, 0)
        handler = type("Handler", (_Health,), {"check": staticmethod(check), "path_ok": path})
        bind = host or _any_address()
        server = type(
            "HTTPServer",
            (http.server.ThreadingHTTPServer,),
            {"address_family": socket.AF_INET6 if ":" in bind else socket.AF_INET},
        )
        srv = server((bind, port), handler)
        self.servers.append(srv)
        self.ports[path] = srv.server_address[1]

    def stop(self) -> None:
        """Stop serving and syncing."""
        for block in self.blocks:
            for plugin in block.kubernetes:
                plugin.stop()
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()


def _any_address() -> str:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::", 0))
        return "::"
    except OSError:
        return "0.0.0.0"  # noqa: S104 - a DNS server in a pod listens on all addresses


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``dns -conf /etc/coredns/Corefile [-dns.port N]`` (CoreDNS's flags)."""
    parser = argparse.ArgumentParser(prog="dns", description=__doc__.splitlines()[0])
    parser.add_argument("-conf", "--conf", default="Corefile", help="Corefile path")
    parser.add_argument("-dns.port", "--dns-port", dest="port", type=int, default=53)
    opts = parser.parse_args(argv)
    try:
        text = Path(opts.conf).read_text()
    except OSError as exc:
        sys.stderr.write(f"dns: cannot read Corefile {opts.conf}: {exc}\n")
        return 1
    try:
        server = DnsServer(parse_corefile(text, opts.conf, opts.port)).start()
    except (DnsConfigError, OSError) as exc:
        sys.stderr.write(f"dns: {exc}\n")
        return 1
    sys.stderr.write(f"dns: serving {', '.join(sorted(server.ports))}\n")
    sys.stderr.flush()
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
