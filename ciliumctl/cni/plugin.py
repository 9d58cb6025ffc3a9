"""``cilium-cni``: CNI spec 1.0 (ADD, DEL, CHECK, VERSION) and 1.1's STATUS.

ADD asks the agent for an address (its IPAM: cluster-pool or kubernetes), wires the pod with
a veth through the datapath's netlink layer, registers the endpoint with the agent and
prints the CNI result. DEL undoes all of it and succeeds when there is nothing left to undo.
Failures print CNI error JSON (code, msg, details) on stdout and exit non-zero; whatever ADD
created before failing is removed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping
from typing import IO, Any, NamedTuple, Protocol

from ciliumctl.datapath.addressing import GATEWAY4  # not netlink: nothing else loaded
from ciliumctl.dbg.client import AgentAPIError, AgentClient, AgentUnreachableError
from ciliumctl.spans import Steps

CNI_VERSION = "1.0.0"
#: the agent's wiring socket, beside its API socket (``cilium.sock``)
CNI_SOCKET = "cni.sock"
SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]

# CNI error codes (spec section "Error"); 100+ are this plugin's own.
E_INCOMPATIBLE_VERSION = 1
E_CONTAINER_UNKNOWN = 3
E_INVALID_ENV = 4
E_IO = 5
E_DECODE = 6
E_INVALID_CONFIG = 7
E_TRY_AGAIN = 11
E_NOT_AVAILABLE = 50
E_POOL_EXHAUSTED = 100
E_AGENT = 101


class CNIError(Exception):
    """A failure reported as CNI error JSON."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, version: str = CNI_VERSION) -> dict[str, Any]:
        """The spec's error object."""
        return {"cniVersion": version, "code": self.code, "msg": self.msg, "details": self.details}


class Plumber(Protocol):
    """The netlink operations CNI needs (``ciliumctl.datapath.netlink`` provides them)."""

    GATEWAY4: str  # the pods' next hop (a link-local address the host veth answers)

    def plumb_endpoint(
        self, host_ifname: str, pod_netns: str, ipv4: str | None = None
    ) -> tuple[str, str]:
        """Create the veth into the pod, address and routes; (pod MAC, host MAC)."""
        ...

    def delete_link(self, name: str, netns: str | None = None) -> None:
        """Delete a link if it exists."""
        ...

    def ifindex(self, name: str, netns: str | None = None) -> int:
        """A link's index (raises when it does not exist)."""
        ...


class Invocation(NamedTuple):
    """The CNI environment and network configuration of one call (a NamedTuple: the plugin
    starts for every pod, and dataclasses costs it 5 ms of imports)."""

    command: str
    container_id: str
    netns: str
    ifname: str
    args: dict[str, str]
    config: dict[str, Any]

    @property
    def version(self) -> str:
        """The configuration's cniVersion."""
        return str(self.config.get("cniVersion") or CNI_VERSION)


def host_ifname(container_id: str) -> str:
    """The host side of the pod's veth: ``lxc`` + 11 hex digits (15 characters, as the kernel
    allows), stable for one container."""
    return "lxc" + hashlib.sha256(container_id.encode()).hexdigest()[:11]


def parse(env: Mapping[str, str], stdin: str) -> Invocation:
    """Read the environment and the configuration; CNIError for what is missing or invalid."""
    command = env.get("CNI_COMMAND", "")
    if not command:
        raise CNIError(E_INVALID_ENV, "CNI_COMMAND is not set", "the runtime must set it")
    try:
        config = json.loads(stdin) if stdin.strip() else {}
    except json.JSONDecodeError as exc:
        raise CNIError(E_DECODE, "the network configuration is not JSON", str(exc)) from exc
    if not isinstance(config, dict):
        raise CNIError(E_DECODE, "the network configuration is not a JSON object")
    version = str(config.get("cniVersion") or CNI_VERSION)
    if command != "VERSION" and version not in SUPPORTED_VERSIONS:
        raise CNIError(
            E_INCOMPATIBLE_VERSION,
            f"cniVersion {version} is not supported",
            f"use one of {', '.join(SUPPORTED_VERSIONS)}",
        )
    args = {}
    for item in env.get("CNI_ARGS", "").split(";"):
        key, sep, value = item.partition("=")
        if sep:
            args[key] = value
    inv = Invocation(
        command,
        env.get("CNI_CONTAINERID", ""),
        env.get("CNI_NETNS", ""),
        env.get("CNI_IFNAME", "eth0"),
        args,
        config,
    )
    if command in ("ADD", "DEL", "CHECK") and not inv.container_id:
        raise CNIError(E_INVALID_ENV, f"CNI_CONTAINERID is required for {command}")
    if command in ("ADD", "CHECK") and not inv.netns:
        raise CNIError(E_INVALID_ENV, f"CNI_NETNS is required for {command}")
    if command == "ADD" and not (args.get("K8S_POD_NAMESPACE") and args.get("K8S_POD_NAME")):
        raise CNIError(
            E_INVALID_ENV,
            "CNI_ARGS lacks K8S_POD_NAMESPACE / K8S_POD_NAME",
            "cilium-cni serves Kubernetes pods; the kubelet's runtime sets these",
        )
    return inv


def _agent_call(client: AgentClient, method: str, target: str, body: Any = None) -> Any:
    try:
        return client.request(method, target, body)
    except AgentUnreachableError as exc:
        raise CNIError(
            E_TRY_AGAIN,
            "the Cilium agent is not running on this node",
            f"{exc}; wait for the cilium-agent pod on this node to be Ready",
        ) from exc
    except AgentAPIError as exc:
        if "exhausted" in exc.message:
            raise CNIError(E_POOL_EXHAUSTED, "this node's pod address pool is exhausted",
                           exc.message) from exc  # fmt: skip
        if exc.status == 503:
            raise CNIError(E_TRY_AGAIN, "the agent has no address pool yet", exc.message) from exc
        raise CNIError(E_AGENT, f"the agent refused {method} {target}", exc.message) from exc


def _endpoint_of(client: AgentClient, container_id: str) -> dict[str, Any] | None:
    """The container's endpoint, looked up by the agent (an agent too old for
    ``container-id:`` answers 400: then from the list)."""
    try:
        return dict(client.request("GET", f"/v1/endpoint/container-id:{container_id}"))
    except AgentAPIError as exc:
        if exc.status == 404:
            return None
        if exc.status != 400:
            raise CNIError(E_AGENT, "the agent refused an endpoint lookup", exc.message) from exc
    except AgentUnreachableError:
        pass  # _agent_call below turns it into the CNI error
    for ep in _agent_call(client, "GET", "/v1/endpoint"):
        ids = (ep.get("status") or {}).get("external-identifiers") or {}
        if ids.get("container-id") == container_id:
            return dict(ep)
    return None


def cmd_add(
    inv: Invocation, client: AgentClient, net: Plumber, steps: Steps | None = None
) -> dict[str, Any]:
    """ADD: address, veth, endpoint; the CNI result."""
    steps = steps or Steps()
    if _endpoint_of(client, inv.container_id) is not None:
        raise CNIError(
            E_AGENT,
            f"container {inv.container_id[:12]} already has an endpoint",
            "a duplicate ADD; the runtime must DEL first",
        )
    ns, pod = inv.args["K8S_POD_NAMESPACE"], inv.args["K8S_POD_NAME"]
    owner = f"{ns}/{pod}/{inv.container_id[:12]}"
    steps.done("lookup")
    ipam = _agent_call(client, "POST", f"/v1/ipam?owner={owner}")
    ip = ipam["address"]["ipv4"]
    steps.done("ipam")
    gateway = net.GATEWAY4
    ifname = host_ifname(inv.container_id)
    created_link = False
    try:
        try:
            pod_mac, host_mac = net.plumb_endpoint(ifname, inv.netns, ipv4=ip)
        except Exception as exc:
            raise CNIError(
                E_IO, f"cannot create the veth {ifname} into {inv.netns}", str(exc)
            ) from exc
        created_link = True
        steps.done("wire")
        _agent_call(
            client,
            "PUT",
            "/v1/endpoint/0",
            {
                "container-id": inv.container_id,
                "k8s-namespace": ns,
                "k8s-pod-name": pod,
                "interface-name": ifname,
                "netns-path": inv.netns,
                "addressing": {"ipv4": ip},
                "mac": pod_mac,
                "host-mac": host_mac,
            },
        )
        steps.done("endpoint")
    except CNIError:
        if created_link:
            net.delete_link(ifname)
        _release(client, ip)
        raise
    return {
        "cniVersion": inv.version,
        "interfaces": [
            {"name": ifname, "mac": host_mac},
            {"name": inv.ifname, "mac": pod_mac, "sandbox": inv.netns},
        ],
        "ips": [{"address": f"{ip}/32", "gateway": gateway, "interface": 1}],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {},
    }


def _release(client: AgentClient, ip: str) -> None:
    # Without an agent the address is reconciled from its endpoints when it restarts.
    with contextlib.suppress(AgentUnreachableError, AgentAPIError):
        client.request("DELETE", f"/v1/ipam/{ip}")


def cmd_del(inv: Invocation, client: AgentClient, net: Plumber) -> None:
    """DEL: endpoint, address and veth; success when already gone (or the agent is gone)."""
    net.delete_link(host_ifname(inv.container_id))
    try:
        ep = _endpoint_of(client, inv.container_id)
    except CNIError as exc:
        if exc.code == E_TRY_AGAIN:
            return  # no agent: the veth is gone, the agent forgets the endpoint on restore
        raise
    if ep is None:
        return
    _agent_call(client, "DELETE", f"/v1/endpoint/{ep['id']}")
    for addr in ((ep.get("status") or {}).get("networking") or {}).get("addressing") or []:
        if addr.get("ipv4"):
            _release(client, addr["ipv4"])


def cmd_check(inv: Invocation, client: AgentClient, net: Plumber) -> None:
    """CHECK: the endpoint is known to the agent and its veth exists."""
    if _endpoint_of(client, inv.container_id) is None:
        raise CNIError(E_CONTAINER_UNKNOWN, f"no endpoint for container {inv.container_id[:12]}")
    try:
        net.ifindex(host_ifname(inv.container_id))
    except Exception as exc:
        raise CNIError(
            E_IO, f"the veth {host_ifname(inv.container_id)} is missing", str(exc)
        ) from exc


def cmd_status(client: AgentClient) -> None:
    """STATUS (CNI 1.1): ready when the agent answers and has an address pool."""
    try:
        status = client.get("/v1/healthz")
    except (AgentUnreachableError, AgentAPIError) as exc:
        raise CNIError(E_NOT_AVAILABLE, "the Cilium agent is not running on this node",
                       str(exc)) from exc  # fmt: skip
    if not (status.get("ipam") or {}).get("ipv4"):
        raise CNIError(E_NOT_AVAILABLE, "the agent has no pod address pool yet",
                       "cilium-operator allocates one to this node's CiliumNode")  # fmt: skip


def _netlink() -> Plumber:
    from ciliumctl.datapath import netlink

    return netlink


def _not_served(exc: AgentAPIError) -> bool:
    """The agent has no ``/v1/cni`` paths (an older one) or leaves the wiring to us."""
    return exc.status == 404 and ("no such path" in exc.message or "does not wire" in exc.message)


class AgentPlumber:
    """The wiring done by the agent (``/v1/cni/...``), which has netlink loaded and runs in
    the node's network namespace: the plugin then imports no netlink library, the larger
    part of each call's cost. An agent without these paths (404), or none at all for a
    DEL, falls back to wiring here."""

    GATEWAY4 = GATEWAY4  # the agent answers with the same (its netlink module's)

    def __init__(self, client: AgentClient, local: Any = _netlink) -> None:
        self.client = client
        self.socket = os.path.join(os.path.dirname(client.path), CNI_SOCKET)
        self._local_factory = local
        self._local: Plumber | None = None

    def _fallback(self) -> Plumber:
        if self._local is None:
            self._local = self._local_factory()
        return self._local

    def plumb_endpoint(
        self, host_ifname: str, pod_netns: str, ipv4: str | None = None
    ) -> tuple[str, str]:
        """Create the veth into the pod (see :class:`Plumber`)."""
        body = {"host-ifname": host_ifname, "netns": pod_netns, "ipv4": ipv4}
        wired = self._wire(body, pod_netns)
        if wired is None:  # an agent without the wiring socket (an older one): wire here
            return self._fallback().plumb_endpoint(host_ifname, pod_netns, ipv4=ipv4)
        status, answer = wired
        if status >= 400:
            if status == 404 and "does not wire" in str(answer):
                return self._fallback().plumb_endpoint(host_ifname, pod_netns, ipv4=ipv4)
            raise AgentAPIError(status, f"agent wiring {host_ifname}: {answer}")
        self.GATEWAY4 = str(answer.get("gateway") or self.GATEWAY4)
        return str(answer["mac"]), str(answer["host-mac"])

    def _wire(self, body: dict[str, Any], pod_netns: str) -> tuple[int, Any] | None:
        """One request on the agent's wiring socket, the pod's netns passed as an open file
        descriptor (the agent may not see the runtime's path); (status, body), or None when
        the agent has no such socket."""
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.settimeout(self.client.timeout)
            try:
                sock.connect(self.socket)
            except (FileNotFoundError, ConnectionRefusedError):
                return None
            netns = os.open(pod_netns, os.O_RDONLY | os.O_CLOEXEC)  # missing: the caller's
            try:
                socket.send_fds(sock, [json.dumps(body).encode()], [netns])
            finally:
                os.close(netns)
            raw = sock.recv(1 << 20)
        try:
            answer = json.loads(raw)
            return int(answer["status"]), answer["body"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AgentAPIError(
                502, f"the agent's wiring answer is not JSON: {raw[:200]!r}"
            ) from exc

    def delete_link(self, name: str, netns: str | None = None) -> None:
        """Delete the endpoint's veth; idempotent."""
        try:
            self.client.request("DELETE", f"/v1/cni/link/{name}")
        except (AgentUnreachableError, AgentAPIError) as exc:
            if isinstance(exc, AgentAPIError) and not _not_served(exc):
                raise
            self._fallback().delete_link(name, netns)

    def ifindex(self, name: str, netns: str | None = None) -> int:
        """The index of the endpoint's veth (raises when it does not exist)."""
        try:
            return int(self.client.get(f"/v1/cni/link/{name}")["ifindex"])
        except AgentAPIError as exc:
            if _not_served(exc):
                return self._fallback().ifindex(name, netns)
            raise


def _logfmt(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=') else text


def log_call(inv: Invocation | None, steps: Steps, error: CNIError | None = None) -> None:
    """Append one line per ADD/DEL/CHECK to the configuration's ``log-file`` (upstream's
    ``cni.logFile``), in the agent's ``key=value`` shape: what was asked, for which pod, how
    long it took and each step's share, or the error. A file that cannot be written costs
    the call nothing: the runtime still gets its answer, and stderr says why."""
    path = inv.config.get("log-file") if inv is not None else None
    if inv is None or not path or inv.command not in ("ADD", "DEL", "CHECK"):
        return
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    fields: dict[str, object] = {
        "time": stamp,
        "level": "error" if error else "info",
        "msg": f"CNI {inv.command} failed: {error.msg}" if error else f"CNI {inv.command} done",
        "subsys": "cilium-cni",
        "containerID": inv.container_id[:12],
        "pod": f"{inv.args.get('K8S_POD_NAMESPACE', '')}/{inv.args.get('K8S_POD_NAME', '')}",
    }
    fields.update(steps.fields())
    if error is not None:
        fields["code"] = error.code
        if error.details:
            fields["error"] = error.details
    line = " ".join(f"{key}={_logfmt(value)}" for key, value in fields.items()) + "\n"
    try:
        _rotate(str(path))
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
    except OSError as exc:
        print(f"cilium-cni: cannot write the log file {path}: {exc}", file=sys.stderr)


#: the log is rotated at this size, keeping this many older files (``.1`` the newest), as
#: upstream's plugin rotates its own: a node that starts pods for years fills no disk
LOG_MAX_BYTES = 100 * 1024 * 1024
LOG_BACKUPS = 3


def _rotate(path: str) -> None:
    try:
        if os.stat(path).st_size < LOG_MAX_BYTES:
            return
    except FileNotFoundError:
        return
    for n in range(LOG_BACKUPS - 1, 0, -1):
        if os.path.exists(f"{path}.{n}"):
            os.replace(f"{path}.{n}", f"{path}.{n + 1}")
    os.replace(path, f"{path}.1")


def run(env: Mapping[str, str], stdin: str, out: IO[str], net: Plumber | None = None) -> int:
    """One plugin invocation; the exit code."""
    steps = Steps()
    version = CNI_VERSION
    inv: Invocation | None = None
    try:
        inv = parse(env, stdin)
        version = inv.version
        if inv.command == "VERSION":
            out.write(json.dumps({"cniVersion": version, "supportedVersions": SUPPORTED_VERSIONS}))
            return 0
        client = AgentClient(inv.config.get("socket-path") or None, timeout=60)
        if inv.command == "STATUS":
            cmd_status(client)
            return 0
        plumber = net or AgentPlumber(client)
        if inv.command == "ADD":
            out.write(json.dumps(cmd_add(inv, client, plumber, steps)))
        elif inv.command == "DEL":
            cmd_del(inv, client, plumber)
        elif inv.command == "CHECK":
            cmd_check(inv, client, plumber)
        else:
            raise CNIError(E_INVALID_ENV, f"CNI_COMMAND {inv.command} is not supported",
                           "use ADD, DEL, CHECK, VERSION or STATUS")  # fmt: skip
        log_call(inv, steps)
        return 0
    except CNIError as exc:
        out.write(json.dumps(exc.to_json(version)))
        log_call(inv, steps, exc)
        return 1


def main() -> int:
    """Entry point of the ``cilium-cni`` console script."""
    return run(os.environ, sys.stdin.read(), sys.stdout)
