"""`cilium validate cnp --from-cluster` and `validate labels --from-cluster` on the dev cluster.

The CRDs are the ones our generator writes into charts/cilium/crds; the API server's
admission (structural schema) and our validator must agree on what is valid, and the
validator must catch what admission cannot express.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client, InvalidError

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "charts/cilium/crds"
CNP = "CiliumNetworkPolicy"
CCNP = "CiliumClusterwideNetworkPolicy"


def cilium(cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", "--kubeconfig", str(cluster.kubeconfig_path),
         *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def wait_established(client: Client, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        crd = client.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        conditions = (crd.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        assert time.monotonic() < deadline, f"CRD {name} not established"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def policy_crds(client: Client) -> Iterator[None]:
    """Our generated CNP and CCNP CRDs, applied for this module."""
    created = []
    for name in ("ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies"):
        (crd,) = yaml.safe_load_all((CRDS / f"{name}.yaml").read_text())
        existed = client.get_or_none(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"]
        )
        client.apply(crd, force=True)
        wait_established(client, crd["metadata"]["name"])
        if existed is None:
            created.append(crd["metadata"]["name"])
    yield
    for name in created:
        client.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)


def cnp(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": CNP,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


WEB = {"matchLabels": {"app": "web"}}


def test_validate_cnp_from_cluster_without_crds_is_a_note(
    client: Client, dev_cluster: DevCluster
) -> None:
    # Earlier tests (a chart install) may have left the policy CRDs: remove them so this test
    # sees a cluster without them; the next test applies them again.
    crds = ("ciliumnetworkpolicies.cilium.io", "ciliumclusterwidenetworkpolicies.cilium.io")
    for name in crds:
        client.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
    deadline = time.monotonic() + 60
    while any(
        client.get_or_none("apiextensions.k8s.io/v1", "CustomResourceDefinition", n) for n in crds
    ):
        assert time.monotonic() < deadline, "policy CRDs were not deleted"
        time.sleep(0.5)
    result = cilium(dev_cluster, "validate", "cnp", "--from-cluster", "-o", "json")
    assert result.returncode == 0, result.stderr
    rules = {f["rule"] for f in json.loads(result.stdout)["findings"]}
    assert rules == {"crd-missing"}


def test_validate_cnp_from_cluster(
    client: Client, namespace: str, dev_cluster: DevCluster, policy_crds: None
) -> None:
    good = cnp("good", namespace, {
        "endpointSelector": WEB,
        "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "api"}}],
                     "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                  "rules": {"http": [{"method": "GET", "path": "/"}]}}]}],
    })  # fmt: skip
    # Both are accepted by the structural schema; the agent would reject them.
    init = cnp("selects-init", namespace, {
        "endpointSelector": {"matchLabels": {"reserved:init": ""}},
        "egress": [{"toEntities": ["host"]}],
    })  # fmt: skip
    http_udp = cnp("http-on-udp", namespace, {
        "endpointSelector": WEB,
        "ingress": [{"toPorts": [{"ports": [{"port": "8080", "protocol": "UDP"}],
                                  "rules": {"http": [{"method": "GET"}]}}]}],
    })  # fmt: skip
    ccnp = {
        "apiVersion": "cilium.io/v2",
        "kind": CCNP,
        "metadata": {"name": f"{namespace}-host"},
        "spec": {
            "nodeSelector": {"matchLabels": {"role": "worker"}},
            "ingress": [{"fromEntities": ["cluster"]}],
        },
    }
    for obj in (good, init, http_udp, ccnp):
        client.create(obj)
    try:
        # What the schema can express is rejected at admission, by our generated CRD.
        bad_entity = cnp("bad-entity", namespace, {
            "endpointSelector": WEB, "egress": [{"toEntities": ["internet"]}],
        })  # fmt: skip
        with pytest.raises(InvalidError) as rejected:
            client.create(bad_entity)
        assert "internet" in str(rejected.value)

        result = cilium(dev_cluster, "validate", "cnp", "--from-cluster", "-o", "json")
        assert result.returncode == 1, result.stdout + result.stderr
        data = json.loads(result.stdout)
        mine = [f for f in data["findings"] if f.get("namespace") == namespace]
        got = {(f["name"], f["rule"], f["path"]) for f in mine if f["severity"] == "error"}
        assert got == {
            ("selects-init", "cnp-reserved-init", "spec.endpointSelector"),
            ("http-on-udp", "l7-protocol", "spec.ingress[0].toPorts[0].ports[0]"),
        }
        for finding in mine:
            assert finding["file"] == f"cluster:{CNP}/{namespace}/{finding['name']}"
            assert finding["fix"]
        assert not [
            f for f in data["findings"] if f["name"] in ("good", f"{namespace}-host")
            and f["severity"] == "error"
        ]  # fmt: skip
        assert data["summary"]["policies"] >= 4

        text = cilium(dev_cluster, "validate", "cnp", "--from-cluster")
        assert f"{CNP} {namespace}/http-on-udp" in text.stdout
        assert "fix: set protocol: TCP" in text.stdout
    finally:
        for obj in (good, init, http_udp):
            client.delete("cilium.io/v2", CNP, obj["metadata"]["name"], namespace)
        client.delete("cilium.io/v2", CCNP, ccnp["metadata"]["name"])


def test_validate_labels_from_cluster(
    client: Client, namespace: str, dev_cluster: DevCluster
) -> None:
    client.create({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cilium-config", "namespace": namespace},
        "data": {"labels": "!build-id", "cluster-name": "dev"},
    })  # fmt: skip
    for i in range(4):
        client.create({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{i}", "namespace": namespace,
                         "labels": {"app": "web", "build-id": f"20260101{i:04d}",
                                    "pod-template-hash": "5d8f7c9b6"}},
            "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]},
        })  # fmt: skip

    result = cilium(dev_cluster, "-n", namespace, "validate", "labels", "--from-cluster",
                    "-o", "json")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["source"] == f"ConfigMap {namespace}/cilium-config key labels"
    assert {"pattern": "!build-id", "source": None, "regex": "build-id", "type": "exclude",
            "origin": "user"} in data["patterns"]  # fmt: skip
    configured, defaults = data["configured"], data["defaults"]
    assert configured["pods"] == defaults["pods"] >= 4
    # With the defaults each build-id is its own identity; excluding it merges the four.
    assert defaults["identities"] - configured["identities"] == 3
    build = next(m for m in defaults["multipliers"] if m["key"] == "build-id")
    assert build["identitiesSaved"] >= 3 and build["kind"] == "timestamp"
    assert build["suggestedPattern"] == "!build-id"
    assert not any(m["key"] == "build-id" for m in configured["multipliers"])

    # Patterns from the flag override the ConfigMap; the text output names the keys.
    text = cilium(dev_cluster, "-n", namespace, "validate", "labels", "--from-cluster",
                  "--labels", "app")  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "Allow-list mode" in text.stdout
    assert "Identities with the defaults patterns" in text.stdout

    missing = cilium(dev_cluster, "-n", "no-such-namespace", "validate", "labels",
                     "--from-cluster")  # fmt: skip
    assert missing.returncode == 1
    assert "cilium-config not found" in missing.stderr
