"""Reading what build-config reads from the cluster, and the cluster calls per-node config needs.

Everything the engine needs is loaded in a handful of list calls (the agent DaemonSet, the
ConfigMaps its sources name, CiliumNodeConfigs, Nodes, agent Pods) into plain data, so that
every command computes with :mod:`ciliumctl.nodeconfig.engine` and never per node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ciliumctl.errors import CiliumctlError
from ciliumctl.nodeconfig.engine import (
    KIND_CONFIGMAP,
    V2,
    V2ALPHA1,
    ConfigSource,
    Inputs,
    NodeInfo,
    default_sources,
    parse_sources,
)

Obj = dict[str, Any]
CRD_NAME = "ciliumnodeconfigs.cilium.io"
KIND = "CiliumNodeConfig"
AGENT_DS = "cilium"
AGENT_SELECTOR = "k8s-app=cilium"
CONFIGMAP = "cilium-config"


class NodeConfigClient(Protocol):
    """The cluster calls the per-node configuration commands make."""

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None: ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[Obj]: ...

    def apply(self, obj: Obj, *, force: bool = False) -> Obj: ...

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
    ) -> Obj: ...

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


@dataclass
class AgentSettings:
    """How the agent DaemonSet runs build-config."""

    sources: list[ConfigSource]
    allow_keys: list[str]
    deny_keys: list[str]
    build_config: bool = True
    daemonset: Obj | None = None


def served_versions(client: NodeConfigClient) -> list[str]:
    """The CiliumNodeConfig versions the API server serves (empty when the CRD is missing)."""
    crd = client.get_or_none("apiextensions.k8s.io/v1", "CustomResourceDefinition", CRD_NAME)
    if crd is None:
        return []
    return [
        f"cilium.io/{v['name']}"
        for v in (crd.get("spec") or {}).get("versions") or []
        if v.get("served")
    ]


def require_crd(client: NodeConfigClient) -> None:
    """Raise a clear error when CiliumNodeConfig cilium.io/v2 is not served."""
    versions = served_versions(client)
    if V2 not in versions:
        found = f" (only {', '.join(versions)} is served)" if versions else ""
        raise CiliumctlError(
            f"the CiliumNodeConfig CRD ({CRD_NAME}, cilium.io/v2) is not installed{found}",
            "install or upgrade Cilium (1.16 or newer), or apply "
            "charts/cilium/crds/ciliumnodeconfigs.yaml",
        )


def _flag_values(args: list[str], flag: str) -> list[str]:
    out: list[str] = []
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            out.append(arg[len(flag) + 1 :])
        elif arg == flag and index + 1 < len(args):
            out.append(args[index + 1])
    return out


def agent_settings(daemonset: Obj | None, namespace: str) -> AgentSettings:
    """Sources and override filters from the DaemonSet's build-config init container."""
    if daemonset is None:
        return AgentSettings(default_sources(namespace), [], [], False, None)
    spec = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in spec.get("initContainers") or []:
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if "build-config" not in argv:
            continue
        sources = _flag_values(argv, "--source")
        allow = [k for v in _flag_values(argv, "--allow-config-keys") for k in v.split(",") if k]
        deny = [k for v in _flag_values(argv, "--deny-config-keys") for k in v.split(",") if k]
        parsed = parse_sources(sources, namespace) if sources else default_sources(namespace)
        return AgentSettings(parsed, allow, deny, True, daemonset)
    # No build-config step: the agent reads cilium-config alone.
    return AgentSettings(
        [ConfigSource(KIND_CONFIGMAP, namespace, CONFIGMAP)], [], [], False, daemonset
    )


def list_cncs(client: NodeConfigClient, namespace: str | None = None) -> list[Obj]:
    """CiliumNodeConfigs of every served version, each object once (v2 preferred)."""
    versions = served_versions(client)
    out: list[Obj] = []
    seen: set[str] = set()
    for version in (V2, V2ALPHA1):
        if version not in versions:
            continue
        for obj in client.list(version, KIND, namespace):
            uid = str((obj.get("metadata") or {}).get("uid", ""))
            if uid and uid in seen:
                continue
            seen.add(uid)
            obj.setdefault("apiVersion", version)
            out.append(obj)
    return out


def node_info(node: Obj) -> NodeInfo:
    """The labels and annotations of a Node object."""
    meta = node.get("metadata") or {}
    return NodeInfo(
        str(meta.get("name", "")),
        dict(meta.get("labels") or {}),
        dict(meta.get("annotations") or {}),
    )


@dataclass
class Snapshot:
    """The cluster state per-node configuration is computed from."""

    namespace: str
    settings: AgentSettings
    inputs: Inputs
    nodes: dict[str, Obj]
    pods: dict[str, Obj]
    cncs: list[Obj]
    configmap: Obj | None
    crd_versions: list[str]
    notes: list[str] = field(default_factory=list)

    def node_infos(self) -> list[NodeInfo]:
        """Every node as the engine sees it, by name."""
        return [node_info(self.nodes[n]) for n in sorted(self.nodes)]


def read_configmaps(
    client: NodeConfigClient, sources: list[ConfigSource]
) -> tuple[dict[tuple[str, str], dict[str, str]], dict[tuple[str, str], Obj]]:
    """The data of the ConfigMaps the sources name (those that exist), and the objects."""
    data: dict[tuple[str, str], dict[str, str]] = {}
    objects: dict[tuple[str, str], Obj] = {}
    for source in sources:
        if source.kind != KIND_CONFIGMAP:
            continue
        cm = client.get_or_none("v1", "ConfigMap", source.name, source.namespace)
        if cm is not None:
            key = (source.namespace, source.name)
            objects[key] = cm
            data[key] = {str(k): str(v) for k, v in (cm.get("data") or {}).items()}
    return data, objects


def load(client: NodeConfigClient, namespace: str, *, with_pods: bool = True) -> Snapshot:
    """Read the agent DaemonSet, ConfigMaps, CNCs, nodes and (optionally) agent pods."""
    ds = client.get_or_none("apps/v1", "DaemonSet", AGENT_DS, namespace)
    settings = agent_settings(ds, namespace)
    notes: list[str] = []
    if ds is None:
        notes.append(
            f"DaemonSet {AGENT_DS} not found in {namespace}: assuming the default config sources"
        )
    configmaps, found = read_configmaps(client, settings.sources)
    main_cm = found.get((namespace, CONFIGMAP))
    if main_cm is None:
        main_cm = client.get_or_none("v1", "ConfigMap", CONFIGMAP, namespace)
    if main_cm is None:
        raise CiliumctlError(
            f"ConfigMap {CONFIGMAP} not found in namespace {namespace}",
            "is Cilium installed? check -n/--namespace",
        )
    versions = served_versions(client)
    if not versions:
        notes.append("the CiliumNodeConfig CRD is not installed: only cilium-config applies")
    cncs = list_cncs(client) if versions else []
    nodes = {n["metadata"]["name"]: n for n in client.list("v1", "Node")}
    pods: dict[str, Obj] = {}
    if with_pods:
        for pod in client.list("v1", "Pod", namespace, label_selector=AGENT_SELECTOR):
            node = (pod.get("spec") or {}).get("nodeName")
            if not node or (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            current = pods.get(node)
            if current is None or created(pod) > created(current):
                pods[node] = pod
    inputs = Inputs(
        namespace=namespace,
        configmaps=configmaps,
        cncs=cncs,
        sources=settings.sources,
        allow_keys=settings.allow_keys,
        deny_keys=settings.deny_keys,
    )
    return Snapshot(namespace, settings, inputs, nodes, pods, cncs, main_cm, versions, notes)


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp from the API server, or None."""
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def created(obj: Obj) -> datetime:
    """The creationTimestamp of an object (epoch when unknown)."""
    stamp = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return stamp or datetime.fromtimestamp(0).astimezone()


def last_write(obj: Obj, *, labels_only: bool = False) -> datetime:
    """When an object's spec/data (or, with ``labels_only``, its labels) last changed.

    Read from managedFields (status subresource writes are ignored); the creation time when
    there is nothing newer.
    """
    newest = created(obj)
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("subresource"):
            continue
        fields = entry.get("fieldsV1") or {}
        if labels_only and "f:labels" not in (fields.get("f:metadata") or {}):
            continue
        if not labels_only and not (set(fields) - {"f:metadata", "f:status"}):
            continue
        stamp = parse_time(entry.get("time"))
        if stamp and stamp > newest:
            newest = stamp
    return newest
