"""`helm install` of charts/cilium into the dev cluster's real kube-apiserver.

The release lives in its own namespace, with its own secrets namespace, and is removed
(with any CRDs it created) even when an assertion fails, because the other integration
tests share the cluster and install the same cluster-scoped objects (ClusterRoles, CRDs).
The dev cluster has no kube-proxy, so the components get the API server's address through
k8sServiceHost/k8sServicePort, as on a kube-proxy-free cluster.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ciliumctl.devcluster import DevCluster, binaries
from ciliumctl.k8s import Client, ObjectRef

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "cilium"
RELEASE = "cilium-chart-it"


def _api_server(dev_cluster: DevCluster) -> tuple[str, int]:
    config = yaml.safe_load(Path(dev_cluster.kubeconfig_path).read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    assert server.hostname and server.port
    return server.hostname, server.port


class Helm:
    """The pinned helm binary pointed at the dev cluster."""

    def __init__(self, dev_cluster: DevCluster) -> None:
        self.bin = str(binaries.ensure(["helm"])["helm"])
        self.base = [
            "--kubeconfig",
            str(dev_cluster.kubeconfig_path),
            "--kube-context",
            dev_cluster.context,
        ]

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.bin, *args, *self.base], capture_output=True, text=True, timeout=timeout
        )


def _crd_names(client: Client) -> set[str]:
    return {
        c["metadata"]["name"]
        for c in client.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        if c["metadata"]["name"].endswith(".cilium.io")
    }


def _wait_gone(client: Client, refs: list[ObjectRef], timeout: float) -> list[ObjectRef]:
    """The refs still present after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    left = refs
    while left and time.monotonic() < deadline:
        left = [
            r
            for r in left
            if client.get_or_none(r.api_version, r.kind, r.name, r.namespace) is not None
        ]
        if left:
            time.sleep(0.5)
    return left


@pytest.fixture
def release(dev_cluster: DevCluster, client: Client) -> Iterator[dict[str, Any]]:
    """Names of a fresh release; everything it created is removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    info: dict[str, Any] = {
        "namespace": f"chart-it-{suffix}",
        "secrets": f"chart-it-secrets-{suffix}",
        "crds_before": _crd_names(client),
    }
    helm = Helm(dev_cluster)
    try:
        yield info
    finally:
        helm("uninstall", RELEASE, "-n", info["namespace"], "--wait", "--ignore-not-found")
        # Helm never deletes CRDs: remove the ones this install introduced.
        for name in _crd_names(client) - info["crds_before"]:
            client.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        for ns in (info["namespace"], info["secrets"]):
            client.delete("v1", "Namespace", ns)


def test_chart_installs_schedules_and_uninstalls(
    dev_cluster: DevCluster, client: Client, release: dict[str, Any]
) -> None:
    ns, secrets_ns = release["namespace"], release["secrets"]
    host, port = _api_server(dev_cluster)
    helm = Helm(dev_cluster)
    proc = helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        ns,
        "--create-namespace",
        "--set",
        "kubeProxyReplacement=true",
        "--set",
        f"k8sServiceHost={host}",
        "--set",
        f"k8sServicePort={port}",
        "--set",
        f"tls.secretsNamespace.name={secrets_ns}",
        "--set",
        "hubble.relay.enabled=true",
        "--set",
        "hubble.ui.enabled=true",
        "--set",
        "hubble.relay.tls.server.enabled=true",
        "--set",
        "rollOutCiliumPods=true",
        "--wait",
        "--timeout",
        "180s",
    )
    assert proc.returncode == 0, proc.stderr

    # The API server accepted and stored every kind of object the chart renders.
    crds = _crd_names(client)
    for plural in (
        "ciliumnodeconfigs",
        "ciliumidentities",
        "ciliumendpoints",
        "ciliumnodes",
        "ciliumloadbalancerippools",
        "ciliumcidrgroups",
        "ciliumlocalredirectpolicies",
        "ciliumegressgatewaypolicies",
        "ciliumnetworkpolicies",
        "ciliumclusterwidenetworkpolicies",
    ):
        assert f"{plural}.cilium.io" in crds, plural
    ncs = client.get(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "ciliumnodeconfigs.cilium.io"
    )
    assert [v["name"] for v in ncs["spec"]["versions"]] == ["v2", "v2alpha1"]
    established = {c["type"]: c["status"] for c in ncs["status"]["conditions"]}
    assert established.get("Established") == "True"
    assert client.get("rbac.authorization.k8s.io/v1", "ClusterRole", "cilium")
    assert client.get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "cilium-operator")
    assert client.get(
        "rbac.authorization.k8s.io/v1", "Role", "cilium-tlsinterception-secrets", secrets_ns
    )
    config = client.get("v1", "ConfigMap", "cilium-config", ns)
    assert config["data"]["kube-proxy-replacement"] == "true"
    assert config["data"]["policy-secrets-namespace"] == secrets_ns
    for secret in (
        "cilium-ca",
        "hubble-server-certs",
        "hubble-relay-client-certs",
        "hubble-relay-server-certs",
        "hubble-ui-client-certs",
    ):
        assert client.get("v1", "Secret", secret, ns)["type"] in ("Opaque", "kubernetes.io/tls")

    # A CiliumNodeConfig round-trips through the structural schema.
    client.apply(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNodeConfig",
            "metadata": {"name": "it-override", "namespace": ns},
            "spec": {
                "nodeSelector": {"matchLabels": {"kubernetes.io/os": "linux"}},
                "defaults": {"enable-bpf-masquerade": "true"},
            },
        }
    )
    stored = client.get("cilium.io/v2", "CiliumNodeConfig", "it-override", ns)
    assert stored["spec"]["defaults"] == {"enable-bpf-masquerade": "true"}

    # Pods were scheduled onto the kwok nodes and became ready.
    nodes = {n["metadata"]["name"] for n in client.list("v1", "Node")}
    client.wait_ready(
        [
            ObjectRef("apps/v1", "DaemonSet", "cilium", ns),
            ObjectRef("apps/v1", "Deployment", "cilium-operator", ns),
            ObjectRef("apps/v1", "Deployment", "hubble-relay", ns),
            ObjectRef("apps/v1", "Deployment", "hubble-ui", ns),
        ],
        timeout=120,
    )
    agents = client.list("v1", "Pod", ns, label_selector="k8s-app=cilium")
    assert {p["spec"]["nodeName"] for p in agents} == nodes
    assert all(p["status"]["phase"] == "Running" for p in agents)
    operators = client.list("v1", "Pod", ns, label_selector="io.cilium/app=operator")
    assert len(operators) == 2
    # Anti-affinity spreads the operators over two nodes.
    assert len({p["spec"]["nodeName"] for p in operators}) == 2
    relay = client.list("v1", "Pod", ns, label_selector="k8s-app=hubble-relay")
    assert relay and relay[0]["spec"]["nodeName"] in nodes

    # helm uninstall removes the release's objects, namespaced and cluster-scoped.
    proc = helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "120s")
    assert proc.returncode == 0, proc.stderr
    left = _wait_gone(
        client,
        [
            ObjectRef("apps/v1", "DaemonSet", "cilium", ns),
            ObjectRef("apps/v1", "Deployment", "cilium-operator", ns),
            ObjectRef("v1", "ConfigMap", "cilium-config", ns),
            ObjectRef("v1", "Secret", "cilium-ca", ns),
            ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRole", "cilium"),
            ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRole", "cilium-operator"),
            ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRole", "hubble-ui"),
            ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "cilium"),
        ],
        timeout=60,
    )
    assert not left, left
    pods = client.list("v1", "Pod", ns, label_selector="k8s-app=cilium")
    refs = [ObjectRef("v1", "Pod", p["metadata"]["name"], ns) for p in pods]
    assert not _wait_gone(client, refs, timeout=60)
