"""`cilium status`: the health of Cilium's components, as cilium-cli reports it.

For the agent DaemonSet, the operator, Envoy, Hubble Relay/UI and the Cluster Mesh API
server: desired/ready/available/updated counts, pods by phase, images with counts, and
errors and warnings aggregated per component; plus the Helm chart version and how many of
the cluster's pods Cilium manages (pods vs CiliumEndpoints).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ciliumctl.k8s.readiness import Status, compute


class StatusClient(Protocol):
    """The reads the status needs."""

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


@dataclass(frozen=True)
class ComponentSpec:
    """How to find one component."""

    name: str
    kind: str
    object_name: str
    selector: str
    required: bool


COMPONENTS = (
    ComponentSpec("cilium", "DaemonSet", "cilium", "k8s-app=cilium", True),
    ComponentSpec("cilium-envoy", "DaemonSet", "cilium-envoy", "k8s-app=cilium-envoy", False),
    ComponentSpec(
        "cilium-operator", "Deployment", "cilium-operator", "io.cilium/app=operator", True
    ),
    ComponentSpec("hubble-relay", "Deployment", "hubble-relay", "k8s-app=hubble-relay", False),
    ComponentSpec("hubble-ui", "Deployment", "hubble-ui", "k8s-app=hubble-ui", False),
    ComponentSpec(
        "clustermesh-apiserver",
        "Deployment",
        "clustermesh-apiserver",
        "k8s-app=clustermesh-apiserver",
        False,
    ),
)


@dataclass
class Component:
    """The observed state of one component."""

    name: str
    kind: str
    state: str  # "OK", "disabled", "error", "warning"
    desired: int = 0
    ready: int = 0
    available: int = 0
    updated: int = 0
    pods: dict[str, int] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class CiliumStatus:
    """Everything `cilium status` reports."""

    namespace: str
    components: list[Component]
    helm_chart_version: str | None
    managed_pods: int
    cluster_pods: int
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no component reports an error."""
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _counts(obj: dict[str, Any], kind: str) -> tuple[int, int, int, int]:
    st = obj.get("status") or {}
    if kind == "DaemonSet":
        return (
            int(st.get("desiredNumberScheduled", 0)),
            int(st.get("numberReady", 0)),
            int(st.get("numberAvailable", 0)),
            int(st.get("updatedNumberScheduled", 0)),
        )
    desired = int((obj.get("spec") or {}).get("replicas", 1))
    return (
        desired,
        int(st.get("readyReplicas", 0)),
        int(st.get("availableReplicas", 0)),
        int(st.get("updatedReplicas", 0)),
    )


def _component(client: StatusClient, namespace: str, spec: ComponentSpec) -> Component:
    obj = client.get_or_none("apps/v1", spec.kind, spec.object_name, namespace)
    if obj is None:
        comp = Component(spec.name, spec.kind, "disabled")
        if spec.required:
            comp.state = "error"
            comp.errors.append(f"{spec.kind} {spec.object_name} not found in {namespace}")
        return comp
    desired, ready, available, updated = _counts(obj, spec.kind)
    comp = Component(spec.name, spec.kind, "OK", desired, ready, available, updated)
    pods = client.list("v1", "Pod", namespace, label_selector=spec.selector)
    phases: Counter[str] = Counter()
    images: Counter[str] = Counter()
    for pod in pods:
        phases[str((pod.get("status") or {}).get("phase", "Unknown"))] += 1
        for container in (pod.get("spec") or {}).get("containers", []):
            images[str(container.get("image", ""))] += 1
        result = compute(pod)
        name = pod["metadata"]["name"]
        if result.status is Status.FAILED:
            comp.errors.append(f"pod {name}: {result.message}")
        elif result.status is Status.IN_PROGRESS:
            comp.warnings.append(f"pod {name}: {result.message}")
    comp.pods, comp.images = dict(phases), dict(images)
    unavailable = desired - available
    if unavailable > 0:
        comp.errors.append(f"{unavailable} pods of {spec.kind} {spec.object_name} are not ready")
    if updated < desired:
        comp.warnings.append(
            f"{desired - updated} pods of {spec.kind} {spec.object_name} "
            "are not updated to the latest revision"
        )
    overall = compute(obj)
    if overall.status is Status.FAILED:
        comp.errors.append(f"{spec.kind} {spec.object_name}: {overall.message}")
    comp.state = "error" if comp.errors else "warning" if comp.warnings else "OK"
    return comp


def _helm_chart_version(client: StatusClient, namespace: str, release: str) -> str | None:
    from ciliumctl.k8s.errors import KubeError
    from ciliumctl.versions import decode_helm_release

    try:
        secrets = client.list(
            "v1", "Secret", namespace, label_selector=f"owner=helm,name={release},status=deployed"
        )
    except KubeError:
        return None
    if not secrets:
        return None
    latest = max(secrets, key=lambda s: int(s["metadata"].get("labels", {}).get("version", 0)))
    try:
        rel = decode_helm_release(latest.get("data", {}).get("release", ""))
    except (ValueError, OSError):
        return None
    version = rel.get("chart", {}).get("metadata", {}).get("version")
    cilium = (rel.get("config") or {}).get("ciliumVersion")
    return f"{version}" + (f" (Cilium {cilium})" if cilium else "") if version else None


def _managed(client: StatusClient) -> tuple[int, int]:
    from ciliumctl.k8s.errors import KubeError

    pods = [
        p
        for p in client.list("v1", "Pod")
        if not (p.get("spec") or {}).get("hostNetwork")
        and (p.get("status") or {}).get("phase") in ("Running", "Pending")
    ]
    try:
        endpoints = client.list("cilium.io/v2", "CiliumEndpoint")
    except KubeError:
        endpoints = []
    return len(endpoints), len(pods)


def collect(client: StatusClient, namespace: str, release: str) -> CiliumStatus:
    """Read the cluster once and compute the status."""
    components = [_component(client, namespace, spec) for spec in COMPONENTS]
    managed, total = _managed(client)
    status = CiliumStatus(
        namespace, components, _helm_chart_version(client, namespace, release), managed, total
    )
    for comp in components:
        status.errors += [f"{comp.name}: {e}" for e in comp.errors]
        status.warnings += [f"{comp.name}: {w}" for w in comp.warnings]
    return status


def wait(
    client: StatusClient,
    namespace: str,
    release: str,
    *,
    timeout: float,
    ignore_warnings: bool = False,
    interval: float = 2.0,
    on_poll: Any = None,
) -> CiliumStatus:
    """Collect until there are no errors (and no warnings unless ignored) or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        status = collect(client, namespace, release)
        done = status.ok and (ignore_warnings or not status.warnings)
        if done or time.monotonic() >= deadline:
            return status
        if on_poll is not None:
            on_poll(status)
        time.sleep(interval)
