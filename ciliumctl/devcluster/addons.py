"""Cluster add-ons of a dev cluster with real nodes: kube-proxy and cluster DNS.

Both use the upstream object names and labels (DaemonSet ``kube-proxy`` with
``k8s-app=kube-proxy``, which ``cilium install`` detects; Deployment ``coredns`` with
``k8s-app=kube-dns`` behind the Service ``kube-dns``, which upstream's policies select) and
upstream image names, which the nodes' registry mirrors resolve to images built here.
Both run on real nodes only (kwok nodes would pretend to run them).
"""

from __future__ import annotations

from typing import Any

import yaml

from ciliumctl.devcluster.binaries import KUBERNETES_VERSION
from ciliumctl.devcluster.cluster import CLUSTER_CIDR

KUBE_PROXY_IMAGE = f"registry.k8s.io/kube-proxy:{KUBERNETES_VERSION}"
CLUSTER_DNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.12.1"
NAMESPACE = "kube-system"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

Obj = dict[str, Any]


def _meta(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"name": name, "namespace": NAMESPACE, "labels": labels or {}}


def _on_real_nodes(real_label: str) -> Obj:
    return {
        "nodeSelector": {real_label: "true", "kubernetes.io/os": "linux"},
        "tolerations": [{"operator": "Exists"}],
    }


def kube_proxy(api_server: str, real_label: str) -> list[Obj]:
    """kube-proxy in iptables mode as a DaemonSet; it reaches the API server at
    ``api_server`` (``https://<host link>:<port>``), as kube-proxy must before Services work."""
    labels = {"k8s-app": "kube-proxy"}
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "default",
                "cluster": {
                    "server": api_server,
                    "certificate-authority": f"{SA_DIR}/ca.crt",
                    "tls-server-name": "127.0.0.1",
                },
            }
        ],
        "users": [{"name": "default", "user": {"tokenFile": f"{SA_DIR}/token"}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
        "current-context": "default",
    }
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clusterCIDR": CLUSTER_CIDR,
        "clientConnection": {"kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf"},
        # the conntrack table size and timeouts are machine-wide: leave them alone
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "0.0.0.0:10256",
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("kube-proxy", labels)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "ciliumctl:kube-proxy", "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:node-proxier",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "kube-proxy", "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("kube-proxy", labels),
            "data": {
                "config.conf": yaml.safe_dump(config, sort_keys=False),
                "kubeconfig.conf": yaml.safe_dump(kubeconfig, sort_keys=False),
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": _meta("kube-proxy", labels),
            "spec": {
                "selector": {"matchLabels": labels},
                "updateStrategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        **_on_real_nodes(real_label),
                        "hostNetwork": True,
                        "serviceAccountName": "kube-proxy",
                        "priorityClassName": "system-node-critical",
                        "containers": [
                            {
                                "name": "kube-proxy",
                                "image": KUBE_PROXY_IMAGE,
                                "imagePullPolicy": "Always",
                                "command": [
                                    "/usr/local/bin/kube-proxy",
                                    "--config=/var/lib/kube-proxy/config.conf",
                                    "--hostname-override=$(NODE_NAME)",
                                ],
                                "env": [
                                    {
                                        "name": "NODE_NAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                    }
                                ],
                                "securityContext": {"privileged": True},
                                "volumeMounts": [
                                    {"name": "kube-proxy", "mountPath": "/var/lib/kube-proxy"},
                                    {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
                                    {
                                        "name": "lib-modules",
                                        "mountPath": "/lib/modules",
                                        "readOnly": True,
                                    },
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "kube-proxy", "configMap": {"name": "kube-proxy"}},
                            {
                                "name": "xtables-lock",
                                "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"},
                            },
                            {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
                        ],
                    },
                },
            },
        },
    ]


def corefile(upstream: str) -> str:
    """Cluster names from the API server; everything else forwarded to ``upstream``."""
    return f""".:53 {{
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    forward . {upstream}
    cache 30
}}
"""


def cluster_dns(cluster_ip: str, upstream: str, real_label: str) -> list[Obj]:
    """The cluster DNS: Deployment ``coredns`` (``k8s-app=kube-dns``), Service ``kube-dns``."""
    labels = {"k8s-app": "kube-dns"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("coredns", labels)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns", "labels": labels},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns", "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("coredns", labels),
            "data": {"Corefile": corefile(upstream)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta("coredns", labels),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        **_on_real_nodes(real_label),
                        "serviceAccountName": "coredns",
                        "priorityClassName": "system-cluster-critical",
                        "dnsPolicy": "Default",
                        "containers": [
                            {
                                "name": "coredns",
                                "image": CLUSTER_DNS_IMAGE,
                                "imagePullPolicy": "Always",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": 8181},
                                    "periodSeconds": 2,
                                },
                                "livenessProbe": {
                                    "httpGet": {"path": "/health", "port": 8080},
                                    "periodSeconds": 10,
                                },
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/coredns"},
                                ],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("kube-dns", {**labels, "kubernetes.io/name": "CoreDNS"}),
            "spec": {
                "clusterIP": cluster_ip,
                "selector": labels,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        },
    ]
