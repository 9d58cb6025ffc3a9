"""The dev cluster and the k8s adapter against real Kubernetes components."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.devcluster import DevCluster, binaries, kwok
from ciliumctl.k8s import (
    Client,
    ConflictError,
    ForbiddenError,
    InvalidError,
    KubeError,
    KubeTimeoutError,
    NotFoundError,
    ObjectRef,
    Status,
)

PAUSE = "registry.k8s.io/pause:3.10"


def workload(
    kind: str, name: str, namespace: str, image: str = PAUSE, replicas: int = 2
) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "main", "image": image}]},
        },
    }
    if kind == "Deployment":
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def pods_of(client: Client, namespace: str, app: str) -> list[dict[str, Any]]:
    return client.list("v1", "Pod", namespace, label_selector=f"app={app}")


def wait_pods(
    client: Client, namespace: str, app: str, count: int, timeout: float = 60
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        pods = [p for p in pods_of(client, namespace, app) if p.get("status", {}).get("podIP")]
        if len(pods) >= count:
            return pods
        assert time.monotonic() < deadline, f"only {len(pods)}/{count} pods of {app} started"
        time.sleep(0.3)


def cilium(dev_cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
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
        timeout=120,
    )


# --------------------------------------------------------------------------- the cluster
def test_nodes_ready_with_realistic_labels(client: Client) -> None:
    nodes = client.list("v1", "Node")
    assert sorted(n["metadata"]["name"] for n in nodes) == [f"kwok-node-{i}" for i in range(3)]
    for node in nodes:
        assert client.status_of(ObjectRef.of(node)).status is Status.CURRENT
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == node["metadata"]["name"]
        assert labels["kubernetes.io/os"] == "linux"
        assert labels["kubernetes.io/arch"] == "amd64"
        assert node["spec"]["podCIDR"].startswith("10.244.")
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
        info = node["status"]["nodeInfo"]
        assert info["kernelVersion"].startswith("6.")
        assert info["osImage"].startswith("Ubuntu")


def test_server_reports_pinned_version(client: Client) -> None:
    version = client.server_version()
    assert version["gitVersion"] == binaries.KUBERNETES_VERSION


def test_kubectl_reaches_the_cluster(dev_cluster: DevCluster) -> None:
    kubectl = binaries.find("kubectl")
    assert kubectl is not None
    out = subprocess.run(
        [
            str(kubectl),
            "--kubeconfig",
            str(dev_cluster.kubeconfig_path),
            "get",
            "nodes",
            "-o",
            "name",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == [f"node/kwok-node-{i}" for i in range(3)]


def test_second_up_reuses_running_cluster(dev_cluster: DevCluster) -> None:
    before = {c.name: c.pid for c in dev_cluster.components()}
    status = dev_cluster.up(3)
    assert {c.name: c.pid for c in dev_cluster.components()} == before
    assert status.running and len(status.nodes) == 3


def test_status_command_json(dev_cluster: DevCluster) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ciliumctl",
            "dev-cluster",
            "status",
            "--name",
            "it",
            "--state-dir",
            str(dev_cluster.state_dir),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["running"] is True
    assert {c["name"] for c in data["components"]} == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }
    assert all(c["healthy"] and c["port"] > 0 for c in data["components"])
    assert len(data["nodes"]) == 3


def test_every_listener_is_on_loopback(dev_cluster: DevCluster) -> None:
    pids = {c.pid for c in dev_cluster.components()}
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if any(f"pid={pid}," in line for pid in pids):
            local = line.split()[3]
            assert local.startswith("127.0.0.1:"), line


# --------------------------------------------------------------------------- workloads
def test_daemonset_and_deployment_become_current(client: Client, namespace: str) -> None:
    client.apply(workload("DaemonSet", "ds", namespace))
    client.apply(workload("Deployment", "web", namespace, replicas=2))
    refs = [
        ObjectRef("apps/v1", "DaemonSet", "ds", namespace),
        ObjectRef("apps/v1", "Deployment", "web", namespace),
    ]
    results = client.wait_ready(refs, timeout=90)
    assert all(r.status is Status.CURRENT for r in results.values())
    ds_pods = pods_of(client, namespace, "ds")
    assert sorted(p["spec"]["nodeName"] for p in ds_pods) == [f"kwok-node-{i}" for i in range(3)]
    for pod in ds_pods + pods_of(client, namespace, "web"):
        assert pod["status"]["phase"] == "Running"
        assert client.status_of(ObjectRef.of(pod)).status is Status.CURRENT


def test_broken_image_stays_not_ready(client: Client, namespace: str) -> None:
    client.apply(
        workload("Deployment", "bad", namespace, image="example.com/app:v1-broken", replicas=1)
    )
    pod = wait_pods(client, namespace, "bad", 1)[0]
    result = client.status_of(ObjectRef.of(pod))
    assert result.status is Status.FAILED
    assert "CrashLoop" in result.message
    with pytest.raises(KubeTimeoutError, match="Deployment"):
        client.wait_ready([ObjectRef("apps/v1", "Deployment", "bad", namespace)], timeout=4)


def test_job_completes(client: Client, namespace: str) -> None:
    client.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once", "namespace": namespace},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": PAUSE}],
                    }
                }
            },
        }
    )
    client.wait_ready([ObjectRef("batch/v1", "Job", "once", namespace)], timeout=60)


def test_namespace_deletion_and_garbage_collection(client: Client, namespace: str) -> None:
    client.apply(workload("Deployment", "gc", namespace, replicas=1))
    wait_pods(client, namespace, "gc", 1)
    client.delete("apps/v1", "Deployment", "gc", namespace, propagation="Foreground")
    deadline = time.monotonic() + 60
    while pods_of(client, namespace, "gc") or client.list("apps/v1", "ReplicaSet", namespace):
        assert time.monotonic() < deadline, "garbage collector left dependents behind"
        time.sleep(0.3)


# --------------------------------------------------------------------------- logs and exec
def test_pod_logs_through_kwok(
    client: Client, dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    client.apply(workload("Deployment", "talker", namespace, replicas=1))
    pod = wait_pods(client, namespace, "talker", 1)[0]["metadata"]["name"]
    current = tmp_path / "current.log"
    previous = tmp_path / "previous.log"
    current.write_text(kwok.cri_log([f"line {i}" for i in range(50)]))
    previous.write_text(kwok.cri_log(["crashed before"], stream="stderr"))
    dev_cluster.serve_logs(client, namespace, pod, current, previous_logs_file=previous)
    deadline = time.monotonic() + 30
    while True:
        try:
            logs = client.pod_logs(namespace, pod, "main")
            if logs:
                break
        except NotFoundError:
            pass
        assert time.monotonic() < deadline, "kwok never served the logs"
        time.sleep(0.5)
    assert b"line 49" in logs
    limited = client.pod_logs(namespace, pod, "main", limit_bytes=100)
    assert 0 < len(limited) <= 100
    assert client.pod_logs(namespace, pod, "main", previous=True) == b"crashed before\n"


def test_exec_through_kwok(client: Client, dev_cluster: DevCluster, namespace: str) -> None:
    client.apply(workload("Deployment", "shell", namespace, replicas=1))
    pod = wait_pods(client, namespace, "shell", 1)[0]["metadata"]["name"]
    workdir = dev_cluster.enable_exec(client, namespace, pod, env={"GREETING": "hi"})
    assert str(workdir).startswith(str(dev_cluster.state_dir))
    deadline = time.monotonic() + 30
    while True:
        try:
            result = client.exec(
                namespace,
                pod,
                ["sh", "-c", 'echo "$GREETING $(pwd)"; echo oops >&2; exit 3'],
                "main",
            )
            break
        except Exception:
            assert time.monotonic() < deadline, "kwok never enabled exec"
            time.sleep(0.5)
    assert result.stdout.decode().strip() == f"hi {workdir}"
    assert result.stderr == b"oops\n"
    assert result.exit_code == 3
    ok = client.exec(namespace, pod, ["true"], "main")
    assert ok.exit_code == 0


def test_exec_is_off_for_other_pods(client: Client, namespace: str) -> None:
    client.apply(workload("Deployment", "closed", namespace, replicas=1))
    pod = wait_pods(client, namespace, "closed", 1)[0]["metadata"]["name"]
    with pytest.raises(KubeError, match="no exec found"):
        client.exec(namespace, pod, ["true"], "main", timeout=10)


# --------------------------------------------------------------------------- apply and errors
def cm(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def test_server_side_apply_field_manager_and_no_op(client: Client, namespace: str) -> None:
    first = client.apply(cm(namespace, "cfg", {"a": "1"}))
    managers = {(m["manager"], m["operation"]) for m in first["metadata"]["managedFields"]}
    assert ("ciliumctl", "Apply") in managers
    again = client.apply(cm(namespace, "cfg", {"a": "1"}))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    dry = client.apply(cm(namespace, "cfg", {"a": "2"}), dry_run=True)
    assert dry["data"]["a"] == "2"
    assert client.get("v1", "ConfigMap", "cfg", namespace)["data"]["a"] == "1"


def test_apply_conflict_with_other_manager(client: Client, namespace: str) -> None:
    client.apply(cm(namespace, "shared", {"k": "mine"}))
    with pytest.raises(ConflictError, match="conflict"):
        client.apply(cm(namespace, "shared", {"k": "theirs"}), field_manager="someone-else")
    forced = client.apply(
        cm(namespace, "shared", {"k": "theirs"}), field_manager="other", force=True
    )
    assert forced["data"]["k"] == "theirs"


def test_invalid_object_names_fields(client: Client, namespace: str) -> None:
    bad = workload("Deployment", "bad-replicas", namespace)
    bad["spec"]["replicas"] = -1
    with pytest.raises(InvalidError) as exc:
        client.apply(bad)
    assert any(c.field == "spec.replicas" for c in exc.value.causes)


def test_not_found_and_get_or_none(client: Client, namespace: str) -> None:
    with pytest.raises(NotFoundError):
        client.get("v1", "ConfigMap", "absent", namespace)
    assert client.get_or_none("v1", "ConfigMap", "absent", namespace) is None
    with pytest.raises(NotFoundError, match="does not serve"):
        client.list("absent.example.com/v1", "Widget")


def test_list_follows_pages(
    client: Client, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(7):
        client.create(cm(namespace, f"page-{i}", {"i": str(i)}))
    calls: list[str] = []
    original = client.request

    def counting(method: str, path: str, **kw: Any) -> Any:
        calls.append(path)
        return original(method, path, **kw)

    monkeypatch.setattr(client, "request", counting)
    names = [o["metadata"]["name"] for o in client.list("v1", "ConfigMap", namespace, page_size=2)]
    assert {f"page-{i}" for i in range(7)} <= set(names)
    assert len([c for c in calls if c.endswith("/configmaps")]) >= 4


def test_service_account_token_and_rbac(
    client: Client, dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    client.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "reader", "namespace": namespace},
        }
    )
    token = client.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/reader/token",
        what="token request",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )["status"]["token"]
    import yaml

    admin = yaml.safe_load(dev_cluster.kubeconfig_path.read_text())
    admin["users"] = [{"name": "reader", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "reader"
    kc = tmp_path / "reader.kubeconfig"
    kc.write_text(yaml.safe_dump(admin))
    reader = Client(str(kc))
    review = reader.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        what="whoami",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:reader"
    with pytest.raises(ForbiddenError):
        reader.list("v1", "Secret", namespace)


# --------------------------------------------------------------------------- cilium version
def test_cilium_version_against_cluster(client: Client, dev_cluster: DevCluster) -> None:
    result = cilium(dev_cluster, "version", "-o", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["running"]["installed"] is False
    text = cilium(dev_cluster, "version")
    assert "cilium image (running): not installed" in text.stdout

    agent = workload("DaemonSet", "cilium", "kube-system", image="quay.io/cilium/cilium:v1.18.5")
    agent["spec"]["template"]["spec"]["containers"][0]["name"] = "cilium-agent"
    client.apply(agent)
    try:
        data = json.loads(cilium(dev_cluster, "version", "-o", "json").stdout)
        assert data["running"]["version"] == "1.18.5"
        assert data["running"]["source"] == "daemonset"
    finally:
        client.delete("apps/v1", "DaemonSet", "cilium", "kube-system")


def test_unreachable_after_port_closed(tmp_path: Path, dev_cluster: DevCluster) -> None:
    import yaml

    cfg = yaml.safe_load(dev_cluster.kubeconfig_path.read_text())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    kc = tmp_path / "kc"
    kc.write_text(yaml.safe_dump(cfg))
    result = subprocess.run(
        [sys.executable, "-m", "ciliumctl", "--kubeconfig", str(kc), "version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"https://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
