"""What a sysdump collects: node selection and the list of tasks, as plain data.

Planning is a pure function of an :class:`Inventory` (nodes, the Cilium components' pods,
the cluster's CRDs) and the :class:`Options`, so it is unit-tested without a cluster; the
collector (:mod:`ciliumctl.sysdump.collect`) runs the tasks. File names follow cilium-cli
(``k8s-nodes-<ts>.yaml``, ``logs-<pod>-<container>-<ts>.log``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ciliumctl.sysdump.archive import safe_component

AGENT_CONTAINER = "cilium-agent"
DEFAULT_WORKERS = 20
DEFAULT_LOGS_LIMIT_BYTES = 1 << 30
DEFAULT_LOGS_SINCE = 8760 * 3600.0  # one year, as cilium-cli
LARGE_CLUSTER_NODES = 20
LARGE_CLUSTER_WAIT = 5.0
BUGTOOL_COMMAND = ["cilium-bugtool", "--archiveType=gz", "--exclude-object-files"]

#: Component -> label selector of its pods (as cilium-cli's defaults).
COMPONENT_SELECTORS = {
    "cilium": "k8s-app=cilium",
    "cilium-operator": "io.cilium/app=operator",
    "cilium-envoy": "k8s-app=cilium-envoy",
    "hubble-relay": "k8s-app=hubble-relay",
    "hubble-ui": "k8s-app=hubble-ui",
    "clustermesh-apiserver": "k8s-app=clustermesh-apiserver",
}
#: Components whose pods are node-local (filtered by --node-list).
NODE_LOCAL = frozenset({"cilium", "cilium-envoy"})

#: ``cilium-dbg`` commands run in every selected agent: (file stem, argv, quick).
AGENT_COMMANDS: tuple[tuple[str, list[str], bool], ...] = (
    ("cilium-dbg-status-verbose", ["cilium-dbg", "status", "--verbose"], True),
    ("cilium-dbg-endpoint-list", ["cilium-dbg", "endpoint", "list", "-o", "json"], False),
    ("cilium-dbg-policy-get", ["cilium-dbg", "policy", "get"], False),
    ("cilium-dbg-service-list", ["cilium-dbg", "service", "list"], False),
    ("cilium-dbg-bpf-endpoint-list", ["cilium-dbg", "bpf", "endpoint", "list"], False),
    ("cilium-dbg-bpf-ipcache-list", ["cilium-dbg", "bpf", "ipcache", "list"], False),
    ("cilium-dbg-bpf-lb-list", ["cilium-dbg", "bpf", "lb", "list"], False),
    ("cilium-dbg-bpf-ct-list-global", ["cilium-dbg", "bpf", "ct", "list", "global"], False),
    ("cilium-dbg-bpf-nat-list", ["cilium-dbg", "bpf", "nat", "list"], False),
    ("cilium-dbg-bpf-tunnel-list", ["cilium-dbg", "bpf", "tunnel", "list"], False),
    ("cilium-dbg-bpf-metrics-list", ["cilium-dbg", "bpf", "metrics", "list"], False),
    ("cilium-dbg-debuginfo", ["cilium-dbg", "debuginfo"], False),
)

#: Cluster-wide Kubernetes lists: (file name, apiVersion, kind).
K8S_LISTS: tuple[tuple[str, str, str], ...] = (
    ("k8s-nodes-<ts>.yaml", "v1", "Node"),
    ("k8s-namespaces-<ts>.yaml", "v1", "Namespace"),
    ("k8s-events-<ts>.yaml", "v1", "Event"),
    ("k8s-pods-<ts>.yaml", "v1", "Pod"),
    ("k8s-services-<ts>.yaml", "v1", "Service"),
    ("k8s-endpoints-<ts>.yaml", "v1", "Endpoints"),
    ("k8s-endpointslices-<ts>.yaml", "discovery.k8s.io/v1", "EndpointSlice"),
    ("k8s-networkpolicies-<ts>.yaml", "networking.k8s.io/v1", "NetworkPolicy"),
    ("k8s-leases-<ts>.yaml", "coordination.k8s.io/v1", "Lease"),
    (
        "k8s-customresourcedefinitions-<ts>.yaml",
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
    ),
)

#: Objects of the Cilium components in the Cilium namespace: (file, apiVersion, kind, name).
COMPONENT_OBJECTS: tuple[tuple[str, str, str, str], ...] = (
    ("cilium-daemonset-<ts>.yaml", "apps/v1", "DaemonSet", "cilium"),
    ("cilium-envoy-daemonset-<ts>.yaml", "apps/v1", "DaemonSet", "cilium-envoy"),
    ("cilium-operator-deployment-<ts>.yaml", "apps/v1", "Deployment", "cilium-operator"),
    ("hubble-relay-deployment-<ts>.yaml", "apps/v1", "Deployment", "hubble-relay"),
    ("hubble-ui-deployment-<ts>.yaml", "apps/v1", "Deployment", "hubble-ui"),
    (
        "clustermesh-apiserver-deployment-<ts>.yaml",
        "apps/v1",
        "Deployment",
        "clustermesh-apiserver",
    ),
    ("cilium-configmap-<ts>.yaml", "v1", "ConfigMap", "cilium-config"),
    ("cilium-envoy-configmap-<ts>.yaml", "v1", "ConfigMap", "cilium-envoy-config"),
    ("hubble-relay-configmap-<ts>.yaml", "v1", "ConfigMap", "hubble-relay-config"),
)


@dataclass
class Options:
    """The sysdump's settings; defaults are cilium-cli's."""

    namespace: str = "kube-system"
    release: str = "cilium"
    node_list: str = ""
    logs_since: float = DEFAULT_LOGS_SINCE
    logs_limit_bytes: int = DEFAULT_LOGS_LIMIT_BYTES
    worker_count: int = DEFAULT_WORKERS
    quick: bool = False
    output_filename: str = "cilium-sysdump-<ts>"
    redact: bool = True
    large_cluster_nodes: int = LARGE_CLUSTER_NODES
    large_cluster_wait: float = LARGE_CLUSTER_WAIT
    exec_timeout: float = 60.0
    bugtool_timeout: float = 300.0

    def limiting(self) -> bool:
        """True when a flag limits the sysdump's size (so the large-cluster guard is off)."""
        return bool(
            self.node_list.strip()
            or self.logs_since != DEFAULT_LOGS_SINCE
            or self.logs_limit_bytes != DEFAULT_LOGS_LIMIT_BYTES
            or self.quick
        )


@dataclass(frozen=True)
class PodRef:
    """A pod the sysdump reads logs from or runs commands in."""

    namespace: str
    name: str
    node: str
    component: str
    containers: tuple[str, ...]
    #: Init containers that did not simply complete (failed, restarting, still running).
    init_containers: tuple[str, ...] = ()
    ready: bool = True
    #: Containers that restarted (they have a previous instance with logs).
    restarted: frozenset[str] = frozenset()

    @classmethod
    def of(cls, pod: dict[str, Any], component: str) -> PodRef:
        """From a Pod object."""
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        status = pod.get("status") or {}
        conditions = status.get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        return cls(
            str(meta.get("namespace", "")),
            str(meta.get("name", "")),
            str(spec.get("nodeName") or ""),
            component,
            tuple(str(c.get("name")) for c in spec.get("containers") or []),
            tuple(
                str(c.get("name"))
                for c in spec.get("initContainers") or []
                if not _completed(status.get("initContainerStatuses") or [], str(c.get("name")))
            ),
            ready,
            frozenset(
                str(st.get("name"))
                for st in (status.get("containerStatuses") or [])
                + (status.get("initContainerStatuses") or [])
                if int(st.get("restartCount") or 0) > 0
                or "terminated" in (st.get("lastState") or {})
            ),
        )


def _completed(statuses: list[dict[str, Any]], name: str) -> bool:
    """An init container that ran once and succeeded: its log is not worth the bytes."""
    for st in statuses:
        if st.get("name") == name:
            done = (st.get("state") or {}).get("terminated") or {}
            return done.get("exitCode") == 0 and not st.get("restartCount")
    return False


@dataclass
class Inventory:
    """What the collector found before planning."""

    nodes: list[dict[str, Any]]
    pods: dict[str, list[PodRef]] = field(default_factory=dict)
    crds: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class TaskSpec:
    """One unit of work. ``action`` selects the collector's handler; ``args`` its inputs."""

    name: str
    action: str
    quick: bool
    args: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    #: Lower runs first: long tasks (bugtool, logs) start early to shorten the total time.
    priority: int = 50
    pod: str | None = None
    #: How many results the task reports (one per command of a batch).
    weight: int = 1


@dataclass(frozen=True)
class NodeSelection:
    """The nodes whose pods give logs and command output."""

    names: list[str]
    unmatched: list[str]


def node_addresses(node: dict[str, Any]) -> set[str]:
    """Every address of a node (InternalIP, ExternalIP, Hostname...)."""
    return {
        str(a.get("address"))
        for a in (node.get("status") or {}).get("addresses") or []
        if a.get("address")
    }


def select_nodes(nodes: list[dict[str, Any]], node_list: str) -> NodeSelection:
    """Nodes named by ``--node-list`` (comma-separated names or IPs); all when empty."""
    wanted = [w.strip() for w in node_list.split(",") if w.strip()]
    names = [str(n["metadata"]["name"]) for n in nodes]
    if not wanted:
        return NodeSelection(names, [])
    chosen: list[str] = []
    matched: set[str] = set()
    for node in nodes:
        keys = {str(node["metadata"]["name"])} | node_addresses(node)
        hit = keys.intersection(wanted)
        if hit:
            chosen.append(str(node["metadata"]["name"]))
            matched |= hit
    return NodeSelection(chosen, [w for w in wanted if w not in matched])


def filter_pods(pods: list[PodRef], nodes: list[str]) -> list[PodRef]:
    """Pods scheduled on one of ``nodes``."""
    keep = set(nodes)
    return [p for p in pods if p.node in keep]


def large_cluster(node_count: int, options: Options) -> bool:
    """The guard: many nodes and no flag limiting the size."""
    return node_count > options.large_cluster_nodes and not options.limiting()


def plan(inventory: Inventory, options: Options) -> list[TaskSpec]:
    """Every task of the sysdump, ``--quick`` and ``--node-list`` applied, long ones first."""
    ns = options.namespace
    tasks: list[TaskSpec] = [
        TaskSpec("Kubernetes version", "version", True, {"file": "k8s-version-<ts>.txt"}),
        TaskSpec("Cilium health (status)", "health", True, {"file": "cilium-status-<ts>.json"}),
        TaskSpec("Kubernetes pods summary", "pods-summary", True, {"file": "k8s-pods-<ts>.txt"}),
        TaskSpec(
            "Helm release metadata and values",
            "helm",
            True,
            {
                "metadata": "cilium-helm-metadata-<ts>.yaml",
                "values": "cilium-helm-values-<ts>.yaml",
            },
        ),
        TaskSpec(
            f"Secrets in {ns} (names and keys only)",
            "secrets",
            True,
            {"file": "k8s-secrets-<ts>.yaml", "namespace": ns},
        ),
    ]
    for file, api_version, kind in K8S_LISTS:
        tasks.append(
            TaskSpec(
                f"Kubernetes {kind} list",
                "list",
                True,
                {"file": file, "api_version": api_version, "kind": kind, "namespace": None},
            )
        )
    for file, api_version, kind, name in COMPONENT_OBJECTS:
        tasks.append(
            TaskSpec(
                f"{kind} {ns}/{name}",
                "get",
                True,
                {"file": file, "api_version": api_version, "kind": kind, "name": name, "ns": ns},
            )
        )
    for crd in cilium_resources(inventory.crds):
        tasks.append(
            TaskSpec(
                f"Cilium {crd['kind']} list",
                "list",
                True,
                {
                    "file": f"{crd['plural']}-<ts>.yaml",
                    "api_version": crd["api_version"],
                    "kind": crd["kind"],
                    "namespace": None,
                },
            )
        )
    selection = select_nodes(inventory.nodes, options.node_list)
    agents = filter_pods(inventory.pods.get("cilium", []), selection.names)
    if not options.quick:
        # Unready agents give their logs whatever the node filter (they are why one looks).
        log_pods: dict[tuple[str, str], PodRef] = {}
        for component, pods in inventory.pods.items():
            chosen = filter_pods(pods, selection.names) if component in NODE_LOCAL else pods
            if component == "cilium":
                chosen = chosen + [p for p in pods if not p.ready and p not in chosen]
            for pod in chosen:
                log_pods[(pod.namespace, pod.name)] = pod
        for pod in log_pods.values():
            for container in pod.containers + pod.init_containers:
                # A previous instance exists only for restarted containers (as cilium-cli).
                for previous in (False, True) if container in pod.restarted else (False,):
                    suffix = "-prev" if previous else ""
                    tasks.append(
                        TaskSpec(
                            f"logs {pod.name}/{container}" + (" (previous)" if previous else ""),
                            "logs",
                            False,
                            {
                                "file": f"logs-{safe_component(pod.name)}-"
                                f"{safe_component(container)}-<ts>{suffix}.log",
                                "namespace": pod.namespace,
                                "pod": pod.name,
                                "container": container,
                                "previous": previous,
                            },
                            priority=20 if container == AGENT_CONTAINER else 30,
                            pod=pod.name,
                        )
                    )
    for agent in agents:
        base = {"namespace": agent.namespace, "pod": agent.name, "container": AGENT_CONTAINER}
        commands = []
        for stem, argv, quick in AGENT_COMMANDS:
            if options.quick and not quick:
                continue
            ext = ".json" if "-o" in argv else ".md" if stem.endswith("debuginfo") else ".txt"
            commands.append(
                {
                    "name": f"{' '.join(argv)} in {agent.name}",
                    "argv": argv,
                    "file": f"{stem}-{safe_component(agent.name)}-<ts>{ext}",
                }
            )
        tasks.append(
            TaskSpec(
                f"cilium-dbg commands in {agent.name}",
                "agent-commands",
                True,
                {**base, "commands": commands},
                priority=40,
                pod=agent.name,
                weight=len(commands),
            )
        )
        if not options.quick:
            tasks.append(
                TaskSpec(
                    f"cilium-bugtool in {agent.name}",
                    "bugtool",
                    False,
                    {**base, "dir": f"cilium-bugtool-{safe_component(agent.name)}-<ts>"},
                    priority=10,
                    pod=agent.name,
                )
            )
    tasks = [t for t in tasks if t.quick or not options.quick]
    return sorted(tasks, key=lambda t: t.priority)


def cilium_resources(crds: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Every kind of the ``cilium.io`` group, at its storage (else first served) version."""
    out = []
    for crd in crds:
        spec = crd.get("spec") or {}
        if spec.get("group") != "cilium.io":
            continue
        versions = [v for v in spec.get("versions") or [] if v.get("served")]
        if not versions:
            continue
        version = next((v for v in versions if v.get("storage")), versions[0])
        names = spec.get("names") or {}
        out.append(
            {
                "api_version": f"cilium.io/{version['name']}",
                "kind": str(names.get("kind")),
                "plural": str(names.get("plural")),
            }
        )
    return sorted(out, key=lambda r: r["plural"])
