"""Node-to-node health probes, reported as upstream's cilium-health reports them.

Every agent answers ``GET /hello`` on ``cluster-health-port`` (4240) in the node's network
namespace, and probes each known node's address (its own included) with an ICMP echo
("ICMP to stack") and that HTTP request ("HTTP to agent"), every ``interval`` seconds or on
demand (``cilium-health status --probe``). Results use upstream's health API model
(``nodes[].host.primary-address.{icmp,http}.{status,latency}``): an empty ``status`` means
reachable, anything else says why not. This agent runs no per-node health endpoint pod, so
``health-endpoint`` is absent, as upstream reports with endpoint health checking off.
"""

from __future__ import annotations

import http.client
import logging
import os
import select
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("cilium-agent.health")

DEFAULT_PORT = 4240
ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def icmp_probe(address: str, timeout: float, ident: int, seq: int) -> tuple[str, int]:
    """One ICMP echo to ``address``: ("", latency in ns) when answered, else (why, 0)."""
    payload = b"cilium-health"
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    packet = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, _checksum(header + payload), ident, seq)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError:
        return "ICMP needs CAP_NET_RAW (raw socket refused)", 0
    with sock:
        start = time.monotonic_ns()
        try:
            sock.sendto(packet + payload, (address, 0))
        except OSError as exc:
            return f"ICMP echo to {address}: {exc.strerror or exc}", 0
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            data, (source, _port) = sock.recvfrom(1500)
            ihl = (data[0] & 0x0F) * 4
            if len(data) < ihl + 8 or source != address:
                continue
            kind, _code, _sum, r_ident, r_seq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
            if kind == ICMP_ECHO_REPLY and (r_ident, r_seq) == (ident, seq):
                return "", time.monotonic_ns() - start
    return f"ICMP echo to {address}: no reply within {timeout:g}s", 0


def http_probe(address: str, port: int, timeout: float) -> tuple[str, int]:
    """``GET /hello`` on the node's health responder: ("", latency in ns) or (why, 0)."""
    start = time.monotonic_ns()
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", "/hello")
        resp = conn.getresponse()
        resp.read()
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return f"HTTP GET http://{address}:{port}/hello: {reason}", 0
    finally:
        conn.close()
    if resp.status != 200:
        return f"HTTP GET http://{address}:{port}/hello answered {resp.status}", 0
    return "", time.monotonic_ns() - start


class _Responder(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/hello":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health responder: " + format, *args)


def serve_responder(port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:  # noqa: S104
    """The ``/hello`` responder other nodes probe, in a daemon thread (upstream: :4240 on
    every address of the node)."""
    server = ThreadingHTTPServer((host, port), _Responder)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-responder", daemon=True).start()
    return server


def _probe_result(status: str, latency: int) -> dict[str, Any]:
    return {"status": status, "latency": latency} if status else {"latency": latency}


class NodeHealth:
    """The nodes to probe (name -> address) and the last results of probing them."""

    def __init__(self, local_node: str, port: int = DEFAULT_PORT, timeout: float = 2.0) -> None:
        self.local_node = local_node
        self.port = port
        self.timeout = timeout
        self._nodes: dict[str, str] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self._probed_at = ""
        self._lock = threading.Lock()
        self._probing = threading.Lock()
        self._ident = os.getpid() & 0xFFFF
        self._seq = 0

    def set_node(self, name: str, address: str | None) -> None:
        """A node's primary address (``None``: the node is gone)."""
        with self._lock:
            if address:
                self._nodes[name] = address
            else:
                self._nodes.pop(name, None)
                self._results.pop(name, None)

    def probe(self) -> None:
        """Probe every node now (ICMP and HTTP, nodes in parallel); one probe at a time."""
        with self._probing:
            with self._lock:
                nodes = dict(self._nodes)
                seqs = {}
                for name in nodes:
                    self._seq = (self._seq + 1) & 0xFFFF
                    seqs[name] = self._seq

            def one(name: str) -> tuple[str, dict[str, Any]]:
                address = nodes[name]
                icmp = icmp_probe(address, self.timeout, self._ident, seqs[name])
                web = http_probe(address, self.port, self.timeout)
                primary = {"ip": address, "icmp": _probe_result(*icmp), "http": _probe_result(*web)}
                return name, {"primary-address": primary, "secondary-addresses": []}

            results: dict[str, dict[str, Any]] = {}
            if nodes:
                with ThreadPoolExecutor(max_workers=min(16, len(nodes))) as pool:
                    results = dict(pool.map(one, sorted(nodes)))
            with self._lock:
                self._results = {n: r for n, r in results.items() if n in self._nodes}
                self._probed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        bad = [n for n, r in results.items() if _failures(r)]
        if bad:
            log.warning("health probes failing for %s", ", ".join(sorted(bad)))

    def run(self, stop: threading.Event, interval: float = 60.0) -> None:
        """Probe every ``interval`` seconds until ``stop`` is set."""
        while True:
            try:
                self.probe()
            except Exception:  # a probe bug must not end the loop
                log.exception("health probe round failed")
            if stop.wait(interval):
                return

    def status(self) -> dict[str, Any]:
        """Upstream's ``HealthStatusResponse``: the local node, every probed node, when."""
        with self._lock:
            nodes = [
                {"name": name, "host": self._results[name]}
                for name in sorted(self._results)
                if name in self._nodes
            ]
            stamp = self._probed_at
        return {"local": {"name": self.local_node}, "nodes": nodes, "timestamp": stamp}

    def summary(self) -> dict[str, Any]:
        """The agent status's ``cluster.ciliumHealth``: how many nodes are reachable."""
        doc = self.status()
        if not doc["timestamp"]:
            return {"state": "Warning", "msg": "no probe has completed yet"}
        bad = [n["name"] for n in doc["nodes"] if _failures(n["host"])]
        total = len(doc["nodes"])
        if bad:
            return {
                "state": "Warning",
                "msg": f"{total - len(bad)}/{total} reachable (unreachable: {', '.join(bad)})",
            }
        return {"state": "Ok", "msg": f"{total}/{total} reachable"}


def _failures(host: dict[str, Any]) -> list[str]:
    primary = host.get("primary-address") or {}
    return [str(primary[k]["status"]) for k in ("icmp", "http") if primary.get(k, {}).get("status")]
