"""kwok's configuration for the dev cluster: pod lifecycle stages and fake node objects.

Pods become Ready at once, as in kwok's own "fast" stages, except those whose image tag
ends in ``-broken``: they stay Running but not Ready with a CrashLoopBackOff container, so
that rollout failures (and automatic rollbacks) can be tested on the dev cluster.
"""

from __future__ import annotations

from typing import Any

import yaml

#: Annotation that marks a node as managed by this cluster's kwok controller.
MANAGED_ANNOTATION = "kwok.x-k8s.io/node"
MANAGED_VALUE = "fake"
#: Kinds kwok serves as CRDs so exec and logs can be enabled per pod at run time.
KWOK_CRDS = ("Exec", "ClusterExec", "Logs", "ClusterLogs")
#: A jq expression kwok evaluates on each pod: true for every container image ending -broken.
BROKEN_IMAGE_QUERY = '.spec.containers[].image | endswith("-broken")'

_PENDING_POD = [
    {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
    {"key": ".status.podIP", "operator": "DoesNotExist"},
]

_READY_TEMPLATE = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodReadyToStartContainers
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodScheduled
{{ range .spec.readinessGates }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ .conditionType | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
"""

_BROKEN_TEMPLATE = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: ContainersNotReady
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: ContainersNotReady
  type: ContainersReady
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  started: false
  restartCount: 3
  lastState:
    terminated:
      exitCode: 1
      reason: Error
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
  state:
    waiting:
      reason: CrashLoopBackOff
      message: back-off restarting failed container {{ .name }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
"""

_COMPLETE_TEMPLATE = """\
{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""


def _stage(name: str, selector: list[dict[str, Any]], nxt: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": selector},
            "next": nxt,
        },
    }


def pod_stages() -> list[dict[str, Any]]:
    """The pod lifecycle: ready, broken (``-broken`` images), job completion, deletion."""
    not_broken = {"key": BROKEN_IMAGE_QUERY, "operator": "NotIn", "values": ["true"]}
    broken = {"key": BROKEN_IMAGE_QUERY, "operator": "In", "values": ["true"]}
    return [
        _stage("pod-ready", [*_PENDING_POD, not_broken], {"statusTemplate": _READY_TEMPLATE}),
        _stage("pod-broken", [*_PENDING_POD, broken], {"statusTemplate": _BROKEN_TEMPLATE}),
        _stage(
            "pod-complete",
            [
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                {"key": ".metadata.ownerReferences[].kind", "operator": "In", "values": ["Job"]},
            ],
            {"statusTemplate": _COMPLETE_TEMPLATE},
        ),
        _stage(
            "pod-delete",
            [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
            {"finalizers": {"empty": True}, "delete": True},
        ),
    ]


def configuration(pod_cidr: str) -> str:
    """kwok's ``--config`` file: the controller options and the pod stages."""
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            "options": {"cidr": pod_cidr, "enableCRDs": list(KWOK_CRDS)},
        },
        *pod_stages(),
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


#: kind -> (plural, namespaced) of the kwok kinds served as CRDs (see KWOK_CRDS).
_CRD_NAMES = {
    "Exec": ("execs", True),
    "ClusterExec": ("clusterexecs", False),
    "Logs": ("logs", True),
    "ClusterLogs": ("clusterlogs", False),
}


def crd_manifests() -> list[dict[str, Any]]:
    """CustomResourceDefinitions for the kwok kinds in :data:`KWOK_CRDS`.

    kwok watches these kinds but does not register them; the schema is left open because
    kwok itself validates what it reads.
    """
    open_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    crds = []
    for kind in KWOK_CRDS:
        plural, namespaced = _CRD_NAMES[kind]
        crds.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.kwok.x-k8s.io"},
                "spec": {
                    "group": "kwok.x-k8s.io",
                    "names": {
                        "kind": kind,
                        "listKind": f"{kind}List",
                        "plural": plural,
                        "singular": plural if plural == "logs" else kind.lower(),
                    },
                    "scope": "Namespaced" if namespaced else "Cluster",
                    "versions": [
                        {
                            "name": "v1alpha1",
                            "served": True,
                            "storage": True,
                            "subresources": {"status": {}},
                            "schema": {
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "properties": {"spec": open_object, "status": open_object},
                                }
                            },
                        }
                    ],
                },
            }
        )
    return crds


def node_manifest(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    kernel: str = "6.8.0-49-generic",
    kubelet_version: str = "v1.34.4",
) -> dict[str, Any]:
    """A fake node with the labels and nodeInfo a real kubelet would register."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {MANAGED_ANNOTATION: MANAGED_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "kwok",
                "type": "kwok",
                **(labels or {}),
            },
        },
        "status": {
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "Ubuntu 24.04.1 LTS",
                "kernelVersion": kernel,
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": kubelet_version,
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
            "capacity": {
                "cpu": "32",
                "memory": "128Gi",
                "pods": "110",
                "ephemeral-storage": "500Gi",
            },
            "allocatable": {
                "cpu": "32",
                "memory": "128Gi",
                "pods": "110",
                "ephemeral-storage": "500Gi",
            },
        },
    }


def exec_manifest(
    namespace: str,
    pod: str,
    workdir: str,
    containers: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A kwok ``Exec`` that lets ``kubectl exec`` run local processes for one pod."""
    local: dict[str, Any] = {"workDir": workdir}
    if env:
        local["envs"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    target: dict[str, Any] = {"local": local}
    if containers:
        target["containers"] = containers
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Exec",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"execs": [target]},
    }


def cri_log(lines: list[str], *, stream: str = "stdout", start: float | None = None) -> str:
    """Format ``lines`` in the CRI log format that kubelet (and kwok) read from disk:
    ``<RFC3339Nano timestamp> <stream> F <line>``, one second apart from ``start``."""
    import datetime as dt

    base = (
        dt.datetime.fromtimestamp(start, dt.UTC)
        if start is not None
        else dt.datetime.now(dt.UTC) - dt.timedelta(seconds=len(lines))
    )
    out = []
    for i, line in enumerate(lines):
        stamp = (base + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        out.append(f"{stamp} {stream} F {line}\n")
    return "".join(out)


def logs_manifest(
    namespace: str,
    pod: str,
    logs_file: str,
    containers: list[str] | None = None,
    previous_logs_file: str | None = None,
) -> dict[str, Any]:
    """A kwok ``Logs`` that serves a file as a pod's container log."""
    target: dict[str, Any] = {"logsFile": logs_file}
    if previous_logs_file:
        target["previousLogsFile"] = previous_logs_file
    if containers:
        target["containers"] = containers
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Logs",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"logs": [target]},
    }
