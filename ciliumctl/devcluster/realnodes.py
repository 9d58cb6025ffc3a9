"""Real worker nodes: one kubelet + containerd pair per node, each in its own network, mount
and UTS namespaces, cgroup subtree and directories, registered with the dev cluster.

Per node ``real-node-<i>`` (state under ``<state>/nodes/<node>``):

- a holder process (:mod:`ciliumctl.devcluster.nodeholder`) owns the mount and UTS
  namespaces: the paths a DaemonSet's hostPath volumes use (``/etc/cni/net.d``,
  ``/opt/cni/bin``, ``/var/run/cilium``, ``/sys/fs/bpf``, ``/var/lib/kubelet``, ...) are the
  node's own, as on a separate machine;
- containerd (Debian's) with ``restrict_oom_score_adj`` (no CAP_SYS_RESOURCE here), the
  cgroupfs driver and registry mirrors that send upstream names to the cluster's registry;
- kubelet (built with the other Kubernetes binaries) with a client certificate
  ``system:node:<node>``, a serving certificate from the cluster CA and a cgroup root of its
  own (``/ciliumctl.<cluster>.<node>`` in every hierarchy).

Processes are recorded by pid in ``cluster.json`` under ``real_nodes``; everything a node ran
(pods and shims included) lives in its cgroups, which is how ``down`` finds and stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from ciliumctl.devcluster import cgexec, netns, network
from ciliumctl.devcluster.cluster import DevClusterError, log_tail

#: every real node carries this label (kwok nodes do not)
REAL_LABEL = "dev-cluster.ciliumctl.io/real"
CLUSTER_DNS = "10.96.0.10"
#: images of the local registry are also reachable under this stable name (any port)
REGISTRY_NAME = "registry.dev-cluster.local"
#: upstream registries whose names resolve to the cluster's registry on every node
MIRRORED = ("quay.io", "docker.io", "registry.k8s.io", "ghcr.io", REGISTRY_NAME)
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"
#: host sysctls kubelet changes at start; recorded before the first node starts, restored
#: when the last dev cluster with real nodes goes down
KUBELET_SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
#: host limits raised while real nodes run (kubelet, cAdvisor and containerd each take inotify
#: instances; the default of 128 per user runs out with a few nodes), restored like the above
RAISED_SYSCTLS = {"fs.inotify.max_user_instances": 8192, "fs.inotify.max_user_watches": 524288}
SYSCTL_RECORD = Path("/run/ciliumctl/host-sysctls.json")
SYSCTL_USERS = Path("/run/ciliumctl/real-node-clusters")
#: host paths that are per node (node path -> directory name under the node's state)
NODE_DIRS = {
    "/etc/cni/net.d": "etc-cni-net.d",
    "/opt/cni/bin": "opt-cni-bin",
    "/run/cilium": "run-cilium",
    "/var/lib/kubelet": "var-lib-kubelet",
    "/var/log/pods": "var-log-pods",
    "/var/log/containers": "var-log-containers",
    "/run/containerd": "run-containerd",
    "/var/lib/cni": "var-lib-cni",
    "/var/lib/cilium": "var-lib-cilium",
}
NODE_FILES = {"/etc/machine-id": "machine-id", "/etc/resolv.conf": "resolv.conf"}
#: Per-node directories in memory: containerd's image store and snapshots are rewritten
#: by every node at every start (each node unpacks the images it runs), and on a busy
#: disk that I/O stalled image pulls and even the daemons' own exec for many seconds.
#: The tmpfs lives in the node's mount namespace and goes with it.
NODE_TMPFS = ("/var/lib/containerd",)
REQUIRED_TOOLS = {"containerd": "containerd", "runc": "runc", "nft": "nftables"}

Progress = Callable[[str], None]


def node_name(index: int) -> str:
    """The name of real node ``index``."""
    return f"real-node-{index}"


@dataclass
class RealNode:
    """One real node as recorded in ``cluster.json``."""

    name: str
    index: int
    ip: str
    ip6: str
    netns: str
    dir: str
    cgroup: str
    holder_pid: int = 0
    containerd_pid: int = 0
    kubelet_pid: int = 0
    #: the registry containerd and the API server kubelet were started with (a control
    #: plane restarted on other ports restarts them)
    registry: str = ""
    server: str = ""

    @property
    def netns_path(self) -> str:
        """For ``nsenter --net=`` / ``ip netns exec``."""
        return str(netns.path(self.netns))

    @property
    def containerd_socket(self) -> Path:
        """containerd's socket as the host sees it."""
        return Path(self.dir) / "mounts" / NODE_DIRS["/run/containerd"] / "containerd.sock"


@dataclass
class RealNodeStatus:
    """One real node as ``status`` shows it."""

    name: str
    ip: str
    netns: str
    holder_pid: int
    holder_running: bool
    containerd_pid: int
    containerd_running: bool
    containerd_healthy: bool
    kubelet_pid: int
    kubelet_running: bool
    kubelet_healthy: bool
    rss_bytes: int
    pod_cidr: str = ""
    pods: int = 0

    @property
    def healthy(self) -> bool:
        return self.holder_running and self.containerd_healthy and self.kubelet_healthy


def check_host() -> None:
    """Root and the Debian tools real nodes need: one line naming what is missing."""
    netns.require_root()
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise DevClusterError(
            f"real nodes need the Debian package(s) {', '.join(missing)}",
            "run `make host-deps` (or `./scripts/host-deps.sh`) as root",
        )


# ---------------------------------------------------------------------------- processes
_PF_KTHREAD = 0x00200000  # the flags field of /proc/PID/stat: a kernel thread


def node_cgroup(cluster: str, node: str) -> str:
    """The cgroup root of a real node (everything it runs lives below it)."""
    return f"ciliumctl.{cluster}.{node}"


def node_process(program: str, node: str, cluster: str | None = None) -> int:
    """The host pid of the one ``program`` process (a container's, by its command line)
    whose environment says it serves ``node`` (``K8S_NODE_NAME``) and, given ``cluster``,
    that runs in that cluster's node (another dev cluster may have a node of the same
    name): real nodes share the machine's PID namespace, so a test or bench can signal or
    measure it directly."""
    marker = f":/{node_cgroup(cluster, node)}/".encode() if cluster else None
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(program.encode()) for a in argv[:2]) and (
            f"K8S_NODE_NAME={node}".encode() in env
        ):
            if marker is not None:
                try:
                    if marker not in (entry / "cgroup").read_bytes():
                        continue
                except OSError:
                    continue
            found.append(int(entry.name))
    if len(found) != 1:
        raise DevClusterError(f"{len(found)} {program} processes serve {node}: {found}")
    return found[0]


def pid_alive(pid: int, hint: str) -> bool:
    """True when ``pid`` runs (not a zombie) and its command line contains ``hint``."""
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return False
    if stat[0] == "Z":
        return False
    if not cmdline:
        # In the middle of an exec (which can sit in state D on a busy disk) the command
        # line reads empty; only a kernel thread has none for good.
        return not int(stat[6]) & _PF_KTHREAD
    return hint.encode() in cmdline


def describe_pid(pid: int) -> str:
    """What ``pid`` is doing, for an error message: the program it runs and its state."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        wchan = Path(f"/proc/{pid}/wchan").read_text().strip() or "-"
    except (OSError, IndexError):
        return f"pid {pid} has exited"
    return f"pid {pid} runs {argv0}, state {state}, waiting in {wchan}"


def _reap(proc_pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(proc_pid, os.WNOHANG)


def stop_pid(pid: int, hint: str, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds, one process we started."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 3.0)):
        if not pid_alive(pid, hint):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and pid_alive(pid, hint):
            _reap(pid)
            time.sleep(0.05)


# ---------------------------------------------------------------------------- cgroups
def cgroup_mounts() -> list[Path]:
    """Every cgroup (v1 and v2) hierarchy mounted on the host."""
    return [Path(m) for m in cgexec.cgroup_mounts()]


def cgroup_create(root: str) -> None:
    """Create ``root`` and ``root/system`` in every hierarchy (cpuset copies cpus/mems)."""
    for mount in cgroup_mounts():
        for rel in (root, f"{root}/system"):
            path = mount / rel
            path.mkdir(parents=True, exist_ok=True)
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if (path / knob).exists() and not (path / knob).read_text().strip():
                    (path / knob).write_text((path.parent / knob).read_text())
            freezer = path / "freezer.state"  # a cgroup left frozen would stop every joiner
            if freezer.exists() and freezer.read_text().strip() != "THAWED":
                freezer.write_text("THAWED")


def cgroup_pids(root: str) -> set[int]:
    """Every process in ``root``'s subtree, in any hierarchy."""
    pids: set[int] = set()
    for mount in cgroup_mounts():
        base = mount / root
        if not base.is_dir():
            continue
        for procs in base.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs.read_text().split())
    return pids


def cgroup_remove(root: str, timeout: float = 15.0) -> None:
    """Kill every process of ``root`` (pods, shims, daemons), then remove its cgroups."""
    deadline = time.monotonic() + timeout
    while (pids := cgroup_pids(root)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            _reap(pid)
        time.sleep(0.1)
    for mount in cgroup_mounts():
        base = mount / root
        if not base.is_dir():
            continue
        dirs = sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for path in [*dirs, base]:
            for _ in range(20):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
    # parents we made for the root (``/ciliumctl.<cluster>.<node>`` has none)


def cgroup_rss(root: str) -> int:
    """Memory used by everything in ``root`` (v1 memory controller; 0 if unknown)."""
    for mount in cgroup_mounts():
        stat = mount / root / "memory.stat"
        if stat.exists():
            for line in stat.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "total_rss":
                    return int(value)
    return 0


# ---------------------------------------------------------------------------- sysctls
@contextlib.contextmanager
def _sysctl_lock() -> Iterator[None]:
    SYSCTL_USERS.mkdir(parents=True, exist_ok=True)
    with open(SYSCTL_USERS.parent / "sysctl.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def record_sysctls(cluster_key: str) -> None:
    """Remember the host sysctls kubelet will change (once per machine) and that this
    cluster uses them."""
    with _sysctl_lock():
        values = json.loads(SYSCTL_RECORD.read_text()) if SYSCTL_RECORD.exists() else {}
        for key in (*KUBELET_SYSCTLS, *RAISED_SYSCTLS):
            if key not in values and (value := netns.read_sysctl(key)):
                values[key] = value
        SYSCTL_RECORD.write_text(json.dumps(values))
        (SYSCTL_USERS / cluster_key).touch()
        for key, floor in RAISED_SYSCTLS.items():
            current = netns.read_sysctl(key)
            if current.isdigit() and int(current) < floor:
                netns.write_sysctl(key, str(floor))


def restore_sysctls(cluster_key: str) -> dict[str, str]:
    """Drop this cluster's use; the last one out restores the recorded values."""
    with _sysctl_lock():
        (SYSCTL_USERS / cluster_key).unlink(missing_ok=True)
        if any(SYSCTL_USERS.iterdir()) or not SYSCTL_RECORD.exists():
            return {}
        values = json.loads(SYSCTL_RECORD.read_text())
        for key, value in values.items():
            with contextlib.suppress(OSError):
                netns.write_sysctl(key, value)
        SYSCTL_RECORD.unlink()
        return dict(values)


# ---------------------------------------------------------------------------- configs
def containerd_config(registry: str, sandbox_image: str) -> str:
    """containerd 1.6's config for a node: its default paths (per node through the mount
    namespace), cgroupfs, no oom_score_adj below its own, and the registry mirrors."""
    mirrors = "".join(
        f'[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{name}"]\n'
        f'  endpoint = ["http://{registry}"]\n'
        for name in (*MIRRORED, registry)
    )
    return f"""version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  max_concurrent_downloads = 6

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "/run/containerd/runc"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/opt/cni/bin"
  conf_dir = "/etc/cni/net.d"

{mirrors}"""


def kubelet_config(node: RealNode, ca: str, cert: str, key: str) -> dict[str, Any]:
    """The KubeletConfiguration of one node."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": node.ip,
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": ca},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": cert,
        "tlsPrivateKeyFile": key,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": "/" + node.cgroup,
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDomain": "cluster.local",
        "clusterDNS": [CLUSTER_DNS],
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "resolvConf": "/etc/resolv.conf",
        "podLogsDir": "/var/log/pods",
        "serializeImagePulls": False,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "maxPods": 110,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "protectKernelDefaults": False,
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "containerLogMaxSize": "10Mi",
    }


def bridge_conflist(pod_cidr: str) -> dict[str, Any]:
    """The reference plugins' CNI config for a node: a bridge with host-local IPAM from the
    node's podCIDR (routes between nodes are set by :func:`network.route_pod_cidrs`)."""
    return {
        "cniVersion": "1.0.0",
        "name": "dev-cluster-bridge",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


# ---------------------------------------------------------------------------- one node
class NodeRunner:
    """Starts, checks and stops the processes of real nodes of one cluster."""

    def __init__(
        self,
        *,
        cluster: str,
        state_dir: Path,
        log_dir: Path,
        addr: network.Addressing,
        kubelet: Path,
        ca: Any,
        write_kubeconfig: Callable[[Path, str], None],
        server: str,
        registry: str,
        sandbox_image: str,
    ) -> None:
        self.cluster = cluster
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.addr = addr
        self.kubelet = kubelet
        self.ca = ca
        self.write_kubeconfig = write_kubeconfig
        self.server = server
        self.registry = registry
        self.sandbox_image = sandbox_image

    def describe(self, index: int) -> RealNode:
        name = node_name(index)
        return RealNode(
            name=name,
            index=index,
            ip=self.addr.node_ip(index),
            ip6=self.addr.node_ip6(index),
            netns=self.addr.node_ns(name),
            dir=str(self.state_dir / "nodes" / name),
            cgroup=node_cgroup(self.cluster, name),
        )

    # -- pieces
    def _prepare_dirs(self, node: RealNode) -> dict[str, str]:
        base = Path(node.dir) / "mounts"
        binds: dict[str, str] = {}
        for target, sub in NODE_DIRS.items():
            (base / sub).mkdir(parents=True, exist_ok=True)
            binds[target] = str(base / sub)
        machine_id = base / NODE_FILES["/etc/machine-id"]
        if not machine_id.exists():
            machine_id.write_text(os.urandom(16).hex() + "\n")
        resolv = base / NODE_FILES["/etc/resolv.conf"]
        resolv.write_text(f"nameserver {network.WORLD_IPV4[0]}\n")
        binds["/etc/machine-id"] = str(machine_id)
        binds["/etc/resolv.conf"] = str(resolv)
        return binds

    def _log(self, node: RealNode, what: str) -> Path:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self.log_dir / f"{node.name}-{what}.log"

    @staticmethod
    def _popen(argv: list[str], log: Path, cgroup: str) -> subprocess.Popen[bytes]:
        """Start ``argv`` in its own session, already inside the node's cgroups (so its
        children, pods and shims included, are found and stopped through them); the cgroup
        is joined by :mod:`ciliumctl.devcluster.cgexec` before it execs ``argv``."""
        wrapper = [sys.executable, "-I", "-S", str(Path(__file__).with_name("cgexec.py"))]
        with open(log, "ab") as fh:
            fh.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
            fh.flush()
            return subprocess.Popen(
                [*wrapper, cgroup, "--", *argv],
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_holder(self, node: RealNode) -> None:
        binds = self._prepare_dirs(node)
        cgroup_create(node.cgroup)
        spec_path = Path(node.dir) / "holder.json"
        ready = Path(node.dir) / "holder.ready"
        ready.unlink(missing_ok=True)
        ready.with_suffix(".failed").unlink(missing_ok=True)
        spec_path.write_text(
            json.dumps(
                {
                    "hostname": node.name,
                    "binds": binds,
                    "tmpfs": list(NODE_TMPFS),
                    "stage": str(Path(node.dir) / "cgroup-stage"),
                    "ready": str(ready),
                }
            )
        )
        proc = self._popen(
            [
                "nsenter",
                f"--net={node.netns_path}",
                "--",
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "slave",
                "--fork",
                "--kill-child",
                sys.executable,
                "-m",
                "ciliumctl.devcluster.nodeholder",
                str(spec_path),
            ],
            self._log(node, "holder"),
            node.cgroup,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if ready.exists() and ready.read_text().strip():
                node.holder_pid = int(ready.read_text())
                return
            failed = ready.with_suffix(".failed")
            if failed.exists() or proc.poll() is not None:
                detail = failed.read_text() if failed.exists() else ""
                raise DevClusterError(
                    f"the namespaces of {node.name} could not be set up: {detail}"
                    f"{log_tail(self._log(node, 'holder'))}",
                    "real nodes need mount, UTS and network namespaces (run as root)",
                )
            time.sleep(0.05)
        raise DevClusterError(
            f"the namespaces of {node.name} were not ready within 20s",
            f"see {self._log(node, 'holder')}",
        )

    def _in_node(self, node: RealNode, argv: list[str], log: Path) -> int:
        proc = self._popen(
            ["nsenter", "-t", str(node.holder_pid), "--mount", "--uts", "--net", "--", *argv],
            log,
            node.cgroup,
        )
        return proc.pid

    def start_containerd(self, node: RealNode) -> None:
        conf = Path(node.dir) / "containerd.toml"
        conf.write_text(containerd_config(self.registry, self.sandbox_image))
        node.containerd_socket.unlink(missing_ok=True)
        node.registry = self.registry
        node.containerd_pid = self._in_node(
            node,
            [str(shutil.which("containerd")), "--config", str(conf)],
            self._log(node, "containerd"),
        )
        # generous: under heavy disk I/O the exec itself can stall for long (seen: state D
        # in folio_wait_bit_common) before the daemon prints its first line
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.containerd_healthy(node):
                return
            if not pid_alive(node.containerd_pid, "containerd"):
                break
            time.sleep(0.1)
        raise DevClusterError(
            f"containerd of {node.name} did not start ({describe_pid(node.containerd_pid)});"
            " last lines:\n"
            f"{log_tail(self._log(node, 'containerd'))}",
            "fix the cause shown above, then run `cilium dev-cluster up` again",
        )

    def start_kubelet(self, node: RealNode, labels: dict[str, str]) -> None:
        base = Path(node.dir)
        client = self.ca.issue(
            f"{node.name}-kubelet-client",
            f"system:node:{node.name}",
            organizations=("system:nodes",),
            client=True,
        )
        serving = self.ca.issue(
            f"{node.name}-kubelet-serving",
            f"system:node:{node.name}",
            organizations=("system:nodes",),
            server=True,
            dns_names=(node.name,),
            ip_addresses=(node.ip,),
        )
        kubeconfig = base / "kubelet.kubeconfig"
        self.write_kubeconfig(kubeconfig, node.name)
        config = base / "kubelet.yaml"
        config.write_text(
            yaml.safe_dump(
                kubelet_config(node, str(self.ca.cert_path), str(serving.cert), str(serving.key))
            )
        )
        del client
        node.server = self.server
        node.kubelet_pid = self._in_node(
            node,
            [
                str(self.kubelet),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={node.name}",
                f"--node-ip={node.ip}",
                "--node-labels=" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            ],
            self._log(node, "kubelet"),
        )

    # -- health
    @staticmethod
    def containerd_healthy(node: RealNode) -> bool:
        if not pid_alive(node.containerd_pid, "containerd"):
            return False
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(1.0)
            try:
                sock.connect(str(node.containerd_socket))
            except OSError:
                return False
        return True

    @staticmethod
    def kubelet_healthy(node: RealNode) -> bool:
        if not pid_alive(node.kubelet_pid, "kubelet"):
            return False
        try:
            with socket.create_connection((node.ip, 10248), timeout=1.0) as sock:
                sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
                return b" 200 " in sock.recv(256)
        except OSError:
            return False

    @classmethod
    def status_of(cls, node: RealNode) -> RealNodeStatus:
        """Pids, liveness and health of the node's processes, and its memory."""
        return RealNodeStatus(
            name=node.name,
            ip=node.ip,
            netns=node.netns,
            holder_pid=node.holder_pid,
            holder_running=pid_alive(node.holder_pid, "nodeholder"),
            containerd_pid=node.containerd_pid,
            containerd_running=pid_alive(node.containerd_pid, "containerd"),
            containerd_healthy=cls.containerd_healthy(node),
            kubelet_pid=node.kubelet_pid,
            kubelet_running=pid_alive(node.kubelet_pid, "kubelet"),
            kubelet_healthy=cls.kubelet_healthy(node),
            rss_bytes=cgroup_rss(node.cgroup),
        )

    # -- lifecycle
    def ensure(self, node: RealNode, labels: dict[str, str], progress: Progress) -> list[str]:
        """Start what is not running (the whole node when its namespaces are gone);
        returns what was (re)started."""
        started = []
        if not pid_alive(node.holder_pid, "nodeholder") or not netns.exists(node.netns):
            stop_node(node, self.addr)
            progress(f"{node.name}: network and mount namespaces")
            network.add_node(self.addr, node.name, node.index)
            self.start_holder(node)
            started.append("holder")
        if not self.containerd_healthy(node) or node.registry != self.registry:
            stop_pid(node.containerd_pid, "containerd")
            progress(f"{node.name}: starting containerd")
            self.start_containerd(node)
            started.append("containerd")
        if not pid_alive(node.kubelet_pid, "kubelet") or node.server != self.server:
            stop_pid(node.kubelet_pid, "kubelet")
            progress(f"{node.name}: starting kubelet")
            self.start_kubelet(node, labels)
            self.wait_kubelet_healthy(node)
            started.append("kubelet")
        return started

    def wait_kubelet_healthy(self, node: RealNode, timeout: float = 180.0) -> None:
        """Wait until the kubelet serves /healthz: a restarted kubelet's Node object still
        says Ready, so only its own health tells when it serves exec and logs again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.kubelet_healthy(node):
                return
            if not pid_alive(node.kubelet_pid, "kubelet"):
                break
            time.sleep(0.2)
        raise DevClusterError(
            f"kubelet of {node.name} did not become healthy within {timeout:.0f}s"
            f" ({describe_pid(node.kubelet_pid)}); last lines:\n"
            f"{log_tail(self._log(node, 'kubelet'))}",
            "fix the cause shown above, then run `cilium dev-cluster up` again",
        )


def stop_node(node: RealNode, addr: network.Addressing) -> None:
    """Stop the node's daemons, pods and holder; remove its cgroups and namespace."""
    stop_pid(node.kubelet_pid, "kubelet")
    stop_pid(node.containerd_pid, "containerd")
    cgroup_remove(node.cgroup)
    stop_pid(node.holder_pid, "nodeholder", grace=1.0)
    netns.delete(node.netns)
    netns.ip("link", "del", f"n{node.index}", ns=addr.router_ns, check=False)
    node.holder_pid = node.containerd_pid = node.kubelet_pid = 0


def sweep_unrecorded(cluster: str, known: set[str], addr: network.Addressing) -> list[str]:
    """Stop the nodes of ``cluster`` that its state does not record (a run killed or failed
    between starting a node and saving it): found by their cgroups, then their processes
    killed and their namespace deleted. Returns their names."""
    prefix = f"ciliumctl.{cluster}."
    found = {p.name.removeprefix(prefix) for m in cgroup_mounts() for p in m.glob(prefix + "*")}
    for name in sorted(found - known):
        cgroup_remove(prefix + name)
        netns.delete(addr.node_ns(name))
    return sorted(found - known)


def node_from_dict(data: dict[str, Any]) -> RealNode:
    """A :class:`RealNode` from its ``cluster.json`` record."""
    fields = RealNode.__dataclass_fields__
    return RealNode(**{k: v for k, v in data.items() if k in fields})


def node_to_dict(node: RealNode) -> dict[str, Any]:
    """The ``cluster.json`` record of a node."""
    return asdict(node)
