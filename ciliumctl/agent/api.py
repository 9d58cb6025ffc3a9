"""The agent's REST API on a unix socket, with upstream's paths, and the health endpoint.

``cilium-dbg`` and ``cilium-cni`` are its clients. Paths follow upstream's API where one
exists (``/v1/healthz``, ``/v1/config``, ``/v1/endpoint``, ``/v1/identity``, ``/v1/policy``,
``/v1/map``, ``/v1/ipam``, ``/v1/service``, ``/v1/ip``, ``/v1/debuginfo``); the monitor is a
long poll (``/v1/monitor?since=N``) instead of upstream's separate monitor socket.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ciliumctl.agent import labels as lbl
from ciliumctl.agent.daemon import Agent
from ciliumctl.agent.endpoint import Endpoint
from ciliumctl.agent.ipam import IPAMError
from ciliumctl.errors import CiliumctlError
from ciliumctl.spans import Steps

log = logging.getLogger("cilium-agent.api")

Route = Callable[[Agent, "Request"], tuple[int, Any]]


class Request:
    """The parts of an HTTP request a route reads."""

    def __init__(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.params: dict[str, str] = {}

    def arg(self, name: str, default: str = "") -> str:
        """One query parameter."""
        return self.query.get(name, [default])[0]


class APIError(CiliumctlError):
    """An error answered with an HTTP status and upstream's error body (a JSON string)."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


# ---------------------------------------------------------------------- routes
def _healthz(agent: Agent, _req: Request) -> tuple[int, Any]:
    return 200, agent.status()


def _config(agent: Agent, _req: Request) -> tuple[int, Any]:
    values = dict(sorted(agent.config.values.items()))
    return 200, {
        "spec": {"options": {}, "policy-enforcement": agent.config.get("enable-policy")},
        "status": {
            "daemonConfigurationMap": values,
            "realized": {"policy-enforcement": agent.config.get("enable-policy")},
            "addressing": {"ipv4": {"enabled": True, "ip": agent.ipam.router or ""}},
            "routing-mode": agent.config.get("routing-mode"),
            "ipam-mode": agent.config.get("ipam"),
            "kube-proxy-replacement": agent.config.get("kube-proxy-replacement"),
            "sources": dict(sorted(agent.config.sources.items())),
        },
    }


def _endpoints(agent: Agent, _req: Request) -> tuple[int, Any]:
    return 200, [ep.to_api() for ep in agent.endpoints.list()]


def _endpoint_id(req: Request) -> int:
    raw = req.params["id"]
    if raw.startswith("cilium-local:"):
        raw = raw.partition(":")[2]
    if not raw.isdigit():
        raise APIError(400, f"endpoint id {raw!r} is not a number", "use the ID column")
    return int(raw)


def _lookup(agent: Agent, req: Request) -> Endpoint | None:
    """The endpoint a path names: its id (``cilium-local:`` optional) or, as upstream's API
    takes it, ``container-id:<id>`` (what a CNI plugin knows)."""
    raw = req.params["id"]
    if raw.startswith("container-id:"):
        return agent.endpoints.by_container(raw.partition(":")[2])
    return agent.endpoints.get(_endpoint_id(req))


def _endpoint(agent: Agent, req: Request) -> tuple[int, Any]:
    ep = _lookup(agent, req)
    if ep is None:
        raise APIError(
            404, f"endpoint {req.params['id']} not found", "see cilium-dbg endpoint list"
        )
    return 200, ep.to_api()


def _endpoint_put(agent: Agent, req: Request) -> tuple[int, Any]:
    """CNI ADD: create the endpoint of a pod (upstream's EndpointChangeRequest subset), logged
    with the time each step took, as upstream logs a successful endpoint creation."""
    steps = Steps()
    body = req.body if isinstance(req.body, dict) else {}
    namespace, name = body.get("k8s-namespace"), body.get("k8s-pod-name")
    if not namespace or not name:
        raise APIError(400, "k8s-namespace and k8s-pod-name are required")
    pod = agent.pod_for(str(namespace), str(name))
    if pod is None:
        raise APIError(404, f"pod {namespace}/{name} not found", "is the API server reachable?")
    labels = agent.ns_labels(str(namespace))
    steps.done("pod")
    addressing = body.get("addressing") or {}
    raw_id = req.params["id"]
    endpoint_id = int(raw_id) if raw_id.isdigit() and int(raw_id) > 0 else None  # 0: agent picks
    ep = agent.endpoints.add(
        pod,
        labels,
        endpoint_id=endpoint_id,
        steps=steps,
        container_id=str(body.get("container-id") or ""),
        ifname=str(body.get("interface-name") or ""),
        netns=str(body.get("netns-path") or ""),
        ipv4=addressing.get("ipv4"),
        mac=body.get("mac"),
        host_mac=body.get("host-mac"),
    )
    log.info(
        "Successful endpoint creation endpointID=%d identity=%s k8sPodName=%s/%s %s",
        ep.id,
        ep.identity,
        namespace,
        name,
        " ".join(f"{k}={v}" for k, v in steps.fields().items()),
    )
    return 201, ep.to_api()


def _endpoint_delete(agent: Agent, req: Request) -> tuple[int, Any]:
    found = _lookup(agent, req)
    ep = agent.remove_endpoint(found.id) if found else None
    return (200, {"deleted": ep.id}) if ep else (404, f"endpoint {req.params['id']} not found")


def _identity_model(number: int, labels: dict[str, str]) -> dict[str, Any]:
    return {"id": number, "labels": lbl.format_labels(labels)}


def _identities(agent: Agent, _req: Request) -> tuple[int, Any]:
    out = [_identity_model(n, lbl.RESERVED_LABELS[n]) for n in sorted(lbl.RESERVED_LABELS)]
    out += [_identity_model(n, v) for n, v in sorted(agent.allocator.identities().items())]
    out += [
        _identity_model(n, lbl.cidr_labels(p))
        for p, n in sorted(agent.cidr_identities.items(), key=lambda i: i[1])
    ]
    return 200, out


def _identity(agent: Agent, req: Request) -> tuple[int, Any]:
    _, all_ids = _identities(agent, req)
    raw = req.params["id"]
    for item in all_ids:
        if str(item["id"]) == raw or lbl.RESERVED_NAMES.get(item["id"]) == f"reserved:{raw}":
            return 200, item
    raise APIError(404, f"identity {raw} not found", "see cilium-dbg identity list")


def _policy(agent: Agent, req: Request) -> tuple[int, Any]:
    rules: list[dict[str, Any]] = []
    for parsed in agent.repository.policies():
        rules.append(
            {
                "policy": str(parsed.key),
                "rules": len(parsed.rules),
                "errors": list(parsed.errors),
                "cidrs": sorted(parsed.cidrs),
                "selectors": [str(r.subject) for r in parsed.rules],
            }
        )
    wanted = req.query.get("labels")
    if wanted:
        rules = [r for r in rules if any(w in str(r["policy"]) for w in wanted)]
    return 200, {"revision": agent.repository.revision, "policy": json.dumps(rules, indent=2)}


def _selectors(agent: Agent, _req: Request) -> tuple[int, Any]:
    return 200, [
        {"selector": str(sel), "identities": sorted(ids), "users": 1}
        for sel, ids in sorted(agent.cache.selectors().items(), key=lambda i: str(i[0]))
    ]


def _maps(agent: Agent, _req: Request) -> tuple[int, Any]:
    return 200, {"maps": agent.datapath.map_list()}


def _map(agent: Agent, req: Request) -> tuple[int, Any]:
    name = req.params["name"]
    if name not in agent.datapath.map_names():
        raise APIError(404, f"map {name} not found", "see cilium-dbg map list")
    return 200, {"path": name, "cache": agent.datapath.dump_map(name)}


def _ipam_post(agent: Agent, req: Request) -> tuple[int, Any]:
    owner = req.arg("owner") or "unknown"
    try:
        alloc = agent.ipam.allocate(owner)
    except IPAMError as exc:
        raise APIError(502 if exc.code == "exhausted" else 503, exc.message, exc.hint) from exc
    return 201, {
        "address": {"ipv4": alloc.ip},
        "ipv4": {"ip": alloc.ip, "cidrs": [alloc.cidr], "gateway": alloc.gateway},
        "host-addressing": {"ipv4": {"ip": alloc.gateway, "enabled": True}},
    }


def _ipam_delete(agent: Agent, req: Request) -> tuple[int, Any]:
    released = agent.ipam.release(req.params["ip"])
    return 200, {"released": released}


def _ipam_get(agent: Agent, _req: Request) -> tuple[int, Any]:
    return 200, agent.ipam.status()


def _services(agent: Agent, _req: Request) -> tuple[int, Any]:
    out = []
    for index, (name, fe) in enumerate(agent.services.list(), start=1):
        out.append(
            {
                "spec": {
                    "id": index,
                    "frontend-address": {
                        "ip": fe.address,
                        "port": fe.port,
                        "protocol": fe.protocol.name,
                    },
                    "backend-addresses": [
                        {"ip": b.address, "port": b.port, "state": "active"} for b in fe.backends
                    ],
                    "flags": {
                        "type": fe.kind,
                        "name": name.split("/")[1],
                        "namespace": name.split("/")[0],
                    },
                },
                "status": {"realized": {"id": index}},
            }
        )
    return 200, out


def _ip(agent: Agent, _req: Request) -> tuple[int, Any]:
    return 200, [
        {
            "cidr": o.entry.prefix,
            "identity": o.entry.identity,
            "host-ip": o.entry.tunnel_endpoint or "",
            "source": o.owner,
        }
        for o in agent.ipcache.entries()
    ]


def _debuginfo(agent: Agent, req: Request) -> tuple[int, Any]:
    _, policy = _policy(agent, req)
    _, services = _services(agent, req)
    return 200, {
        "cilium-status": agent.status(),
        "cilium-version": agent.status()["version"],
        "endpoint-list": [ep.to_api() for ep in agent.endpoints.list()],
        "policy": policy,
        "service-list": services,
        "kernel-version": os.uname().release,
        "cilium-memory-map": "",
    }


def _monitor(agent: Agent, req: Request) -> tuple[int, Any]:
    since = int(req.arg("since", "0") or 0)
    timeout = min(float(req.arg("timeout", "1") or 1), 30.0)
    events = agent.events_since(since, timeout)
    types = {t for value in req.query.get("type", []) for t in value.split(",") if t}
    if types:
        events = [e for e in events if e.get("type") in types]
    return 200, {"last": agent.event_seq, "events": events}


def _metrics(agent: Agent, _req: Request) -> tuple[int, Any]:
    return 200, agent.metrics.samples()


def _health(agent: Agent) -> Any:
    if agent.health is None:
        raise APIError(503, "health checking is disabled", "set the Helm value healthChecking=true")
    return agent.health


def _health_status(agent: Agent, _req: Request) -> tuple[int, Any]:
    """cilium-health's cached status (upstream: ``GET /v1beta/status``)."""
    return 200, _health(agent).status()


def _health_probe(agent: Agent, _req: Request) -> tuple[int, Any]:
    """Probe every node now and answer the fresh status (``PUT /v1beta/status/probe``)."""
    health = _health(agent)
    health.probe()
    return 200, health.status()


def _health_healthz(agent: Agent, _req: Request) -> tuple[int, Any]:
    """cilium-health's own liveness (``GET /v1beta/healthz``)."""
    _health(agent)
    return 200, {"uptime": f"{round(time.time() - agent.started)}s"}


#: the host side of a pod's veth as cilium-cni names it (``lxc`` + 11 hex digits): the only
#: links the CNI routes below create or delete
_LXC = re.compile(r"lxc[0-9a-f]{11}")


def _plumber(agent: Agent) -> Any:
    if agent.plumber is None:
        raise APIError(404, "this agent does not wire endpoints", "cilium-cni wires it itself")
    return agent.plumber


def _link_name(raw: str) -> str:
    if not _LXC.fullmatch(raw):
        raise APIError(400, f"{raw!r} is not an endpoint's host interface (lxc + 11 hex)")
    return raw


def plumb(agent: Agent, body: Any, netns_fd: int) -> tuple[int, Any]:
    """CNI ADD's wiring, done by the agent (netlink is loaded here; the plugin stays a small
    client): the veth into the pod, its address, routes and neighbours. The pod's network
    namespace comes as a file descriptor the plugin opened, since the runtime's path (under
    /run/containerd, /var/run/netns, ...) need not exist in the agent's mounts."""
    body = body if isinstance(body, dict) else {}
    ifname = _link_name(str(body.get("host-ifname") or ""))
    ipv4, shown = body.get("ipv4"), str(body.get("netns") or "the pod's netns")
    if not isinstance(ipv4, str):
        raise APIError(400, "ipv4 is required")
    plumber = _plumber(agent)
    try:
        pod_mac, host_mac = plumber.plumb_endpoint(ifname, f"/proc/self/fd/{netns_fd}", ipv4=ipv4)
    except Exception as exc:
        with contextlib.suppress(Exception):
            plumber.delete_link(ifname)  # nothing half-made is left behind
        raise APIError(500, f"cannot create the veth {ifname} into {shown}: {exc}") from exc
    return 201, {"mac": pod_mac, "host-mac": host_mac, "gateway": plumber.GATEWAY4}


def _cni_link(agent: Agent, req: Request) -> tuple[int, Any]:
    """CNI CHECK: the host side of an endpoint's veth, if it exists."""
    ifname = _link_name(req.params["name"])
    try:
        return 200, {"name": ifname, "ifindex": _plumber(agent).ifindex(ifname)}
    except APIError:
        raise
    except Exception as exc:
        raise APIError(404, f"the veth {ifname} is missing: {exc}") from exc


def _cni_unplumb(agent: Agent, req: Request) -> tuple[int, Any]:
    """CNI DEL: delete the endpoint's veth (idempotent)."""
    ifname = _link_name(req.params["name"])
    _plumber(agent).delete_link(ifname)
    return 200, {"deleted": ifname}


ROUTES: list[tuple[str, re.Pattern[str], Route, str]] = [
    (m, re.compile(f"^{p}$"), f, re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", p))
    for m, p, f in (
        ("GET", r"/v1/healthz", _healthz),
        ("GET", r"/v1/config", _config),
        ("GET", r"/v1/endpoint", _endpoints),
        ("GET", r"/v1/endpoint/(?P<id>[^/]+)", _endpoint),
        ("PUT", r"/v1/endpoint/(?P<id>[^/]+)", _endpoint_put),
        ("DELETE", r"/v1/endpoint/(?P<id>[^/]+)", _endpoint_delete),
        ("GET", r"/v1/identity", _identities),
        ("GET", r"/v1/identity/(?P<id>[^/]+)", _identity),
        ("GET", r"/v1/policy", _policy),
        ("GET", r"/v1/policy/selectors", _selectors),
        ("GET", r"/v1/map", _maps),
        ("GET", r"/v1/map/(?P<name>[^/]+)", _map),
        ("GET", r"/v1/ipam", _ipam_get),
        ("POST", r"/v1/ipam", _ipam_post),
        ("DELETE", r"/v1/ipam/(?P<ip>[^/]+)", _ipam_delete),
        ("GET", r"/v1/service", _services),
        ("GET", r"/v1/ip", _ip),
        ("GET", r"/v1/debuginfo", _debuginfo),
        ("GET", r"/v1/monitor", _monitor),
        ("GET", r"/v1/metrics", _metrics),
        ("GET", r"/v1/cni/link/(?P<name>[^/]+)", _cni_link),
        ("DELETE", r"/v1/cni/link/(?P<name>[^/]+)", _cni_unplumb),
        ("GET", r"/v1beta/status", _health_status),
        ("PUT", r"/v1beta/status/probe", _health_probe),
        ("GET", r"/v1beta/healthz", _health_healthz),
    )
]


def dispatch(agent: Agent, method: str, target: str, body: Any) -> tuple[int, Any]:
    """Route one request; errors become upstream-style JSON string bodies. Each routed
    request's time is observed in ``cilium_agent_api_process_time_seconds`` (upstream's
    metric), its path as the route's template (``/v1/endpoint/{id}``)."""
    started = time.perf_counter()
    parts = urlsplit(target)
    req = Request(method, parts.path.rstrip("/") or "/", parse_qs(parts.query), body)
    known_path = False
    for route_method, pattern, handler, template in ROUTES:
        match = pattern.match(req.path)
        if not match:
            continue
        known_path = True
        if route_method != method:
            continue
        req.params = match.groupdict()
        try:
            status, payload = handler(agent, req)
        except APIError as exc:
            status, payload = exc.status, str(exc)
        except CiliumctlError as exc:
            status, payload = 500, str(exc)
        observe_api(agent, method, template, status, started)
        return status, payload
    return (405, f"{method} not allowed on {req.path}") if known_path else (404, "no such path")


def observe_api(agent: Agent, method: str, path: str, status: int, started: float) -> None:
    """One API call's processing time into the agent's metrics."""
    agent.metrics.api_process_time.labels(
        method=method, path=path, return_code=str(status)
    ).observe(time.perf_counter() - started)


class _Handler(BaseHTTPRequestHandler):
    agent: Agent
    protocol_version = "HTTP/1.1"

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            self._reply(400, "request body is not JSON")
            return
        try:
            status, payload = dispatch(self.agent, method, self.path, body)
        except Exception as exc:  # a bug must answer 500, not kill the server thread
            log.exception("API %s %s failed", method, self.path)
            status, payload = 500, f"internal error: {exc}"
        self._reply(status, payload)

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("api: " + format, *args)


class UnixAPIServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """HTTP on a unix socket, one thread per connection; an accept queue deep enough for a
    node's pods all starting at once (socketserver's default of 5 turned CNI ADDs away)."""

    daemon_threads = True
    request_queue_size = 128


def _serve_cni_one(agent: Agent, conn: socket.socket) -> None:
    started = time.perf_counter()
    status = 500
    with conn:
        fds: list[int] = []
        try:
            conn.settimeout(30)
            msg, fds, _flags, _addr = socket.recv_fds(conn, 65536, 2)
            if len(fds) != 1:
                raise APIError(400, f"expected the pod's netns as one descriptor, got {len(fds)}")
            try:
                body = json.loads(msg)
            except json.JSONDecodeError as exc:
                raise APIError(400, "request is not JSON") from exc
            status, payload = plumb(agent, body, fds[0])
        except APIError as exc:
            status, payload = exc.status, str(exc)
        except Exception as exc:  # a bug must answer, not leave the plugin waiting
            log.exception("CNI wiring request failed")
            status, payload = 500, f"internal error: {exc}"
        finally:
            for fd in fds:
                os.close(fd)
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"status": status, "body": payload}).encode())
    observe_api(agent, "PUT", "cni.sock", status, started)


def serve_cni(agent: Agent, path: Path) -> socket.socket:
    """cilium-cni's wiring socket (SOCK_SEQPACKET, mode 0660): one JSON request with the pod's
    netns descriptor attached (SCM_RIGHTS), one JSON answer ``{"status", "body"}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket() or path.exists():
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(str(path))
    os.chmod(path, 0o660)
    server.listen(128)

    def loop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed
            threading.Thread(
                target=_serve_cni_one, args=(agent, conn), name="cni", daemon=True
            ).start()

    threading.Thread(target=loop, name="cni-socket", daemon=True).start()
    return server


def serve_api(agent: Agent, path: Path) -> UnixAPIServer:
    """Listen on ``path`` (mode 0660, a stale socket replaced) in a daemon thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket() or path.exists():
        path.unlink()
    handler = type("AgentAPIHandler", (_Handler,), {"agent": agent})
    server = UnixAPIServer(str(path), handler)
    os.chmod(path, 0o660)
    threading.Thread(target=server.serve_forever, name="api", daemon=True).start()
    return server


class _HealthHandler(BaseHTTPRequestHandler):
    agent: Agent

    def do_GET(self) -> None:
        if urlsplit(self.path).path != "/healthz":
            self.send_error(404)
            return
        require = self.headers.get("require-k8s-connectivity", "true").lower() != "false"
        ok = self.agent.healthy(require_k8s=require)
        if self.headers.get("brief", "").lower() == "true":
            data = b"OK" if ok else b"FAIL"
        else:
            data = json.dumps(self.agent.status()).encode()
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health: " + format, *args)


def serve_health(agent: Agent, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """The kubelet probes' ``/healthz`` on ``host:port`` in a daemon thread."""
    handler = type("AgentHealthHandler", (_HealthHandler,), {"agent": agent})
    server = ThreadingHTTPServer((host, port), handler)
    server.address_family = socket.AF_INET
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
