"""`cilium sysdump` on the dev cluster: Cilium installed by `cilium install`, kwok serving
agent logs from files and running the stand-in `cilium-dbg` / `cilium-bugtool` for exec.

Three agents, each with a different defect: agent A has exec and logs, agent B has exec but
no logs, agent C has logs but its exec fails. Known secret strings are planted in a Secret,
in Helm values (reaching the ConfigMap and the DaemonSet's env), in a served log and in the
environment the stand-ins print; the archive must not contain any of them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ciliumctl.devcluster import DevCluster, kwok
from ciliumctl.k8s import Client, KubeError

NS = "kube-system"
STANDINS = Path(__file__).parent / "sysdump_standins"
_TOKEN = uuid.uuid4().hex
SECRETS = {
    "secret-data": f"secret-data-{_TOKEN}",
    "values-password": f"pw-{_TOKEN}",
    "values-url": f"urlpw-{_TOKEN}",
    "values-env": f"envtok-{_TOKEN}",
    "log-bearer": f"bearer{_TOKEN}{_TOKEN}",
    "log-password": f"logpw-{_TOKEN}",
    "exec-env": f"execpw-{_TOKEN}",
}


def run(dev_cluster: DevCluster, *args: str, timeout: float = 300, cwd: Path | None = None) -> Any:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="250")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ciliumctl",
            "--kubeconfig",
            str(dev_cluster.kubeconfig_path),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=cwd,
    )


@dataclass
class Agents:
    """The three agent pods: a (exec + logs), b (exec, no logs), c (logs, exec fails)."""

    a: dict[str, Any]
    b: dict[str, Any]
    c: dict[str, Any]
    operator: str


def _name(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["name"])


def _wait_exec(client: Client, pod: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.exec(NS, pod, ["cilium-dbg", "status"], "cilium-agent").exit_code == 0:
                return
        except KubeError:
            pass
        assert time.monotonic() < deadline, f"kwok never enabled exec for {pod}"
        time.sleep(0.5)


def _wait_logs(client: Client, pod: str, container: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.pod_logs(NS, pod, container):
                return
        except KubeError:
            pass
        assert time.monotonic() < deadline, f"kwok never served logs for {pod}"
        time.sleep(0.5)


def _mark_restarted(client: Client, pod: dict[str, Any]) -> None:
    """Record one restart of the agent container, as kubelet would after a crash: the
    sysdump then asks for the previous instance's log (kwok serves previous_logs_file)."""
    statuses = pod["status"]["containerStatuses"]
    for status in statuses:
        if status["name"] == "cilium-agent":
            started = status["state"]["running"]["startedAt"]
            status["restartCount"] = 1
            status["lastState"] = {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "startedAt": started,
                    "finishedAt": started,
                }
            }
    client.request(
        "PATCH",
        f"/api/v1/namespaces/{NS}/pods/{_name(pod)}/status",
        what="mark the agent restarted",
        body={"status": {"containerStatuses": statuses}},
        content_type="application/strategic-merge-patch+json",
    )


@pytest.fixture(scope="module")
def agents(
    dev_cluster: DevCluster, client: Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Agents]:
    """Cilium installed with secret-bearing values; exec and logs wired per agent."""
    work = tmp_path_factory.mktemp("sysdump-setup")
    values = work / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "extraConfig": {
                    "kvstore-password": SECRETS["values-password"],
                    "clustermesh-endpoint-note": f"https://admin:{SECRETS['values-url']}@etcd:2379",
                },
                "extraEnv": [{"name": "CILIUM_API_TOKEN", "value": SECRETS["values-env"]}],
            }
        )
    )
    client.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "sysdump-test-credentials", "namespace": NS},
            "data": {"password": base64.b64encode(SECRETS["secret-data"].encode()).decode()},
        }
    )
    # kwok resolves an exec's command with its *own* PATH (Go's exec.LookPath), not the
    # Exec object's env: restart it with the stand-ins on PATH.
    saved_path = os.environ["PATH"]
    os.environ["PATH"] = f"{STANDINS}:{saved_path}"
    try:
        dev_cluster.restart_component("kwok")
    finally:
        os.environ["PATH"] = saved_path
    try:
        installed = run(
            dev_cluster, "install", "-f", str(values), "--wait", "--wait-duration", "3m"
        )
        assert installed.returncode == 0, installed.stderr
        pods = sorted(
            client.list("v1", "Pod", NS, label_selector="k8s-app=cilium"),
            key=lambda p: p["spec"]["nodeName"],
        )
        assert len(pods) == 3
        a, b, c = pods
        operator = _name(client.list("v1", "Pod", NS, label_selector="io.cilium/app=operator")[0])
        env = {
            "PATH": f"{STANDINS}:{os.environ['PATH']}",
            "CILIUM_ETCD_PASSWORD": SECRETS["exec-env"],
        }
        for pod in (a, b):
            dev_cluster.enable_exec(
                client,
                NS,
                _name(pod),
                ["cilium-agent"],
                {**env, "K8S_NODE_NAME": pod["spec"]["nodeName"]},
            )
        logs = work / "agent.log"
        logs.write_text(
            kwok.cri_log(
                [
                    'time=2025-01-01T00:00:00Z level=info msg="Starting Cilium" subsys=daemon',
                    'level=debug msg=request header="Authorization: Bearer '
                    + SECRETS["log-bearer"]
                    + '"',
                    f"level=info msg=kvstore options password={SECRETS['log-password']} user=x",
                    'level=info msg="Cilium agent ready" subsys=daemon',
                ]
            )
        )
        previous = work / "agent-previous.log"
        previous.write_text(kwok.cri_log(["level=fatal msg=crashed before restart"]))
        for pod in (a, c):
            dev_cluster.serve_logs(
                client, NS, _name(pod), logs, ["cilium-agent"], previous_logs_file=previous
            )
        op_log = work / "operator.log"
        op_log.write_text(kwok.cri_log(["level=info msg=operator leading"]))
        dev_cluster.serve_logs(client, NS, operator, op_log)
        _mark_restarted(client, a)
        for pod in (a, b):
            _wait_exec(client, _name(pod))
        for pod in (a, c):
            _wait_logs(client, _name(pod), "cilium-agent")
        yield Agents(a, b, c, operator)
    finally:
        run(dev_cluster, "uninstall", "--wait", "--purge")
        client.delete("v1", "Secret", "sysdump-test-credentials", NS)


@dataclass
class Dump:
    result: Any
    path: Path
    root: str
    files: dict[str, bytes]

    def entry(self, prefix: str) -> str:
        found = [n for n in self.files if n.startswith(prefix)]
        assert found, f"no entry starting with {prefix!r} in {sorted(self.files)}"
        return found[0]

    def text(self, prefix: str) -> str:
        return self.files[self.entry(prefix)].decode()

    def has(self, prefix: str) -> bool:
        return any(n.startswith(prefix) for n in self.files)


def sysdump(dev_cluster: DevCluster, out: Path, *args: str) -> Dump:
    out.mkdir(parents=True, exist_ok=True)
    result = run(dev_cluster, "sysdump", "--output-filename", "dump-<ts>", *args, cwd=out)
    zips = list(out.glob("dump-*.zip"))
    assert len(zips) == 1, (result.stdout, result.stderr)
    with zipfile.ZipFile(zips[0]) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        root = zips[0].name[: -len(".zip")]
        for name in names:
            assert name.startswith(root + "/"), name
            assert not name.startswith("/") and "\\" not in name
            assert ".." not in name.split("/") and "" not in name.split("/")
        files = {n[len(root) + 1 :]: zf.read(n) for n in names}
    return Dump(result, zips[0], root, files)


@pytest.fixture(scope="module")
def full(agents: Agents, dev_cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Dump:
    return sysdump(dev_cluster, tmp_path_factory.mktemp("full"))


def test_archive_layout_and_content(full: Dump, agents: Agents) -> None:
    assert full.result.returncode == 0, full.result.stderr
    assert f"Archive:     {full.path.name}" in full.result.stdout
    for prefix in (
        "sysdump.log",
        "summary.json",
        "index.md",
        "redactions.json",
        "k8s-version-",
        "k8s-nodes-",
        "k8s-namespaces-",
        "k8s-events-",
        "k8s-pods-",
        "k8s-services-",
        "k8s-endpoints-",
        "k8s-endpointslices-",
        "k8s-leases-",
        "k8s-customresourcedefinitions-",
        "ciliumnodeconfigs-",
        "ciliumnetworkpolicies-",
        "cilium-daemonset-",
        "cilium-operator-deployment-",
        "cilium-configmap-",
        "cilium-helm-metadata-",
        "cilium-helm-values-",
        "cilium-status-",
        "k8s-secrets-",
    ):
        assert full.has(prefix), prefix
    nodes = yaml.safe_load(full.text("k8s-nodes-"))
    assert nodes["kind"] == "List" and len(nodes["items"]) == 3
    assert all("managedFields" not in n["metadata"] for n in nodes["items"])
    metadata = yaml.safe_load(full.text("cilium-helm-metadata-"))
    assert metadata["name"] == "cilium" and metadata["status"] == "deployed"
    a, b, c = (_name(p) for p in (agents.a, agents.b, agents.c))
    # agent A: logs (current and previous), every cilium-dbg command, the bugtool unpacked.
    ts = full.root[len("dump-") :]
    current = full.files[f"logs-{a}-cilium-agent-{ts}.log"].decode()
    assert "Starting Cilium" in current and "crashed before restart" not in current
    assert "crashed before" in full.files[f"logs-{a}-cilium-agent-{ts}-prev.log"].decode()
    assert full.has(f"logs-{agents.operator}-")
    for stem in (
        "cilium-dbg-status-verbose",
        "cilium-dbg-endpoint-list",
        "cilium-dbg-policy-get",
        "cilium-dbg-service-list",
        "cilium-dbg-bpf-ipcache-list",
        "cilium-dbg-bpf-ct-list-global",
        "cilium-dbg-debuginfo",
    ):
        assert full.has(f"{stem}-{a}-"), stem
        assert full.has(f"{stem}-{b}-"), stem
        assert not full.has(f"{stem}-{c}-"), stem
    endpoints = json.loads(full.text(f"cilium-dbg-endpoint-list-{a}-"))
    assert isinstance(endpoints, list)
    bugtool = [n for n in full.files if n.startswith(f"cilium-bugtool-{a}-")]
    assert any("/cmd/" in n for n in bugtool), bugtool
    assert not full.has(f"cilium-bugtool-{c}-")
    # agent B has no logs, agent C's exec fails: both recorded, neither fatal.
    assert not full.has(f"logs-{b}-cilium-agent-")
    summary = json.loads(full.files["summary.json"])
    assert summary["nodes"]["total"] == 3
    assert summary["kubernetes"]["version"].startswith("v1.34")
    assert summary["cilium"]["version"] == "1.18.5"
    assert summary["cilium"]["agents"] == 3
    assert summary["health"]["ok"] is True
    assert summary["tasks"]["ok"] > 50
    failed = {f["task"] for f in summary["failures"]}
    assert any(t.endswith(f"in {c}") for t in failed), failed
    assert any(t.startswith(f"logs {b}/cilium-agent") for t in failed), failed
    assert not any(a in t for t in failed), failed
    log = full.files["sysdump.log"].decode()
    outcomes = [m.group(1) for m in re.finditer(r"^ *[\d.]+s +[\d.]+s  (\w+) ", log, re.M)]
    assert len(outcomes) == summary["tasks"]["total"] == summary["tasks"]["finished"]
    assert set(outcomes) <= {"ok", "failed", "skipped"}
    for line in log.splitlines():
        if f"in {c}  -- " in line:  # every exec of agent C: failed, or skipped once known
            assert " failed " in line or (
                "skipped" in line and ("exec unavailable" in line or "not run" in line)
            ), line
    assert f"cilium-bugtool in {a}" in log
    index = full.files["index.md"].decode()
    assert "## What failed" in index and "Kubernetes: v1.34" in index


def test_node_filtering_by_name_and_ip(
    agents: Agents, dev_cluster: DevCluster, client: Client, tmp_path: Path
) -> None:
    a, b = agents.a, agents.b
    dump = sysdump(
        dev_cluster,
        tmp_path / "names",
        "--node-list",
        f"{a['spec']['nodeName']}, {b['spec']['nodeName']}",
        "--quick",
    )
    assert dump.result.returncode == 0, dump.result.stderr
    assert dump.has(f"cilium-dbg-status-verbose-{_name(a)}-")
    assert dump.has(f"cilium-dbg-status-verbose-{_name(b)}-")
    assert not dump.has(f"cilium-dbg-status-verbose-{_name(agents.c)}-")
    summary = json.loads(dump.files["summary.json"])
    assert summary["nodes"]["selected"] == 2 and summary["nodes"]["total"] == 3
    # --quick: objects and status, no logs, no bugtool, no other cilium-dbg dumps.
    assert not any(n.startswith(("logs-", "cilium-bugtool-", "cilium-dbg-bpf")) for n in dump.files)
    assert dump.has("k8s-pods-") and dump.has("cilium-status-")
    # kwok gives every node the address 127.0.0.1: selecting by it selects them all.
    node = client.get("v1", "Node", a["spec"]["nodeName"])
    ip = next(x["address"] for x in node["status"]["addresses"] if x["type"] == "InternalIP")
    by_ip = sysdump(dev_cluster, tmp_path / "ip", "--node-list", ip, "--quick")
    by_ip_summary = json.loads(by_ip.files["summary.json"])
    assert by_ip_summary["nodes"]["selected"] == 3
    assert any(f["task"].endswith(f"in {_name(agents.c)}") for f in by_ip_summary["failures"])
    missing = sysdump(dev_cluster, tmp_path / "none", "--node-list", "no-such-node", "--quick")
    assert missing.result.returncode == 0
    assert "no-such-node" in missing.result.stderr
    assert not any(n.startswith("cilium-dbg-") for n in missing.files)


def test_redaction_keeps_planted_secrets_out(
    full: Dump, agents: Agents, dev_cluster: DevCluster, tmp_path: Path
) -> None:
    blob = b"\n".join(full.files.values())
    for what, secret in SECRETS.items():
        assert secret.encode() not in blob, f"{what} leaked into the archive"
        assert base64.b64encode(secret.encode()) not in blob, f"{what} leaked base64-encoded"
    secrets = yaml.safe_load(full.text("k8s-secrets-"))
    planted = next(
        s for s in secrets["items"] if s["metadata"]["name"] == "sysdump-test-credentials"
    )
    assert planted["keys"] == ["password"] and "data" not in planted
    redactions = json.loads(full.files["redactions.json"])
    assert redactions["enabled"] is True and redactions["total"] >= 6
    entries = redactions["entries"]

    def counted(prefix: str) -> int:
        return sum(
            sum(v.values())
            for k, v in entries.items()
            if k.startswith(f"{full.root}/{prefix}") or k.startswith(prefix)
        )

    assert counted("cilium-helm-values-") >= 3
    assert counted("cilium-configmap-") >= 2
    assert counted(f"logs-{_name(agents.a)}-cilium-agent-") >= 2
    assert counted(f"cilium-dbg-debuginfo-{_name(agents.a)}-") >= 1
    assert "<redacted>" in full.text("cilium-helm-values-")
    # The proof that the check above means something: without redaction they are there.
    raw = sysdump(dev_cluster, tmp_path, "--no-redact", "--node-list", agents.a["spec"]["nodeName"])
    assert raw.result.returncode == 0, raw.result.stderr
    assert "--no-redact" in raw.result.stderr
    raw_blob = b"\n".join(raw.files.values())
    for what in ("values-password", "values-url", "values-env", "log-bearer", "exec-env"):
        assert SECRETS[what].encode() in raw_blob, what
    assert SECRETS["secret-data"].encode() not in raw_blob  # Secret data: never collected


class SlowRelay:
    """A TCP relay to the API server that holds every chunk it forwards for ``delay``
    seconds: the real API behind a slow link, so a sysdump lasts long enough to be
    interrupted whatever the machine's speed."""

    def __init__(self, upstream: tuple[str, int], delay: float = 0.15) -> None:
        import socket
        import threading

        self.upstream, self.delay = upstream, delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self.stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream, timeout=30)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: Any, dst: Any) -> None:
        try:
            while not self.stop.is_set() and (data := src.recv(65536)):
                time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for end in (src, dst):
                with contextlib.suppress(OSError):
                    end.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_interrupted_sysdump_leaves_a_valid_partial_archive(
    agents: Agents, dev_cluster: DevCluster, tmp_path: Path
) -> None:
    kubeconfig = yaml.safe_load(dev_cluster.kubeconfig_path.read_text())
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    relay = SlowRelay((host, int(port)))
    kubeconfig["clusters"][0]["cluster"]["server"] = f"https://{host}:{relay.port}"
    slow_kubeconfig = tmp_path / "slow.kubeconfig"
    slow_kubeconfig.write_text(yaml.safe_dump(kubeconfig))
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ciliumctl",
            "--kubeconfig",
            str(slow_kubeconfig),
            "sysdump",
            "--worker-count",
            "1",
            "--output-filename",
            "partial",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    target = tmp_path / "partial.zip"
    deadline = time.monotonic() + 120
    while not target.exists():  # the archive is created once the tasks are planned
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sysdump never started writing"
        time.sleep(0.02)
    # the archive's size says little (small entries first, large ones last): interrupt by
    # time instead, 0.5 s into a run the relay stretches to several seconds
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        relay.close()
    assert proc.returncode == 130, (out, err)
    assert "partial archive" in err
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        summary = json.loads(zf.read("partial/summary.json"))
        log = zf.read("partial/sysdump.log").decode()
    assert "partial/index.md" in names and "partial/redactions.json" in names
    assert summary["interrupted"] is True
    assert summary["tasks"]["finished"] < summary["tasks"]["total"]
    assert "interrupted:" in log
