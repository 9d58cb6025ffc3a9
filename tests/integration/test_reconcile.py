"""`cilium reconcile` on the dev cluster, driven as a user would from a git checkout.

The module's desired state is a clone of a local bare repository holding a copy of
examples/gitops. The tests run in file order and share the Helm release `cilium` in
kube-system: refused bad input, empty to healthy, a no-op second apply, CiliumIdentity
objects left alone, drift shown and corrected by `watch --mode correct`, pruning, an apply
interrupted by an API-server restart, and `watch` with --git-pull, metrics and SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.devcluster import DevCluster, binaries
from ciliumctl.k8s import Client

NS = "kube-system"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gitops"
INVENTORY = "ciliumctl-inventory-cilium"
CNP = ("cilium.io/v2", "CiliumNetworkPolicy")
CNC = ("cilium.io/v2", "CiliumNodeConfig")


def cilium(dev_cluster: DevCluster) -> list[str]:
    return [sys.executable, "-m", "ciliumctl", "--kubeconfig", str(dev_cluster.kubeconfig_path)]


def env() -> dict[str, str]:
    return dict(os.environ, NO_COLOR="1", COLUMNS="250")


def run(
    dev_cluster: DevCluster, *args: str, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cilium(dev_cluster), *args], capture_output=True, text=True, env=env(), timeout=timeout
    )


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def helm_history(dev_cluster: DevCluster) -> list[dict[str, Any]]:
    helm = binaries.ensure(["helm"])["helm"]
    out = subprocess.run(
        [
            str(helm),
            "--kubeconfig",
            str(dev_cluster.kubeconfig_path),
            "history",
            "cilium",
            "-n",
            NS,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    history: list[dict[str, Any]] = json.loads(out.stdout)
    return history


class Repo:
    """The bare repository, a clone to push from, and the clone reconcile reads."""

    def __init__(self, root: Path) -> None:
        self.bare, self.work, self.source = root / "fleet.git", root / "work", root / "source"
        git("init", "-q", "--bare", str(self.bare), cwd=root)
        git("clone", "-q", str(self.bare), str(self.work), cwd=root)
        shutil.copytree(EXAMPLE, self.work, dirs_exist_ok=True)
        self.commit("the example desired state")
        git("clone", "-q", str(self.bare), str(self.source), cwd=root)

    def commit(self, message: str) -> None:
        git("add", "-A", ".", cwd=self.work)
        git(
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "commit",
            "-q",
            "-m",
            message,
            cwd=self.work,
        )
        git("push", "-q", "origin", "HEAD", cwd=self.work)

    def pull(self) -> None:
        git("pull", "-q", "--ff-only", cwd=self.source)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return Repo(tmp_path_factory.mktemp("gitops"))


@pytest.fixture(scope="module", autouse=True)
def clean(dev_cluster: DevCluster, client: Client) -> Iterator[None]:
    """No Cilium before the module, none after it, even when a test failed."""

    # A previous module's `uninstall --purge` may still be deleting namespaces
    # (cilium-secrets) and CRDs: the tests start from a settled cluster.
    def settling() -> list[str]:
        crds = client.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        return [
            ns["metadata"]["name"]
            for ns in client.list("v1", "Namespace")
            if ns["metadata"].get("deletionTimestamp")
        ] + [crd["metadata"]["name"] for crd in crds if crd["metadata"].get("deletionTimestamp")]

    deadline = time.monotonic() + 300
    while pending := settling():
        assert time.monotonic() < deadline, f"still being deleted after 300 s: {pending}"
        time.sleep(0.5)
    yield
    run(dev_cluster, "uninstall", "--wait", "--purge")
    client.delete("v1", "ConfigMap", INVENTORY, NS)
    client.delete("v1", "Namespace", "gitops-demo")


def resource_versions(client: Client) -> dict[str, str]:
    """resourceVersion of every object the inventory lists, and of the inventory itself."""
    cm = client.get("v1", "ConfigMap", INVENTORY, NS)
    out = {"inventory": cm["metadata"]["resourceVersion"]}
    for entry in json.loads(cm["data"]["objects"]):
        obj = client.get(
            entry["api_version"], entry["kind"], entry["name"], entry["namespace"] or None
        )
        out[f"{entry['kind']}/{entry['namespace']}/{entry['name']}"] = obj["metadata"][
            "resourceVersion"
        ]
    return out


def identity(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumIdentity",
        "metadata": {"name": name, "annotations": annotations or {}},
        "security-labels": {"k8s:app": "demo", "k8s:io.kubernetes.pod.namespace": "gitops-demo"},
    }


def test_bad_desired_state_changes_nothing(
    dev_cluster: DevCluster, client: Client, tmp_path: Path
) -> None:
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)
    config = tmp_path / "cilium.yaml"
    good = config.read_text()
    config.write_text(good.replace("version: 1.18.5", "version: 1.16.0"))
    diff = run(dev_cluster, "reconcile", "diff", "--source", str(tmp_path))
    assert diff.returncode == 2, diff.stderr
    assert f"{config}:6: version: Cilium 1.16.0 is not supported" in diff.stderr
    config.write_text(good)
    policy = tmp_path / "policies" / "demo-frontend.yaml"
    policy.write_text(policy.read_text().replace('port: "8080"', 'port: "80800"'))
    applied = run(dev_cluster, "reconcile", "apply", "--source", str(tmp_path))
    assert applied.returncode == 1
    assert f"{policy}:" in applied.stderr and "spec.ingress[0].toPorts[0].ports[0].port" in (
        applied.stderr
    )
    policy.write_text("apiVersion: cilium.io/v2\nkind: [\n")
    broken = run(dev_cluster, "reconcile", "apply", "--source", str(tmp_path))
    assert broken.returncode == 1 and f"{policy}:3: invalid YAML" in broken.stderr
    assert "Traceback" not in diff.stderr + applied.stderr + broken.stderr
    assert client.get_or_none("apps/v1", "DaemonSet", "cilium", NS) is None
    assert client.get_or_none("v1", "ConfigMap", INVENTORY, NS) is None
    assert client.get_or_none("v1", "Namespace", "gitops-demo") is None


def test_empty_to_healthy(dev_cluster: DevCluster, client: Client, repo: Repo) -> None:
    before = run(dev_cluster, "reconcile", "diff", "--source", str(repo.source), "-o", "json")
    assert before.returncode == 1, before.stderr
    plan = json.loads(before.stdout)
    existing = [o for o in plan["objects"] if o["action"] != "created"]
    assert not existing and plan["helmRelease"] is None, existing
    result = run(dev_cluster, "reconcile", "apply", "--source", str(repo.source))
    assert result.returncode == 0, result.stderr
    assert "Helm install: release cilium revision 1" in result.stdout
    status = run(dev_cluster, "status", "-o", "json")
    assert status.returncode == 0 and json.loads(status.stdout)["ok"] is True
    history = helm_history(dev_cluster)
    assert [h["description"] for h in history] == ["cilium reconcile install 1.18.5"]
    for name in ("debug-worker-1", "large-nodes"):
        cnc = client.get(*CNC, name, NS)
        assert cnc["metadata"]["annotations"]["ciliumctl.io/inventory"] == "cilium"
    assert client.get(*CNP, "frontend-to-backend", "gitops-demo")
    inventory = client.get("v1", "ConfigMap", INVENTORY, NS)
    assert inventory["data"]["status"] == "complete"
    after = run(dev_cluster, "reconcile", "diff", "--source", str(repo.source))
    assert after.returncode == 0, after.stdout + after.stderr
    assert "- in sync" in after.stdout


def test_second_apply_changes_no_resource_version(
    dev_cluster: DevCluster, client: Client, repo: Repo
) -> None:
    before = resource_versions(client)
    result = run(dev_cluster, "reconcile", "apply", "--source", str(repo.source))
    assert result.returncode == 0, result.stderr
    assert "in sync" in result.stdout
    assert resource_versions(client) == before
    assert len(helm_history(dev_cluster)) == 1


def test_cilium_identities_are_never_touched(
    dev_cluster: DevCluster, client: Client, repo: Repo
) -> None:
    plain = client.apply(identity("10001"))
    # even one carrying our annotation and (by corruption) listed in the inventory
    marked = client.apply(identity("10002", {"ciliumctl.io/inventory": "cilium"}))
    cm = client.get("v1", "ConfigMap", INVENTORY, NS)
    entries = json.loads(cm["data"]["objects"])
    entries.append(
        {
            "api_version": "cilium.io/v2",
            "kind": "CiliumIdentity",
            "namespace": "",
            "name": "10002",
            "via": "ssa",
        }
    )
    client.patch("v1", "ConfigMap", INVENTORY, {"data": {"objects": json.dumps(entries)}}, NS)
    (repo.work / "extra" / "identity.yaml").write_text(
        "apiVersion: cilium.io/v2\nkind: CiliumIdentity\nmetadata: {name: '10003'}\n"
        "security-labels: {k8s:app: x}\n"
    )
    repo.commit("an exported identity (reconcile must skip it)")
    repo.pull()
    diff = run(dev_cluster, "reconcile", "diff", "--source", str(repo.source), "-o", "json")
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert "skipped CiliumIdentity 10003" in diff.stderr
    assert not any(o["kind"] == "CiliumIdentity" for o in json.loads(diff.stdout)["objects"])
    result = run(dev_cluster, "reconcile", "apply", "--source", str(repo.source))
    assert result.returncode == 0, result.stderr
    for obj in (plain, marked):
        live = client.get("cilium.io/v2", "CiliumIdentity", obj["metadata"]["name"])
        assert live["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert client.get_or_none("cilium.io/v2", "CiliumIdentity", "10003") is None


def agent_uids(client: Client) -> set[str]:
    return {
        p["metadata"]["uid"] for p in client.list("v1", "Pod", NS, label_selector="k8s-app=cilium")
    }


def start_watch(dev_cluster: DevCluster, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*cilium(dev_cluster), "reconcile", "watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env(),
    )


def read_until(proc: subprocess.Popen[str], needle: str, lines: list[str], timeout: float) -> str:
    """Collect the process's output lines until one contains ``needle``."""
    assert proc.stdout is not None
    found: list[str] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if needle in line:
                found.append(line)
                done.set()
                return
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    done.wait(timeout)
    assert found, f"no {needle!r} within {timeout}s:\n" + "".join(lines)
    return found[0]


def stop(proc: subprocess.Popen[str], lines: list[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    lines.append(out)
    assert proc.returncode == 0, "".join(lines)
    assert "stopped after" in "".join(lines)


def test_drift_shown_then_reverted_in_correct_mode(
    dev_cluster: DevCluster, client: Client, repo: Repo
) -> None:
    client.patch("v1", "ConfigMap", "cilium-config", {"data": {"debug": "true"}}, NS)
    client.delete(*CNC, "large-nodes", NS)
    client.patch(
        *CNP,
        "frontend-to-backend",
        {"spec": {"ingress": [{"fromEndpoints": [{"matchLabels": {"app": "anyone"}}]}]}},
        "gitops-demo",
    )
    identity_rv = client.get("cilium.io/v2", "CiliumIdentity", "10001")["metadata"][
        "resourceVersion"
    ]
    diff = run(dev_cluster, "reconcile", "diff", "--source", str(repo.source))
    assert diff.returncode == 1, diff.stdout + diff.stderr
    text = diff.stdout
    assert "changed ConfigMap kube-system/cilium-config" in text
    assert "-  debug: 'true'" in text and "+  debug: 'false'" in text
    assert "created CiliumNodeConfig kube-system/large-nodes" in text
    assert "changed CiliumNetworkPolicy gitops-demo/frontend-to-backend" in text
    assert "1 created, 2 changed, 0 deleted" in text
    as_json = run(dev_cluster, "reconcile", "diff", "--source", str(repo.source), "-o", "json")
    objects = {(o["kind"], o["name"]): o for o in json.loads(as_json.stdout)["objects"]}
    config = objects[("ConfigMap", "cilium-config")]
    assert {"op": "replace", "path": "/data/debug", "value": "false"} in config["patch"]
    assert "patch" not in objects[("CiliumNodeConfig", "large-nodes")]  # created: no patch
    for secret in ("cilium-ca", "hubble-server-certs", "hubble-relay-client-certs"):
        assert f"Secret kube-system/{secret}" not in text  # rotated by Cilium: ignored
    uids = agent_uids(client)
    lines: list[str] = []
    proc = start_watch(
        dev_cluster,
        "--source",
        str(repo.source),
        "--mode",
        "correct",
        "--interval",
        "2s",
        "--metrics-addr",
        "",
        "--restart-on-config-change",
    )
    try:
        read_until(proc, "corrected", lines, timeout=300)
        read_until(proc, "in sync", lines, timeout=120)
    finally:
        stop(proc, lines)
    after = run(dev_cluster, "reconcile", "diff", "--source", str(repo.source))
    assert after.returncode == 0, after.stdout
    assert client.get("v1", "ConfigMap", "cilium-config", NS)["data"]["debug"] == "false"
    assert client.get(*CNC, "large-nodes", NS)
    assert agent_uids(client).isdisjoint(uids)  # cilium-config changed: agents restarted
    live = client.get("cilium.io/v2", "CiliumIdentity", "10001")
    assert live["metadata"]["resourceVersion"] == identity_rv


def test_removed_policy_file_is_pruned(dev_cluster: DevCluster, client: Client, repo: Repo) -> None:
    foreign = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "made-by-hand", "namespace": "gitops-demo"},
        "spec": {"endpointSelector": {"matchLabels": {"app": "x"}}},
    }
    client.apply(foreign, field_manager="kubectl")
    (repo.work / "policies" / "demo-frontend.yaml").unlink()
    repo.commit("drop the frontend policy")
    repo.pull()
    diff = run(dev_cluster, "reconcile", "diff", "--source", str(repo.source))
    assert diff.returncode == 1
    assert "deleted CiliumNetworkPolicy gitops-demo/frontend-to-backend" in diff.stdout
    assert "made-by-hand" not in diff.stdout
    kept = run(dev_cluster, "reconcile", "apply", "--source", str(repo.source), "--prune=false")
    assert kept.returncode == 0, kept.stderr
    assert client.get_or_none(*CNP, "frontend-to-backend", "gitops-demo") is not None
    result = run(dev_cluster, "reconcile", "apply", "--source", str(repo.source))
    assert result.returncode == 0, result.stderr
    assert "pruned CiliumNetworkPolicy gitops-demo/frontend-to-backend" in result.stdout
    assert client.get_or_none(*CNP, "frontend-to-backend", "gitops-demo") is None
    assert client.get_or_none(*CNP, "made-by-hand", "gitops-demo") is not None
    assert run(dev_cluster, "reconcile", "diff", "--source", str(repo.source)).returncode == 0


def test_interrupted_apply_converges(dev_cluster: DevCluster, client: Client, repo: Repo) -> None:
    config = repo.work / "cilium.yaml"
    config.write_text(config.read_text().replace("    replicas: 1\n", "    replicas: 2\n"))
    (repo.work / "policies" / "demo-frontend.yaml").write_text(
        (EXAMPLE / "policies" / "demo-frontend.yaml").read_text()
    )
    repo.commit("two operator replicas, the frontend policy back")
    repo.pull()
    proc = subprocess.Popen(
        [*cilium(dev_cluster), "reconcile", "apply", "--source", str(repo.source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env(),
    )
    lines: list[str] = []
    read_until(proc, "helm upgrade", lines, timeout=120)
    dev_cluster.restart_component("kube-apiserver")
    out, _ = proc.communicate(timeout=400)
    lines.append(out)
    result = run(dev_cluster, "reconcile", "apply", "--source", str(repo.source))
    assert result.returncode == 0, "".join(lines) + result.stdout + result.stderr
    diff = run(dev_cluster, "reconcile", "diff", "--source", str(repo.source))
    assert diff.returncode == 0, diff.stdout
    assert client.get("apps/v1", "Deployment", "cilium-operator", NS)["spec"]["replicas"] == 2
    assert client.get_or_none(*CNP, "frontend-to-backend", "gitops-demo") is not None
    assert helm_history(dev_cluster)[-1]["status"] == "deployed"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_watch_pulls_git_serves_metrics_and_stops_on_sigterm(
    dev_cluster: DevCluster, client: Client, repo: Repo
) -> None:
    port = free_port()
    lines: list[str] = []
    proc = start_watch(
        dev_cluster,
        "--source",
        str(repo.source),
        "--mode",
        "correct",
        "--interval",
        "1s",
        "--git-pull",
        "--metrics-addr",
        f"127.0.0.1:{port}",
    )
    try:
        read_until(proc, "sync 2: in sync", lines, timeout=120)
        extra = repo.work / "policies" / "deny-metadata.yaml"
        extra.write_text(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
            "metadata: {name: deny-metadata, namespace: gitops-demo}\n"
            "spec:\n  endpointSelector: {matchLabels: {app: frontend}}\n"
            "  egressDeny:\n    - toCIDR: [169.254.169.254/32]\n"
        )
        repo.commit("deny the metadata service")
        read_until(proc, "corrected", lines, timeout=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
    finally:
        stop(proc, lines)
    assert client.get_or_none(*CNP, "deny-metadata", "gitops-demo") is not None
    assert 'ciliumctl_reconcile_syncs_total{result="corrected"} 1' in metrics
    assert "ciliumctl_reconcile_errors_total 0" in metrics
    success = next(
        line
        for line in metrics.splitlines()
        if line.startswith("ciliumctl_reconcile_last_success_timestamp_seconds")
    )
    assert time.time() - float(success.split()[1]) < 300
    events = client.list("v1", "Event", NS, field_selector=f"involvedObject.name={INVENTORY}")
    reasons = {e["reason"] for e in events}
    assert {"InSync", "Synced"} <= reasons
    assert "SIGTERM: finishing the current step" in "".join(lines)


def test_helm_release_stays_coherent_with_cilium_upgrade(
    dev_cluster: DevCluster, client: Client, repo: Repo
) -> None:
    """`cilium upgrade` out of band is drift that reconcile reverts through Helm."""
    upgraded = run(
        dev_cluster, "upgrade", "--set", "debug.enabled=true", "--wait", "--wait-duration", "3m"
    )
    assert upgraded.returncode == 0, upgraded.stderr
    diff = run(dev_cluster, "reconcile", "diff", "--source", str(repo.source))
    assert diff.returncode == 1
    assert "changed ConfigMap kube-system/cilium-config" in diff.stdout
    result = run(dev_cluster, "reconcile", "apply", "--source", str(repo.source))
    assert result.returncode == 0, result.stderr
    assert "Helm upgrade: release cilium" in result.stdout
    history = helm_history(dev_cluster)
    assert history[-1]["description"] == "cilium reconcile 1.18.5 -> 1.18.5"
    assert history[-2]["description"].startswith("cilium upgrade")
    assert client.get("v1", "ConfigMap", "cilium-config", NS)["data"]["debug"] == "false"
    assert run(dev_cluster, "reconcile", "diff", "--source", str(repo.source)).returncode == 0
    dry = run(dev_cluster, "upgrade", "--dry-run", "--set", "debug.enabled=true")
    assert dry.returncode == 0 and "cilium-config" in dry.stdout
