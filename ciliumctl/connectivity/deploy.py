"""The test workloads as cilium-cli deploys them, and their lifecycle.

Namespace ``cilium-test-N`` holds Deployments ``client``, ``client2``, ``client3``,
``echo-same-node``, ``echo-other-node`` (with their Services and ServiceAccounts), the
``host-netns`` DaemonSet and, where nodes without Cilium exist, ``host-netns-non-cilium``.
Labels are upstream's: ``name=<deployment>``, ``kind=client|echo|host-netns`` and the
``other``/``first`` labels the policies select on. Objects that exist are kept (as
cilium-cli does) unless ``--force-deploy`` deletes them first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ciliumctl.connectivity.params import Params
from ciliumctl.errors import CiliumctlError

Obj = dict[str, Any]
APP_LABELS = {"app.kubernetes.io/name": "cilium-cli"}
NO_SCHEDULE_LABEL = "cilium.io/no-schedule"
ECHO_PORT = 8080
#: the echo servers' hostPort where Cilium serves hostPorts (cilium-cli's EchoServerHostPort)
ECHO_HOST_PORT = 4000
DNS_CONFIGMAP = "coredns-configmap"
CLIENTS = ("client", "client2", "client3")
ECHOES = ("echo-same-node", "echo-other-node")
HOST_NETNS = "host-netns"
HOST_NETNS_NON_CILIUM = "host-netns-non-cilium"


class DeployClient(Protocol):
    """What deployment needs from the Kubernetes client."""

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None: ...

    def create(self, obj: Obj, *, dry_run: bool = False) -> Obj: ...

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        ignore_not_found: bool = True,
    ) -> bool: ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> list[Obj]: ...


class DeployError(CiliumctlError):
    """The test workloads could not be deployed or did not become ready."""


def _affinity(kind: str, to: str = "client") -> Obj:
    term = {
        "labelSelector": {"matchExpressions": [{"key": "name", "operator": "In", "values": [to]}]},
        "topologyKey": "kubernetes.io/hostname",
    }
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


def _deployment(
    namespace: str,
    name: str,
    kind: str,
    image: str,
    *,
    labels: dict[str, str] | None = None,
    affinity: Obj | None = None,
    node_selector: dict[str, str] | None = None,
    echo: bool = False,
    dns_image: str = "",
    host_port: int = 0,
) -> Obj:
    selector = {"name": name, "kind": kind}
    pod_labels = {**selector, **(labels or {})}
    container: Obj = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent"}
    volumes: list[Obj] = []
    containers = [container]
    if echo:
        port_name = f"http-{ECHO_PORT}"
        container["ports"] = [{"name": port_name, "containerPort": ECHO_PORT}]
        if host_port:  # as cilium-cli: only where Cilium serves hostPorts
            container["ports"][0]["hostPort"] = host_port
        container["env"] = [
            {"name": "PORT", "value": str(ECHO_PORT)},
            {"name": "NAMED_PORT", "value": port_name},
        ]
        container["readinessProbe"] = _probe(ECHO_PORT, "/")
        containers.append(
            {
                "name": "dns-test-server",
                "image": dns_image,
                "imagePullPolicy": "IfNotPresent",
                "args": ["-conf", "/etc/coredns/Corefile"],
                "ports": [
                    {"name": "dns-53", "containerPort": 53},
                    {"name": "dns-udp-53", "containerPort": 53, "protocol": "UDP"},
                ],
                "readinessProbe": _probe(8181, "/ready"),
                "volumeMounts": [
                    {"name": "coredns-config-volume", "mountPath": "/etc/coredns", "readOnly": True}
                ],
            }
        )
        volumes.append({"name": "coredns-config-volume", "configMap": {"name": DNS_CONFIGMAP}})
    else:
        container["command"] = ["/usr/bin/pause"]
    spec: Obj = {
        "containers": containers,
        "serviceAccountName": name,
        "terminationGracePeriodSeconds": 1,
    }
    if volumes:
        spec["volumes"] = volumes
    if affinity:
        spec["affinity"] = affinity
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(selector)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": pod_labels}, "spec": spec},
        },
    }


def _probe(port: int, path: str) -> Obj:
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "timeoutSeconds": 2,
        "periodSeconds": 1,
        "initialDelaySeconds": 1,
        "successThreshold": 1,
        "failureThreshold": 3,
    }


def _daemonset(
    namespace: str, name: str, image: str, non_cilium: bool, node_selector: dict[str, str]
) -> Obj:
    selector = {"name": name, "kind": HOST_NETNS}
    spec: Obj = {
        "containers": [
            {
                "name": name,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["/usr/bin/pause"],
            }
        ],
        "hostNetwork": True,
        "terminationGracePeriodSeconds": 1,
    }
    if node_selector and not non_cilium:
        # --node-selector keeps every test pod on the chosen nodes (the host-netns pods too,
        # so host-to-pod does not start on nodes the run does not use)
        spec["nodeSelector"] = dict(node_selector)
    if non_cilium:
        spec["tolerations"] = [{"operator": "Exists"}]
        spec["nodeSelector"] = {NO_SCHEDULE_LABEL: "true"}
        spec["containers"][0]["securityContext"] = {"capabilities": {"add": ["NET_ADMIN"]}}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(selector)},
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": {**selector, "other": HOST_NETNS}}, "spec": spec},
        },
    }


def _service(namespace: str, name: str, service_type: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"kind": "echo"}},
        "spec": {
            "type": service_type,
            "ports": [{"name": "http", "port": ECHO_PORT}],
            "selector": {"name": name},
            "ipFamilyPolicy": "PreferDualStack",
        },
    }


def manifests(
    namespace: str, params: Params, *, non_cilium_nodes: bool = False, host_port: bool = False
) -> list[Obj]:
    """Every object of one test namespace, in creation order; with ``host_port`` the echo
    servers also listen on the nodes' port :data:`ECHO_HOST_PORT`."""
    single = params.single_node
    echo_host_port = ECHO_HOST_PORT if host_port else 0
    ns: Obj = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": dict(APP_LABELS)},
    }
    objs: list[Obj] = [ns, _service(namespace, "echo-same-node", params.service_type)]
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": DNS_CONFIGMAP, "namespace": namespace},
            "data": {"Corefile": ". {\n    local\n    ready\n    log\n}\n"},
        }
    )
    names = ["echo-same-node", "client", "client2"] + (
        [] if single else ["client3", "echo-other-node"]
    )
    for name in names:
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            }
        )
    sel = params.node_selector
    objs.append(
        _deployment(
            namespace,
            "echo-same-node",
            "echo",
            params.json_mock_image,
            labels={"other": "echo"},
            affinity=_affinity("podAffinity"),
            echo=True,
            dns_image=params.dns_test_server_image,
            host_port=echo_host_port,
        )
    )
    objs.append(_deployment(namespace, "client", "client", params.curl_image, node_selector=sel))
    objs.append(
        _deployment(
            namespace,
            "client2",
            "client",
            params.curl_image,
            labels={"other": "client"},
            affinity=_affinity("podAffinity"),
            node_selector=sel,
        )
    )
    if not single:
        objs.append(
            _deployment(
                namespace,
                "client3",
                "client",
                params.curl_image,
                labels={"other": "client-other-node"},
                affinity=_affinity("podAntiAffinity"),
                node_selector=sel,
            )
        )
        objs.append(_service(namespace, "echo-other-node", params.service_type))
        objs.append(
            _deployment(
                namespace,
                "echo-other-node",
                "echo",
                params.json_mock_image,
                labels={"first": "echo"},
                affinity=_affinity("podAntiAffinity"),
                node_selector=sel,
                echo=True,
                dns_image=params.dns_test_server_image,
                host_port=echo_host_port,
            )
        )
        objs.append(_daemonset(namespace, HOST_NETNS, params.curl_image, False, sel))
    if non_cilium_nodes:
        objs.append(_daemonset(namespace, HOST_NETNS_NON_CILIUM, params.curl_image, True, {}))
    return objs


def _ref(obj: Obj) -> str:
    meta = obj["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind'].lower()} {where}{meta['name']}"


def _creating(obj: Obj) -> str:
    """cilium-cli's words for creating ``obj`` (ServiceAccounts go unmentioned)."""
    name, kind = obj["metadata"]["name"], obj["kind"]
    return {
        "Namespace": f"Creating namespace {name} for connectivity check",
        "Service": f"Deploying {name} service",
        "ConfigMap": "Deploying DNS test server configmap",
        "Deployment": f"Deploying {name} deployment",
        "DaemonSet": f"Deploying {name} daemonset",
    }.get(kind, "")


@dataclass
class DeployReport:
    """What deployment did, for the bench and the log."""

    created: list[str]
    kept: list[str]
    seconds_deploy: float = 0.0
    seconds_wait: float = 0.0


Log = Callable[[str], None]


def deploy(
    client: DeployClient,
    params: Params,
    *,
    non_cilium_nodes: bool,
    log: Log,
    context: str,
    host_port: bool = False,
) -> DeployReport:
    """Create the absent objects of every test namespace (after ``--force-deploy``'s delete)."""
    start = time.monotonic()
    report = DeployReport([], [])
    for namespace in params.namespaces():
        objs = manifests(namespace, params, non_cilium_nodes=non_cilium_nodes, host_port=host_port)
        if params.force_deploy:
            for obj in objs:
                if obj["kind"] in ("Deployment", "DaemonSet"):
                    log(f"🔥 [{context}] Deleting {_ref(obj)}...")
                    client.delete(
                        obj["apiVersion"],
                        obj["kind"],
                        obj["metadata"]["name"],
                        namespace,
                        propagation="Foreground",
                    )
            _wait_gone(client, namespace, objs, params.wait_timeout)
        for obj in objs:
            meta = obj["metadata"]
            if client.get_or_none(
                obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")
            ):
                report.kept.append(_ref(obj))
                continue
            message = _creating(obj)
            if message:
                log(f"✨ [{context}] {message}...")
            client.create(obj)
            report.created.append(_ref(obj))
    report.seconds_deploy = time.monotonic() - start
    return report


def _wait_gone(client: DeployClient, namespace: str, objs: list[Obj], timeout: float) -> None:
    """Wait until the force-deleted workloads and their pods are gone."""
    deadline = time.monotonic() + timeout
    kinds = [o for o in objs if o["kind"] in ("Deployment", "DaemonSet")]
    while True:
        left = [
            _ref(o)
            for o in kinds
            if client.get_or_none(o["apiVersion"], o["kind"], o["metadata"]["name"], namespace)
        ]
        pods = client.list("v1", "Pod", namespace, label_selector="kind")
        left += [f"pod {namespace}/{p['metadata']['name']}" for p in pods]
        if not left:
            return
        if time.monotonic() > deadline:
            raise DeployError(
                f"--force-deploy: still deleting after {timeout:.0f}s: {', '.join(left[:5])}",
                "check for finalizers or stuck pods in the test namespace",
            )
        time.sleep(0.2)


def workload_refs(namespace: str, params: Params, *, non_cilium_nodes: bool) -> list[Obj]:
    """The Deployments and DaemonSets whose readiness the run waits for."""
    return [
        o
        for o in manifests(namespace, params, non_cilium_nodes=non_cilium_nodes)
        if o["kind"] in ("Deployment", "DaemonSet")
    ]


def pending_reason(client: DeployClient, namespace: str, workload: Obj) -> str:
    """Why a workload's pods are not ready: scheduling, image pull or probe messages."""
    labels = workload["spec"]["selector"]["matchLabels"]
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    pods = client.list("v1", "Pod", namespace, label_selector=selector)
    if not pods:
        return "no pod created yet"
    reasons = []
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("status") != "True" and cond.get("message"):
                reasons.append(f"pod {name}: {cond.get('type')}: {cond['message']}")
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting")
            if waiting:
                msg = waiting.get("message") or ""
                reasons.append(
                    f"pod {name} container {cs['name']}: {waiting.get('reason')} {msg}".strip()
                )
            elif not cs.get("ready"):
                reasons.append(f"pod {name} container {cs['name']}: not ready (readiness probe)")
        if not reasons and status.get("phase") != "Running":
            reasons.append(f"pod {name}: phase {status.get('phase')}")
    return "; ".join(reasons) or "pods not ready"


def cleanup(client: DeployClient, params: Params, log: Log, context: str) -> None:
    """``--cleanup``: delete the test namespaces (and with them everything in them)."""
    for namespace in params.namespaces():
        if client.delete("v1", "Namespace", namespace):
            log(f"🔥 [{context}] Deleting namespace {namespace}...")
