"""What `cilium install` learns about the cluster before rendering: its flavor (kind,
minikube, k3s, ..., the dev cluster), whether kube-proxy runs, and the cluster's name.

Each detection reads the kubeconfig context, the API server URL, node labels and the API
groups the server serves, and yields the chart values that flavor needs. User values
(--set, -f) are merged over these later and always win.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

from ciliumctl import __version__

#: the dev cluster's registry as its real nodes name it, and the tag of the images built here
#: (ciliumctl.devcluster.realnodes.REGISTRY_NAME, ciliumctl.devcluster.images.TAG)
DEV_REGISTRY = "registry.dev-cluster.local"
DEV_TAG = __version__
#: label of the dev cluster's real nodes (ciliumctl.devcluster.realnodes.REAL_LABEL)
DEV_REAL_LABEL = "dev-cluster.ciliumctl.io/real"


class DetectClient(Protocol):
    """The reads flavor detection needs."""

    server: str
    context: str | None

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None: ...

    def request(self, method: str, path: str, *, what: str) -> Any: ...


@dataclass
class Detection:
    """Detected facts and the values derived from them."""

    flavor: str
    cluster_name: str
    kube_proxy: bool
    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


_FLAVOR_VALUES: dict[str, dict[str, Any]] = {
    "kind": {"ipam": {"mode": "kubernetes"}},
    "minikube": {"ipam": {"mode": "kubernetes"}},
    "k3s": {"ipam": {"mode": "kubernetes"}},
    "microk8s": {
        "ipam": {"mode": "kubernetes"},
        "cni": {
            "binPath": "/var/snap/microk8s/current/opt/cni/bin",
            "confPath": "/var/snap/microk8s/current/args/cni-network",
        },
    },
    "rancher-desktop": {"ipam": {"mode": "kubernetes"}},
    "gke": {
        "ipam": {"mode": "kubernetes"},
        "cni": {"binPath": "/home/kubernetes/bin"},
        "gke": {"enabled": True},
        "ipv4NativeRoutingCIDR": None,
        "routingMode": "native",
        "enableIPv4Masquerade": True,
    },
    "eks": {
        "eni": {"enabled": True},
        "ipam": {"mode": "eni"},
        "routingMode": "native",
        "egressMasqueradeInterfaces": "eth+",
    },
    "aks": {
        "aksbyocni": {"enabled": True},
        "ipam": {"mode": "cluster-pool"},
        "routingMode": "tunnel",
    },
    "openshift": {
        "cni": {"binPath": "/var/lib/cni/bin", "confPath": "/var/run/multus/cni/net.d"},
        "securityContext": {"privileged": True},
    },
    "dev-cluster": {"ipam": {"mode": "kubernetes"}},
    # real nodes pull the project's own agent and operator (pushed to the cluster's registry
    # by `cilium dev-cluster up --real-nodes`); Always, as the tag names the latest build
    # real nodes share the machine's PID namespace, so /proc/1 is not the node's init: no
    # nsenter-into-PID-1 init containers (cgroup2 is the node's /sys/fs/cgroup already); no
    # Envoy image is built here
    "dev-cluster-real": {
        "ipam": {"mode": "kubernetes"},
        "cgroup": {"autoMount": {"enabled": False}, "hostRoot": "/sys/fs/cgroup"},
        "sysctlfix": {"enabled": False},
        "envoy": {"enabled": False},
        # without SYS_RESOURCE (sandboxed machines lack it; BPF memory is memcg-charged on
        # the 6.1 kernel, so raising RLIMIT_MEMLOCK is not needed)
        "securityContext": {
            "capabilities": {
                "ciliumAgent": [
                    "CHOWN",
                    "KILL",
                    "NET_ADMIN",
                    "NET_RAW",
                    "IPC_LOCK",
                    "SYS_MODULE",
                    "SYS_ADMIN",
                    "DAC_OVERRIDE",
                    "FOWNER",
                    "SETGID",
                    "SETUID",
                ],
                "cleanCiliumState": ["NET_ADMIN", "SYS_MODULE", "SYS_ADMIN"],
            }
        },
        "image": {"override": f"{DEV_REGISTRY}/ciliumctl/cilium:{DEV_TAG}", "pullPolicy": "Always"},
        "operator": {
            "image": {
                "override": f"{DEV_REGISTRY}/ciliumctl/operator-generic:{DEV_TAG}",
                "pullPolicy": "Always",
            },
            # kwok nodes in the same cluster would "run" it as a status field only
            "nodeSelector": {DEV_REAL_LABEL: "true"},
        },
    },
    "generic": {},
}


def _labels(nodes: list[dict[str, Any]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for node in nodes[:20]:
        merged.update(node.get("metadata", {}).get("labels") or {})
    return merged


def flavor_of(
    context: str,
    server: str,
    node_labels: dict[str, str],
    api_groups: set[str],
    node_annotations: dict[str, str],
) -> str:
    """The cluster flavor from what is visible without privileges."""
    host = urlparse(server).hostname or ""
    ctx = context.lower()
    if ctx.startswith("ciliumctl-") and DEV_REAL_LABEL in node_labels:
        return "dev-cluster-real"
    if node_annotations.get("kwok.x-k8s.io/node") == "fake" and ctx.startswith("ciliumctl-"):
        return "dev-cluster"
    if "config.openshift.io" in api_groups or "route.openshift.io" in api_groups:
        return "openshift"
    if ctx.startswith("kind-") or any(k.startswith("kind.x-k8s.io") for k in node_labels):
        return "kind"
    if ctx == "minikube" or "minikube.k8s.io/name" in node_labels:
        return "minikube"
    if ctx == "rancher-desktop":
        return "rancher-desktop"
    if ctx == "microk8s" or "microk8s.io/cluster" in node_labels:
        return "microk8s"
    if (
        node_labels.get("node.kubernetes.io/instance-type") == "k3s"
        or "k3s.io/hostname" in node_labels
    ):
        return "k3s"
    if ctx.startswith("gke_") or "cloud.google.com/gke-nodepool" in node_labels:
        return "gke"
    if (
        re.search(r"\.eks\.amazonaws\.com$", host)
        or "eks.amazonaws.com/nodegroup" in node_labels
        or ctx.startswith("arn:aws:eks:")
    ):
        return "eks"
    if re.search(r"\.azmk8s\.io$", host) or "kubernetes.azure.com/cluster" in node_labels:
        return "aks"
    return "generic"


def cluster_name_from_context(context: str, flavor: str) -> str:
    """A valid ``cluster.name`` (lowercase DNS label, <= 32 chars) from the context name."""
    name = context
    if flavor == "gke" and context.startswith("gke_"):
        name = context.split("_")[-1]
    elif flavor == "eks" and context.startswith("arn:aws:eks:"):
        name = context.rsplit("/", 1)[-1]
    elif flavor == "kind" and context.startswith("kind-"):
        name = context.removeprefix("kind-")
    name = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:32].strip("-")
    return name or "default"


def kube_proxy_present(client: DetectClient) -> bool:
    """True when a kube-proxy DaemonSet exists in kube-system."""
    return client.get_or_none("apps/v1", "DaemonSet", "kube-proxy", "kube-system") is not None


def api_server_endpoint(client: DetectClient) -> tuple[str, int] | None:
    """The API server's address from the ``kubernetes`` EndpointSlice (for KPR)."""
    slices = client.list(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        "default",
        label_selector="kubernetes.io/service-name=kubernetes",
    )
    for eps in slices:
        ports = [p.get("port") for p in eps.get("ports") or [] if p.get("name") == "https"]
        for endpoint in eps.get("endpoints") or []:
            addresses = endpoint.get("addresses") or []
            if addresses and ports and ports[0]:
                return str(addresses[0]), int(ports[0])
    return None


def detect(client: DetectClient) -> Detection:
    """Inspect the cluster and derive the install-time values."""
    nodes = client.list("v1", "Node")
    labels = _labels(nodes)
    annotations: dict[str, str] = {}
    for node in nodes[:20]:
        annotations.update(node.get("metadata", {}).get("annotations") or {})
    groups_doc = client.request("GET", "/apis", what="list API groups")
    groups = {g.get("name", "") for g in groups_doc.get("groups", [])}
    context = client.context or ""
    flavor = flavor_of(context, client.server, labels, groups, annotations)
    values: dict[str, Any] = {}
    for key, value in _FLAVOR_VALUES[flavor].items():
        if value is not None:
            values[key] = value
    name = cluster_name_from_context(context or "default", flavor)
    values["cluster"] = {"name": name}
    detection = Detection(flavor, name, kube_proxy_present(client), values)
    if not detection.kube_proxy:
        endpoint = api_server_endpoint(client)
        values["kubeProxyReplacement"] = "true"
        if endpoint is not None:
            values["k8sServiceHost"], values["k8sServicePort"] = endpoint
            detection.notes.append(
                f"no kube-proxy: kubeProxyReplacement=true, API server {endpoint[0]}:"
                f"{endpoint[1]} from the kubernetes EndpointSlice"
            )
        else:
            detection.notes.append(
                "no kube-proxy and no kubernetes EndpointSlice: set "
                "k8sServiceHost/k8sServicePort yourself"
            )
    return detection
