"""`cilium preflight check|cleanup` on the dev cluster with Cilium installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client
from ciliumctl.preflight.check import KINDS, MARK

NS = "kube-system"

BAD_POLICY = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "http-on-udp", "namespace": "default"},
    "spec": {
        "endpointSelector": {"matchLabels": {"app": "web"}},
        "ingress": [
            {
                "toPorts": [
                    {
                        "ports": [{"port": "80", "protocol": "UDP"}],
                        "rules": {"http": [{"method": "GET"}]},
                    }
                ]
            }
        ],
    },
}


def run(dev_cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
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
        timeout=300,
    )


@pytest.fixture(scope="module")
def installed(dev_cluster: DevCluster) -> Iterator[None]:
    result = run(dev_cluster, "install", "--version", "1.17.12", "--wait")
    assert result.returncode == 0, result.stderr
    try:
        yield
    finally:
        run(dev_cluster, "preflight", "cleanup")
        run(dev_cluster, "uninstall", "--wait", "--purge")


def preflight_objects(client: Client) -> list[str]:
    found = []
    for api_version, kind, namespaced in KINDS:
        for obj in client.list(
            api_version, kind, NS if namespaced else None, label_selector=f"{MARK}=true"
        ):
            found.append(f"{kind} {obj['metadata']['name']}")
    return found


def test_preflight_passes_then_cleanup_removes_everything(
    installed: None, dev_cluster: DevCluster, client: Client
) -> None:
    before = {
        (k, o["metadata"]["name"])
        for _, k, ns in KINDS
        for o in client.list(_, k, NS if ns else None)
    }
    result = run(dev_cluster, "preflight", "check", "--version", "1.18.5", "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["ok"] is True and verdict["ready"] is True
    created = preflight_objects(client)
    assert "DaemonSet cilium-pre-flight-check" in created
    assert "Deployment cilium-pre-flight-check" in created
    ds = client.get("apps/v1", "DaemonSet", "cilium-pre-flight-check", NS)
    assert ds["status"]["numberReady"] == 3
    image = ds["spec"]["template"]["spec"]["containers"][0]["image"]
    assert "v1.18.5" in image
    cleanup = run(dev_cluster, "preflight", "cleanup")
    assert cleanup.returncode == 0, cleanup.stderr
    assert preflight_objects(client) == []
    after = {
        (k, o["metadata"]["name"])
        for _, k, ns in KINDS
        for o in client.list(_, k, NS if ns else None)
    }
    assert {x for x in after if "pre-flight" not in x[1]} == {
        x for x in before if "pre-flight" not in x[1]
    }
    again = run(dev_cluster, "preflight", "cleanup")
    assert "nothing to clean up" in again.stdout


def test_preflight_reports_invalid_policy(
    installed: None, dev_cluster: DevCluster, client: Client
) -> None:
    client.apply(BAD_POLICY)
    try:
        result = run(dev_cluster, "preflight", "check", "--version", "1.18.5")
        assert result.returncode == 1
        assert "default/http-on-udp" in result.stdout
        assert "not ready to upgrade" in result.stdout
    finally:
        client.delete("cilium.io/v2", "CiliumNetworkPolicy", "http-on-udp", "default")
        run(dev_cluster, "preflight", "cleanup")
    assert preflight_objects(client) == []
