"""The local dev cluster: real etcd, kube-apiserver, controller-manager and scheduler, plus
kwok for fake nodes, all on 127.0.0.1 with free ports and state under one directory.

Processes are started in their own sessions so they outlive the command that started them;
their pids, ports and log files are recorded in ``cluster.json`` in the state directory so
``status``, a second ``up`` and ``down`` find them again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ciliumctl.devcluster import binaries, kwok, pki
from ciliumctl.errors import CiliumctlError

SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_CIDR = "10.244.0.0/16"
KWOK_FALLBACK_CIDR = "10.250.0.1/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_NAME = "dev"
START_ATTEMPTS = 3

Progress = Callable[[str], None]


class DevClusterError(CiliumctlError):
    """The dev cluster could not be started, found or stopped."""


@dataclass
class Component:
    """One running process of the cluster."""

    name: str
    pid: int
    port: int
    log: str
    health_url: str
    command: list[str] = field(default_factory=list)


@dataclass
class ComponentStatus:
    """Liveness and health of one component, as ``status`` reports it."""

    name: str
    pid: int
    port: int
    running: bool
    healthy: bool
    log: str


@dataclass
class NodeStatus:
    """One node as ``status`` reports it."""

    name: str
    ready: bool
    pod_cidr: str
    kernel: str


@dataclass
class ClusterStatus:
    """Everything ``cilium dev-cluster status`` shows."""

    name: str
    state_dir: str
    kubeconfig: str
    server: str
    components: list[ComponentStatus]
    nodes: list[NodeStatus]
    #: real nodes' processes (:class:`ciliumctl.devcluster.realnodes.RealNodeStatus`)
    real_nodes: list[Any] = field(default_factory=list)
    #: the sealed network (:class:`ciliumctl.devcluster.network.NetworkInfo` as a dict)
    network: dict[str, Any] = field(default_factory=dict)
    #: the registry's host:port on 127.0.0.1 ('' without real nodes)
    registry: str = ""

    @property
    def running(self) -> bool:
        """True when every component runs and answers its health check."""
        return bool(self.components) and all(c.running and c.healthy for c in self.components)

    @property
    def healthy(self) -> bool:
        """Running, and every real node's holder, containerd and kubelet healthy."""
        return self.running and all(n.healthy for n in self.real_nodes)


def default_state_root() -> Path:
    """Parent directory of all dev clusters' state (``$CILIUMCTL_STATE_DIR`` overrides)."""
    if os.environ.get("CILIUMCTL_STATE_DIR"):
        return Path(os.environ["CILIUMCTL_STATE_DIR"]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(base).expanduser() / "ciliumctl" / "dev-clusters"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when ``port`` on 127.0.0.1 can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int, binary_hint: str) -> bool:
    """True when ``pid`` runs and is still the binary we started (pids get recycled)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return binary_hint.encode() in cmdline


def advertise_address() -> str:
    """The address published in the ``kubernetes`` Service's endpoints.

    Kubernetes rejects loopback endpoint addresses, so the API server (which listens on
    127.0.0.1 only) advertises this machine's first global IPv4 address, as a kind node
    would; nothing in the dev cluster connects to it. Falls back to TEST-NET-1.
    """
    try:
        out = subprocess.run(
            ["ip", "-j", "-4", "addr", "show", "scope", "global"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
        for iface in json.loads(out or "[]"):
            for addr in iface.get("addr_info", []):
                if addr.get("local"):
                    return str(addr["local"])
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    return "192.0.2.1"


def log_tail(path: str | Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ('' when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class DevCluster:
    """One named dev cluster and its state directory."""

    def __init__(self, name: str = DEFAULT_NAME, state_dir: Path | str | None = None) -> None:
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise DevClusterError(
                f"invalid dev cluster name {name!r}",
                "use letters, digits, '-' and '_' only (--name)",
            )
        self.name = name
        self.state_dir = (
            Path(state_dir).expanduser().resolve() if state_dir else default_state_root() / name
        )
        self.pki_dir = self.state_dir / "pki"
        self.log_dir = self.state_dir / "logs"
        self.kubeconfig_path = self.state_dir / "kubeconfig"
        self.state_file = self.state_dir / "cluster.json"
        self.exec_dir = self.state_dir / "exec"
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def context(self) -> str:
        """The kubeconfig context name of this cluster."""
        return f"ciliumctl-{self.name}"

    # ------------------------------------------------------------------ state
    def _load_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_state(self, state: dict[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self.state_file)

    def components(self) -> list[Component]:
        """Components recorded in the state file."""
        return [Component(**c) for c in self._load_state().get("components", [])]

    def exists(self) -> bool:
        """True when a state directory with a recorded cluster exists."""
        return self.state_file.exists()

    # ------------------------------------------------------------------ pki/kubeconfig
    def _pki(self, advertise: str) -> dict[str, pki.CertPair]:
        ca = pki.CertificateAuthority(self.pki_dir)
        local = ("127.0.0.1",)
        return {
            "apiserver": ca.issue(
                "apiserver",
                "kube-apiserver",
                server=True,
                dns_names=(
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ),
                ip_addresses=(*local, "10.96.0.1", advertise),
            ),
            "admin": ca.issue(
                "admin", "kubernetes-admin", organizations=("system:masters",), client=True
            ),
            "kcm": ca.issue(
                "kube-controller-manager",
                "system:kube-controller-manager",
                client=True,
                server=True,
                dns_names=("localhost",),
                ip_addresses=local,
            ),
            "scheduler": ca.issue(
                "kube-scheduler",
                "system:kube-scheduler",
                client=True,
                server=True,
                dns_names=("localhost",),
                ip_addresses=local,
            ),
            "kwok": ca.issue(
                "kwok",
                "kwok-controller",
                organizations=("system:masters",),
                client=True,
                server=True,
                dns_names=("localhost",),
                ip_addresses=local,
            ),
            "kubelet-client": ca.issue(
                "apiserver-kubelet-client",
                "kube-apiserver-kubelet-client",
                organizations=("system:masters",),
                client=True,
            ),
            "sa": pki.service_account_keys(self.pki_dir),
        }

    def _write_kubeconfig(
        self,
        path: Path,
        server: str,
        creds: pki.CertPair,
        user: str,
        tls_server_name: str | None = None,
    ) -> None:
        import base64

        def b64(p: Path) -> str:
            return base64.b64encode(p.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": self.context,
                    "cluster": {
                        "server": server,
                        "certificate-authority-data": b64(self.pki_dir / "ca.crt"),
                        **({"tls-server-name": tls_server_name} if tls_server_name else {}),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": b64(creds.cert),
                        "client-key-data": b64(creds.key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": self.context,
                    "context": {
                        "cluster": self.context,
                        "user": user,
                    },
                }
            ],
            "current-context": self.context,
            "preferences": {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    # ------------------------------------------------------------------ processes
    def _probe(self, url: str, timeout: float = 2.0) -> bool:
        ctx = None
        if url.startswith("https://"):
            ctx = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:  # noqa: S310
                return 200 <= int(resp.status) < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _spawn(self, name: str, command: list[str], port: int, health_url: str) -> Component:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as fh:
            fh.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(command)}\n".encode())
            fh.flush()
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,
            )
        self._procs[proc.pid] = proc
        return Component(name, proc.pid, port, str(log), health_url, command)

    def _wait_healthy(self, comp: Component, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._probe(comp.health_url):
                return
            proc = self._procs.get(comp.pid)
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.2)
        tail = log_tail(comp.log)
        self._stop_pid(comp)
        if "address already in use" in tail:
            raise _PortTaken(comp.name)
        raise DevClusterError(
            f"{comp.name} did not become healthy within {timeout:.0f}s "
            f"(log {comp.log}); last lines:\n{tail}",
            "fix the cause shown above, then run `cilium dev-cluster up` again",
        )

    def _start(
        self,
        name: str,
        build: Callable[[int], tuple[list[str], str]],
        port: int | None,
        timeout: float,
    ) -> Component:
        """Start one component, moving to a fresh port whenever its port is taken."""
        for _attempt in range(START_ATTEMPTS):
            if port is None or not port_is_free(port):
                port = free_port()
            command, health = build(port)
            comp = self._spawn(name, command, port, health)
            try:
                self._wait_healthy(comp, timeout)
            except _PortTaken:
                port = None
                continue
            return comp
        raise DevClusterError(
            f"{name} could not bind a free port after {START_ATTEMPTS} attempts",
            "free some ports on 127.0.0.1 and retry",
        )

    @staticmethod
    def _stop_pid(comp: Component, grace: float = 10.0) -> None:
        hint = Path(comp.command[0]).name if comp.command else comp.name
        if not _pid_alive(comp.pid, hint):
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(comp.pid, sig)
            except ProcessLookupError:
                return
            except PermissionError:
                os.kill(comp.pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    done, _ = os.waitpid(comp.pid, os.WNOHANG)
                except ChildProcessError:
                    done = 0
                if done or not _pid_alive(comp.pid, hint):
                    return
                time.sleep(0.1)

    # ------------------------------------------------------------------ up
    def up(
        self,
        nodes: int = 3,
        *,
        real_nodes: int = 0,
        cni: str = "none",
        kube_proxy: bool = False,
        progress: Progress = lambda _: None,
        timeout: float = 120.0,
    ) -> ClusterStatus:
        """Start the cluster (or reuse the running one) and return when nodes are Ready.

        ``real_nodes`` kubelet+containerd nodes join the kwok nodes (see
        :mod:`ciliumctl.devcluster.realcluster`): Ready with ``cni="bridge"``, registered
        (NotReady, as without a CNI) with ``cni="none"``.
        """
        if nodes < 0 or nodes > 1000:
            raise DevClusterError(f"--nodes {nodes} is out of range", "use 0 to 1000 nodes")
        state = self._load_state()
        if (cni != "none" or kube_proxy) and not real_nodes and not state.get("network"):
            raise DevClusterError(
                "--cni and --kube-proxy apply to real nodes, and this cluster has none",
                "add --real-nodes N",
            )
        if real_nodes or state.get("network"):
            from ciliumctl.devcluster import realcluster

            realcluster.validate(self, state, real_nodes, cni)
            state = self._load_state()
        current = self.status(with_nodes=False) if state else None
        if current is not None and current.running:
            progress(f"reusing running dev cluster {self.name!r}")
        else:
            if current is not None and current.components:
                progress("stopping leftovers of a previous run")
                self._stop_all()
            self._start_components(state, progress, timeout)
        self._ensure_nodes(nodes, progress, timeout)
        if real_nodes or state.get("network"):
            realcluster.ensure(
                self,
                real_nodes,
                cni=cni,
                kube_proxy=kube_proxy,
                progress=progress,
                timeout=timeout,
            )
        return self.status()

    def _start_components(self, state: dict[str, Any], progress: Progress, timeout: float) -> None:
        old_ports = {c["name"]: c["port"] for c in state.get("components", [])}
        progress("locating binaries")
        bins = binaries.ensure(
            ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"],
            progress,
        )
        progress("generating certificates")
        advertise = state.get("advertise") or advertise_address()
        certs = self._pki(advertise)
        ca = str(self.pki_dir / "ca.crt")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        started: list[Component] = []
        record: dict[str, Any] = {
            "name": self.name,
            "created": time.time(),
            "components": [],
            "kubeconfig": str(self.kubeconfig_path),
            "advertise": advertise,
            # the sealed network and real nodes outlive a restart of the control plane
            **{k: state[k] for k in ("network", "real_nodes", "real") if k in state},
        }

        def remember(comp: Component) -> None:
            started.append(comp)
            record["components"] = [asdict(c) for c in started]
            self._save_state(record)

        try:
            progress("starting etcd")
            peer = free_port()
            data_dir = self.state_dir / "etcd"

            def etcd_cmd(port: int) -> tuple[list[str], str]:
                url = f"http://127.0.0.1:{port}"
                return [
                    str(bins["etcd"]),
                    "--name=default",
                    f"--data-dir={data_dir}",
                    f"--listen-client-urls={url}",
                    f"--advertise-client-urls={url}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-cluster=default=http://127.0.0.1:{peer}",
                    "--listen-metrics-urls=",
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                    "--quota-backend-bytes=4294967296",
                ], f"{url}/health"

            etcd = self._start("etcd", etcd_cmd, old_ports.get("etcd"), timeout)
            remember(etcd)

            progress("starting kube-apiserver")

            def apiserver_cmd(port: int) -> tuple[list[str], str]:
                return [
                    str(bins["kube-apiserver"]),
                    f"--etcd-servers=http://127.0.0.1:{etcd.port}",
                    "--bind-address=127.0.0.1",
                    f"--advertise-address={advertise}",
                    f"--secure-port={port}",
                    f"--cert-dir={self.pki_dir / 'apiserver-generated'}",
                    f"--tls-cert-file={certs['apiserver'].cert}",
                    f"--tls-private-key-file={certs['apiserver'].key}",
                    f"--client-ca-file={ca}",
                    f"--service-account-issuer={SA_ISSUER}",
                    f"--service-account-key-file={certs['sa'].cert}",
                    f"--service-account-signing-key-file={certs['sa'].key}",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    "--authorization-mode=Node,RBAC",
                    "--allow-privileged=true",
                    f"--kubelet-client-certificate={certs['kubelet-client'].cert}",
                    f"--kubelet-client-key={certs['kubelet-client'].key}",
                    f"--kubelet-certificate-authority={ca}",
                    "--kubelet-preferred-address-types=InternalIP",
                    "--profiling=false",
                    "--max-requests-inflight=1000",
                    "--max-mutating-requests-inflight=500",
                ], f"https://127.0.0.1:{port}/readyz"

            apiserver = self._start(
                "kube-apiserver", apiserver_cmd, old_ports.get("kube-apiserver"), timeout
            )
            remember(apiserver)
            server = f"https://127.0.0.1:{apiserver.port}"
            self._write_kubeconfig(self.kubeconfig_path, server, certs["admin"], "kubernetes-admin")
            kc = self.state_dir / "kubeconfigs"
            for comp_name, user in (
                ("kcm", "system:kube-controller-manager"),
                ("scheduler", "system:kube-scheduler"),
                ("kwok", "kwok-controller"),
            ):
                self._write_kubeconfig(
                    kc / f"{comp_name}.kubeconfig", server, certs[comp_name], user
                )

            def kube_common(comp: str, port: int) -> list[str]:
                kubeconfig = kc / f"{comp}.kubeconfig"
                return [
                    f"--kubeconfig={kubeconfig}",
                    f"--authentication-kubeconfig={kubeconfig}",
                    f"--authorization-kubeconfig={kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={port}",
                    f"--tls-cert-file={certs[comp].cert}",
                    f"--tls-private-key-file={certs[comp].key}",
                    f"--client-ca-file={ca}",
                    "--leader-elect=false",
                ]

            progress("starting kube-controller-manager")

            def kcm_cmd(port: int) -> tuple[list[str], str]:
                return [
                    str(bins["kube-controller-manager"]),
                    *kube_common("kcm", port),
                    f"--cluster-name={self.name}",
                    "--allocate-node-cidrs=true",
                    f"--cluster-cidr={CLUSTER_CIDR}",
                    "--node-cidr-mask-size=24",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    f"--service-account-private-key-file={certs['sa'].key}",
                    f"--root-ca-file={ca}",
                    "--use-service-account-credentials=true",
                    f"--cluster-signing-cert-file={ca}",
                    f"--cluster-signing-key-file={self.pki_dir / 'ca.key'}",
                    "--configure-cloud-routes=false",
                    "--kube-api-qps=200",
                    "--kube-api-burst=400",
                    "--concurrent-daemonset-syncs=5",
                    "--concurrent-deployment-syncs=10",
                    "--concurrent-replicaset-syncs=10",
                ], f"https://127.0.0.1:{port}/healthz"

            remember(
                self._start(
                    "kube-controller-manager",
                    kcm_cmd,
                    old_ports.get("kube-controller-manager"),
                    timeout,
                )
            )

            progress("starting kube-scheduler")

            def scheduler_cmd(port: int) -> tuple[list[str], str]:
                return [
                    str(bins["kube-scheduler"]),
                    *kube_common("scheduler", port),
                    "--kube-api-qps=200",
                    "--kube-api-burst=400",
                ], f"https://127.0.0.1:{port}/healthz"

            remember(
                self._start(
                    "kube-scheduler", scheduler_cmd, old_ports.get("kube-scheduler"), timeout
                )
            )

            progress("registering kwok's exec and logs kinds")
            self._install_kwok_crds(timeout)

            progress("starting kwok")
            kwok_config = self.state_dir / "kwok.yaml"
            kwok_config.write_text(kwok.configuration(KWOK_FALLBACK_CIDR))

            def kwok_cmd(port: int) -> tuple[list[str], str]:
                return [
                    str(bins["kwok"]),
                    f"--kubeconfig={kc / 'kwok.kubeconfig'}",
                    f"--config={kwok_config}",
                    "--manage-all-nodes=false",
                    f"--manage-nodes-with-annotation-selector="
                    f"{kwok.MANAGED_ANNOTATION}={kwok.MANAGED_VALUE}",
                    "--node-ip=127.0.0.1",
                    f"--node-port={port}",
                    f"--server-address=127.0.0.1:{port}",
                    f"--tls-cert-file={certs['kwok'].cert}",
                    f"--tls-private-key-file={certs['kwok'].key}",
                    "--node-lease-duration-seconds=40",
                ], f"https://127.0.0.1:{port}/healthz"

            remember(self._start("kwok", kwok_cmd, old_ports.get("kwok"), timeout))
        except BaseException:
            for comp in reversed(started):
                self._stop_pid(comp)
            raise

    def _install_kwok_crds(self, timeout: float) -> None:
        from ciliumctl.k8s import ObjectRef

        client = self.client()
        refs = []
        for crd in kwok.crd_manifests():
            client.apply(crd, force=True)
            refs.append(ObjectRef.of(crd))
        client.wait_ready(refs, timeout=timeout)

    def client(self) -> Any:
        """A :class:`ciliumctl.k8s.Client` for this cluster's admin kubeconfig."""
        from ciliumctl.k8s import Client

        return Client(str(self.kubeconfig_path), self.context)

    def _ensure_nodes(self, count: int, progress: Progress, timeout: float) -> None:
        from ciliumctl.k8s import ConflictError

        client = self.client()
        existing = {n["metadata"]["name"] for n in client.list("v1", "Node")}
        wanted = [f"kwok-node-{i}" for i in range(count)]
        todo = [n for n in wanted if n not in existing]
        if todo:
            progress(f"registering {len(todo)} node(s)")

            def create(name: str) -> None:
                with contextlib.suppress(ConflictError):  # registered by a concurrent `up`
                    client.create(
                        kwok.node_manifest(name, kubelet_version=binaries.KUBERNETES_VERSION)
                    )

            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(create, todo))
        progress(f"waiting for {count} node(s) to be Ready")
        deadline = time.monotonic() + timeout
        while True:
            nodes = {n["metadata"]["name"]: n for n in client.list("v1", "Node")}
            ready = [
                n
                for n in wanted
                if n in nodes and _node_ready(nodes[n]) and nodes[n].get("spec", {}).get("podCIDR")
            ]
            sa = client.get_or_none("v1", "ServiceAccount", "default", "default")
            if len(ready) == len(wanted) and sa is not None:
                return
            if time.monotonic() > deadline:
                kwok_log = self.state_dir / "logs" / "kwok.log"
                raise DevClusterError(
                    f"only {len(ready)}/{len(wanted)} nodes Ready after {timeout:.0f}s"
                    + ("" if sa else " and the default ServiceAccount is missing")
                    + f"; kwok log tail:\n{log_tail(kwok_log)}",
                    "check the component logs under " + str(self.log_dir),
                )
            time.sleep(0.5)

    # ------------------------------------------------------------------ status / down
    def status(self, *, with_nodes: bool = True) -> ClusterStatus:
        """Components (pid, port, running, healthy) and, if reachable, the nodes."""
        state = self._load_state()
        comps = [Component(**c) for c in state.get("components", [])]
        statuses = []
        for comp in comps:
            running = _pid_alive(comp.pid, Path(comp.command[0]).name if comp.command else "")
            healthy = running and self._probe(comp.health_url, timeout=1.0)
            statuses.append(
                ComponentStatus(comp.name, comp.pid, comp.port, running, healthy, comp.log)
            )
        server = next(
            (f"https://127.0.0.1:{c.port}" for c in comps if c.name == "kube-apiserver"), ""
        )
        nodes: list[NodeStatus] = []
        api_ok = any(s.name == "kube-apiserver" and s.healthy for s in statuses)
        if with_nodes and api_ok and self.kubeconfig_path.exists():
            for node in self.client().list("v1", "Node"):
                nodes.append(
                    NodeStatus(
                        name=node["metadata"]["name"],
                        ready=_node_ready(node),
                        pod_cidr=str(node.get("spec", {}).get("podCIDR", "")),
                        kernel=str(
                            node.get("status", {}).get("nodeInfo", {}).get("kernelVersion", "")
                        ),
                    )
                )
        result = ClusterStatus(
            self.name, str(self.state_dir), str(self.kubeconfig_path), server, statuses, nodes
        )
        if state.get("network"):
            from ciliumctl.devcluster import realcluster

            realcluster.fill_status(self, state, result, api_ok and with_nodes)
        return result

    def restart_component(self, name: str, *, timeout: float = 120.0) -> Component:
        """Stop one component and start it again with the same command and port (tests use
        this to interrupt the API server in the middle of an operation)."""
        state = self._load_state()
        comps = [Component(**c) for c in state.get("components", [])]
        for index, comp in enumerate(comps):
            if comp.name == name:
                self._stop_pid(comp, grace=0.5)
                fresh = self._spawn(name, comp.command, comp.port, comp.health_url)
                self._wait_healthy(fresh, timeout)
                comps[index] = fresh
                state["components"] = [asdict(c) for c in comps]
                self._save_state(state)
                return fresh
        raise DevClusterError(
            f"no component {name!r} in dev cluster {self.name!r}",
            "components: " + ", ".join(c.name for c in comps),
        )

    def _stop_all(self) -> list[str]:
        stopped = []
        for comp in reversed(self.components()):
            self._stop_pid(comp)
            stopped.append(comp.name)
        return stopped

    def down(self, *, keep_state: bool = False) -> list[str]:
        """Stop every process this cluster started; remove the state unless ``keep_state``."""
        if not self.state_dir.exists():
            raise DevClusterError(
                f"no dev cluster {self.name!r} at {self.state_dir}",
                "check --name/--state-dir; `cilium dev-cluster status` lists what runs",
            )
        state = self._load_state()
        stopped: list[str] = []
        if state.get("network"):
            from ciliumctl.devcluster import realcluster

            stopped += realcluster.down(self, state)
        stopped += self._stop_all()
        if keep_state:
            state = self._load_state()
            state["components"] = []
            self._save_state(state)
        else:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        return stopped

    def env(self) -> list[str]:
        """Shell lines that put the cluster's binaries on PATH and select its kubeconfig."""
        dirs: list[str] = []
        for name in ("kubectl", "helm", "kube-apiserver", "etcd", "kwok"):
            path = binaries.find(name)
            if path is not None and str(path.parent) not in dirs:
                dirs.append(str(path.parent))
        if not dirs:
            dirs.append(str(binaries.bin_dir()))
        path_line = ":".join(_sh_quote(d) for d in dirs)
        return [
            f'export PATH={path_line}:"$PATH"',
            f"export KUBECONFIG={_sh_quote(str(self.kubeconfig_path))}",
        ]

    def enable_exec(
        self,
        client: Any,
        namespace: str,
        pod: str,
        containers: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> Path:
        """Let ``kubectl exec`` run local processes for one pod, in its own work directory."""
        workdir = self.exec_dir / namespace / pod
        workdir.mkdir(parents=True, exist_ok=True)
        client.apply(kwok.exec_manifest(namespace, pod, str(workdir), containers, env), force=True)
        return workdir

    def serve_logs(
        self,
        client: Any,
        namespace: str,
        pod: str,
        logs_file: Path,
        containers: list[str] | None = None,
        previous_logs_file: Path | None = None,
    ) -> None:
        """Serve ``logs_file`` as the log of a pod's containers (``kubectl logs``).

        The file must be in the CRI log format (see :func:`kwok.cri_log`), as kubelet's are.
        """
        client.apply(
            kwok.logs_manifest(
                namespace,
                pod,
                str(logs_file),
                containers,
                str(previous_logs_file) if previous_logs_file else None,
            ),
            force=True,
        )


class _PortTaken(Exception):
    """A component exited because its port was taken between choosing and binding it."""


def _node_ready(node: dict[str, Any]) -> bool:
    for cond in node.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _sh_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
