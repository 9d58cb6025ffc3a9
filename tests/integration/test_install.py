"""install / status / upgrade / rollback / config / hubble / uninstall on the dev cluster.

The tests run in file order and share one Helm release (`cilium` in kube-system), as a
user would drive it: install 1.17, upgrade to 1.18 keeping values, a broken upgrade that
rolls back by itself, config changes with restarts, Hubble, and uninstall.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.devcluster import DevCluster, binaries
from ciliumctl.k8s import Client

NS = "kube-system"


def run(
    dev_cluster: DevCluster, *args: str, timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
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
        input=stdin,
    )


def helm_json(dev_cluster: DevCluster, *args: str) -> Any:
    helm = binaries.ensure(["helm"])["helm"]
    out = subprocess.run(
        [
            str(helm),
            "--kubeconfig",
            str(dev_cluster.kubeconfig_path),
            *args,
            "-n",
            NS,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def agent_image(client: Client) -> str:
    ds = client.get("apps/v1", "DaemonSet", "cilium", NS)
    containers = ds["spec"]["template"]["spec"]["containers"]
    return str(next(c["image"] for c in containers if c["name"] == "cilium-agent"))


@pytest.fixture(scope="module", autouse=True)
def clean_release(dev_cluster: DevCluster) -> Iterator[None]:
    """No release before the module, none after it (other test files share the cluster)."""
    yield
    run(dev_cluster, "uninstall", "--wait", "--purge")


def test_dry_run_prints_manifests_and_changes_nothing(
    dev_cluster: DevCluster, client: Client
) -> None:
    result = run(dev_cluster, "install", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "kind: DaemonSet" in result.stdout and "name: cilium-agent" in result.stdout
    assert "kind: CustomResourceDefinition" in result.stdout
    assert client.get_or_none("apps/v1", "DaemonSet", "cilium", NS) is None
    values = run(dev_cluster, "install", "--dry-run-helm-values", "--set", "debug.enabled=true")
    assert values.returncode == 0, values.stderr
    assert "debug:\n  enabled: true" in values.stdout
    assert "kubeProxyReplacement: 'true'" in values.stdout  # the dev cluster has no kube-proxy
    assert "k8sServiceHost:" in values.stdout


def test_bad_input_is_refused_before_the_cluster_changes(
    dev_cluster: DevCluster, client: Client, tmp_path: Path
) -> None:
    typo = run(dev_cluster, "install", "--set", "hubble.enabeld=true")
    assert typo.returncode == 1
    assert "hubble.enabeld" in typo.stderr and "hubble.enabled" in typo.stderr
    removed = run(dev_cluster, "install", "--set", "enableCiliumEndpointSlice=true")
    assert removed.returncode == 1 and "ciliumEndpointSlice.enabled" in removed.stderr
    bad_file = tmp_path / "values.yaml"
    bad_file.write_text("debug:\n  enabled: true\n bad: [\n")
    malformed = run(dev_cluster, "install", "-f", str(bad_file))
    assert malformed.returncode == 2 and f"{bad_file}:3" in malformed.stderr
    version = run(dev_cluster, "install", "--version", "1.16.0")
    assert version.returncode == 2 and "1.18.5" in version.stderr
    assert "Traceback" not in typo.stderr + malformed.stderr + version.stderr
    assert client.get_or_none("apps/v1", "DaemonSet", "cilium", NS) is None
    assert client.list("v1", "Secret", NS, label_selector="owner=helm,name=cilium") == []


def test_install_1_17_with_values_then_status_ok(dev_cluster: DevCluster, client: Client) -> None:
    result = run(
        dev_cluster,
        "install",
        "--version",
        "1.17.12",
        "--set",
        "debug.enabled=true",
        "--wait",
        "--wait-duration",
        "3m",
    )
    assert result.returncode == 0, result.stderr
    assert "Cilium 1.17.12 installed" in result.stdout
    assert agent_image(client).startswith("quay.io/cilium/cilium:v1.17.12")
    status = run(dev_cluster, "status", "-o", "json")
    assert status.returncode == 0, status.stdout + status.stderr
    data = json.loads(status.stdout)
    assert data["ok"] is True
    agent = next(c for c in data["components"] if c["name"] == "cilium")
    assert agent["desired"] == 3 and agent["ready"] == 3
    assert data["helm_chart_version"].endswith("(Cilium 1.17.12)")
    version = json.loads(run(dev_cluster, "version", "-o", "json").stdout)
    assert version["running"]["version"] == "1.17.12"
    summary = run(dev_cluster, "status")
    assert "DaemonSet" in summary.stdout and "Desired: 3, Ready: 3/3" in summary.stdout
    assert [line for line in summary.stdout.splitlines() if line != line.rstrip()] == []


def test_install_again_is_refused_or_converges(dev_cluster: DevCluster) -> None:
    again = run(dev_cluster, "install", "--version", "1.18.5")
    assert again.returncode == 1 and "cilium upgrade" in again.stderr
    same = run(dev_cluster, "install", "--version", "1.17.12", "--set", "debug.enabled=true")
    assert same.returncode == 0, same.stderr
    assert "already installed with these values" in same.stdout


def test_upgrade_dry_run_shows_diff_only(dev_cluster: DevCluster, client: Client) -> None:
    before = client.get("v1", "ConfigMap", "cilium-config", NS)["metadata"]["resourceVersion"]
    result = run(dev_cluster, "upgrade", "--version", "1.18.5", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "# DaemonSet kube-system/cilium: changed" in result.stdout
    assert "+" in result.stdout and "v1.18.5" in result.stdout
    after = client.get("v1", "ConfigMap", "cilium-config", NS)["metadata"]["resourceVersion"]
    assert before == after


def test_upgrade_to_1_18_keeps_values(dev_cluster: DevCluster, client: Client) -> None:
    result = run(dev_cluster, "upgrade", "--version", "1.18.5", "--wait-duration", "3m")
    assert result.returncode == 0, result.stderr
    assert "upgraded to 1.18.5" in result.stdout
    values = helm_json(dev_cluster, "get", "values", "cilium")
    assert values["debug"] == {"enabled": True}
    assert values["upgradeCompatibility"] == "1.17"
    assert values["ciliumVersion"] == "1.18.5"
    assert agent_image(client).startswith("quay.io/cilium/cilium:v1.18.5")


def test_skipping_a_minor_is_refused(dev_cluster: DevCluster) -> None:
    down = run(dev_cluster, "upgrade", "--version", "1.17.0", "--dry-run")
    assert down.returncode == 0, down.stderr  # one minor back is allowed
    assert "not the newest patch" not in down.stderr


def test_failing_upgrade_rolls_back(dev_cluster: DevCluster, client: Client) -> None:
    revision = helm_json(dev_cluster, "status", "cilium")["version"]
    result = run(
        dev_cluster,
        "upgrade",
        "--set",
        "image.tag=v1.18.5-broken",
        "--set",
        "image.useDigest=false",
        "--wait-duration",
        "2m",
    )
    assert result.returncode == 1
    assert f"rolled back to revision {revision}" in result.stderr
    assert "verified" not in result.stdout
    assert agent_image(client).startswith("quay.io/cilium/cilium:v1.18.5")
    history = helm_json(dev_cluster, "history", "cilium")
    assert history[-1]["description"] == f"Rollback to {revision}"
    status = run(dev_cluster, "status", "--wait", "--wait-duration", "2m")
    assert status.returncode == 0, status.stdout


def test_config_set_and_delete_restart_agents(dev_cluster: DevCluster, client: Client) -> None:
    before = {
        p["metadata"]["uid"] for p in client.list("v1", "Pod", NS, label_selector="k8s-app=cilium")
    }
    result = run(dev_cluster, "config", "set", "custom-test-option", "on")
    assert result.returncode == 0, result.stderr
    assert "restarted 3 agent pod(s)" in result.stdout
    view = json.loads(run(dev_cluster, "config", "view", "-o", "json").stdout)
    assert view["custom-test-option"] == "on"
    pods = client.list("v1", "Pod", NS, label_selector="k8s-app=cilium")
    assert len(pods) == 3 and not before & {p["metadata"]["uid"] for p in pods}
    deleted = run(dev_cluster, "config", "delete", "custom-test-option", "--no-restart")
    assert deleted.returncode == 0, deleted.stderr
    assert "custom-test-option" not in json.loads(
        run(dev_cluster, "config", "view", "-o", "json").stdout
    )
    missing = run(dev_cluster, "config", "delete", "never-set", "--no-restart")
    assert missing.returncode == 2 and "never-set" in missing.stderr


def test_hubble_enable_and_disable(dev_cluster: DevCluster, client: Client) -> None:
    result = run(dev_cluster, "hubble", "enable", "--ui")
    assert result.returncode == 0, result.stderr
    for name in ("hubble-relay", "hubble-ui"):
        assert client.get_or_none("apps/v1", "Deployment", name, NS) is not None
    data = json.loads(run(dev_cluster, "status", "-o", "json").stdout)
    states = {c["name"]: c["state"] for c in data["components"]}
    assert states["hubble-relay"] == "OK" and states["hubble-ui"] == "OK"
    assert helm_json(dev_cluster, "get", "values", "cilium")["debug"] == {"enabled": True}
    off = run(dev_cluster, "hubble", "disable")
    assert off.returncode == 0, off.stderr
    assert client.get_or_none("apps/v1", "Deployment", "hubble-relay", NS) is None


def test_rollback_on_request(dev_cluster: DevCluster) -> None:
    history = helm_json(dev_cluster, "history", "cilium")
    result = run(dev_cluster, "upgrade", "--rollback")
    assert result.returncode == 0, result.stderr
    assert f"rolled back to revision {history[-2]['revision']}" in result.stdout


def test_uninstall_keeps_crds_unless_purged(dev_cluster: DevCluster, client: Client) -> None:
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cilium-test-1"}})
    result = run(dev_cluster, "uninstall", "--wait")
    assert result.returncode == 0, result.stderr
    assert "✓ deleted Helm release cilium\n" in result.stdout
    assert "✓ deleted namespace cilium-test-1\n" in result.stdout
    assert client.get_or_none("apps/v1", "DaemonSet", "cilium", NS) is None
    assert client.list("v1", "Secret", NS, label_selector="owner=helm,name=cilium") == []
    ns = client.get_or_none("v1", "Namespace", "cilium-test-1")
    assert ns is None or ns["status"].get("phase") == "Terminating"
    assert (
        client.get_or_none(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", "ciliumnodeconfigs.cilium.io"
        )
        is not None
    )


def test_install_interrupted_by_api_server_restart_converges(
    dev_cluster: DevCluster, client: Client
) -> None:
    proc_result: dict[str, subprocess.CompletedProcess[str]] = {}

    def install() -> None:
        proc_result["first"] = run(dev_cluster, "install", "--wait", "--wait-duration", "60s")

    worker = threading.Thread(target=install)
    worker.start()
    time.sleep(1.5)
    dev_cluster.restart_component("kube-apiserver")
    worker.join(timeout=300)
    second = run(dev_cluster, "install", "--wait", "--wait-duration", "3m")
    assert second.returncode == 0, (proc_result["first"].stderr, second.stderr)
    status = run(dev_cluster, "status", "--wait", "--wait-duration", "2m", "-o", "json")
    assert json.loads(status.stdout)["ok"] is True
    purge = run(dev_cluster, "uninstall", "--wait", "--purge")
    assert purge.returncode == 0, purge.stderr
    assert "✓ deleted CRD ciliumnodeconfigs.cilium.io\n" in purge.stdout
    assert (
        client.get_or_none(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", "ciliumnodeconfigs.cilium.io"
        )
        is None
    )
