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
    #: agent pods on kwok nodes, where there is no process to ask for its own status
    agents_not_queried: int = 0


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


#: seconds one agent may take to answer ``cilium-dbg status`` (an agent that hangs is an
#: error of that pod, not a hung ``cilium status``)
AGENT_STATUS_TIMEOUT = 10.0


def _is_kwok(node: dict[str, Any] | None) -> bool:
    annotations = ((node or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get("kwok.x-k8s.io/node") == "fake"


def agent_errors(response: dict[str, Any]) -> list[str]:
    """What an agent's own status (upstream's StatusResponse) says is wrong, as cilium-cli
    reports it: the agent and Kubernetes states, failing controllers, masquerading that is
    not in place."""
    out = []
    for section in ("cilium", "kubernetes"):
        st = response.get(section) or {}
        if st.get("state") not in (None, "Ok", "Disabled"):
            out.append(f"{section}: {st.get('state')} {st.get('msg') or ''}".rstrip())
    for ctl in response.get("controllers") or []:
        st = ctl.get("status") or {}
        if st.get("consecutive-failure-count"):
            out.append(
                f"controller {ctl.get('name')} is failing: {st.get('last-failure-msg') or '?'}"
            )
    masq = response.get("masquerading") or {}
    if masq.get("enabled") and masq.get("msg") and "waiting" not in str(masq.get("msg")):
        out.append(f"masquerading: {masq['msg']}")
    return out


def _agent_status(client: Any, namespace: str, pod: dict[str, Any]) -> list[str]:
    """Errors of one running agent: exec ``cilium-dbg status -o json`` in it, as cilium-cli
    does; a failed or hung exec is an error of that pod."""
    import json

    from ciliumctl.errors import CiliumctlError

    name = pod["metadata"]["name"]
    argv = ["cilium-dbg", "status", "-o", "json"]
    try:
        result = client.exec(namespace, name, argv, "cilium-agent", timeout=AGENT_STATUS_TIMEOUT)
    except (CiliumctlError, OSError, TimeoutError) as exc:
        return [f"pod {name}: unable to retrieve cilium status: {exc}"]
    if result.exit_code != 0:
        why = (result.stderr or result.stdout).decode(errors="replace").strip()[-300:]
        return [
            f"pod {name}: unable to retrieve cilium status: {why or f'exit {result.exit_code}'}"
        ]
    try:
        response = json.loads(result.stdout)
    except ValueError:
        return [f"pod {name}: cilium-dbg status -o json printed no JSON"]
    return [f"pod {name}: {e}" for e in agent_errors(response)]


def _query_agents(client: StatusClient, namespace: str, comp: Component) -> None:
    """Add each running agent's own errors to the agent component (agents on kwok nodes
    have no process to ask and are counted in ``agents_not_queried``)."""
    from concurrent.futures import ThreadPoolExecutor

    if not hasattr(client, "exec") or comp.state == "disabled":
        return
    pods = client.list("v1", "Pod", namespace, label_selector="k8s-app=cilium")
    nodes = {n["metadata"]["name"]: n for n in client.list("v1", "Node")}
    running = [
        p
        for p in pods
        if (p.get("status") or {}).get("phase") == "Running"
        and not _is_kwok(nodes.get((p.get("spec") or {}).get("nodeName", "")))
    ]
    comp.agents_not_queried = sum(
        1 for p in pods if _is_kwok(nodes.get((p.get("spec") or {}).get("nodeName", "")))
    )
    if not running:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(running))) as pool:
        found = list(pool.map(lambda p: _agent_status(client, namespace, p), running))
    comp.errors += [e for errors in found for e in errors]
    if comp.errors:
        comp.state = "error"


def collect(client: StatusClient, namespace: str, release: str) -> CiliumStatus:
    """Read the cluster once and compute the status."""
    components = [_component(client, namespace, spec) for spec in COMPONENTS]
    _query_agents(client, namespace, components[0])
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
