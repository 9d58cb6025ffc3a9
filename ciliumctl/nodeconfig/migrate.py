"""``cilium config node migrate-kpr``: the per-node KubeProxyReplacement rollout, resumable.

The workflow of the Cilium 1.18 "Per-node configuration" guide:

1. check that the agents reach the API server without kube-proxy (``k8sServiceHost`` and
   ``k8sServicePort`` set, i.e. ``KUBERNETES_SERVICE_HOST/PORT`` in the agent container);
2. create the CiliumNodeConfig ``kube-proxy-replacement`` that turns kube-proxy replacement on
   for nodes labelled ``io.cilium.migration/kube-proxy-replacement=true``;
3. keep kube-proxy off labelled nodes (a node affinity on its DaemonSet);
4. node by node: label it, optionally cordon and drain it, restart its agent, verify its
   effective configuration, uncordon it;
5. ``--finish``: make kube-proxy replacement the cilium-config default, delete the kube-proxy
   DaemonSet, remove the labels (and the now unneeded CiliumNodeConfig).

Every step checks the cluster before acting, so running it again converges, and the phase,
the node in progress and the migrated nodes are recorded in the ConfigMap
``cilium-kpr-migration`` in the Cilium namespace so an interrupted run resumes where it
stopped.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ciliumctl.errors import CiliumctlError, UsageError
from ciliumctl.nodeconfig.cluster import (
    AGENT_DS,
    CONFIGMAP,
    KIND,
    NodeConfigClient,
    load,
    require_crd,
)
from ciliumctl.nodeconfig.engine import V2, Engine
from ciliumctl.nodeconfig.rollout import restart_nodes

LABEL = "io.cilium.migration/kube-proxy-replacement"
CNC_NAME = "kube-proxy-replacement"
STATE_CONFIGMAP = "cilium-kpr-migration"
KUBE_PROXY = "kube-proxy"
KUBE_PROXY_NS = "kube-system"
KPR_DEFAULTS = {
    "kube-proxy-replacement": "true",
    "kube-proxy-replacement-healthz-bind-address": "0.0.0.0:10256",
}
Progress = Callable[[str], None]
NOTHING_TO_DO = "the migration is finished; nothing to do"


class MigrationClient(NodeConfigClient, Protocol):
    """The node-config calls plus raw requests (the Eviction subresource for drains)."""

    def request(self, method: str, path: str, *, what: str, body: Any = None) -> Any: ...


@dataclass
class MigrationState:
    """What the cluster records about the migration."""

    phase: str = ""
    current: str = ""
    migrated: list[str] = field(default_factory=list)


@dataclass
class Report:
    """What a run did (or, for a dry run, would do)."""

    steps: list[str]
    migrated: list[str]
    remaining: list[str]
    phase: str


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def read_state(client: NodeConfigClient, namespace: str) -> MigrationState:
    """The recorded migration state (empty when none was started)."""
    cm = client.get_or_none("v1", "ConfigMap", STATE_CONFIGMAP, namespace)
    data = (cm or {}).get("data") or {}
    migrated = [n for n in str(data.get("migrated", "")).split(",") if n]
    return MigrationState(str(data.get("phase", "")), str(data.get("current", "")), migrated)


def _write_state(client: NodeConfigClient, namespace: str, st: MigrationState) -> None:
    client.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": STATE_CONFIGMAP,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "ciliumctl"},
            },
            "data": {
                "phase": st.phase,
                "current": st.current,
                "migrated": ",".join(st.migrated),
                "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        },
        force=True,
    )


def _agent_env(ds: dict[str, Any]) -> dict[str, str]:
    spec = ds.get("spec", {}).get("template", {}).get("spec", {})
    for container in spec.get("containers") or []:
        if container.get("name") == "cilium-agent":
            return {
                str(e.get("name")): str(e.get("value", ""))
                for e in container.get("env") or []
                if "value" in e
            }
    return {}


def _preflight(
    client: NodeConfigClient, namespace: str, st: MigrationState
) -> dict[str, Any] | None:
    ds = client.get_or_none("apps/v1", "DaemonSet", AGENT_DS, namespace)
    if ds is None:
        raise CiliumctlError(
            f"DaemonSet {AGENT_DS} not found in {namespace}",
            "is Cilium installed? check -n/--namespace",
        )
    env = _agent_env(ds)
    if not env.get("KUBERNETES_SERVICE_HOST") or not env.get("KUBERNETES_SERVICE_PORT"):
        raise CiliumctlError(
            "Cilium is installed without k8sServiceHost/k8sServicePort: without kube-proxy "
            "the agents could not reach the API server",
            "cilium upgrade --set k8sServiceHost=API_SERVER_IP --set k8sServicePort=PORT, "
            "then run migrate-kpr again",
        )
    require_crd(client)
    kube_proxy = client.get_or_none("apps/v1", "DaemonSet", KUBE_PROXY, KUBE_PROXY_NS)
    if kube_proxy is None and st.phase not in ("finishing", "finished"):
        cm = client.get_or_none("v1", "ConfigMap", CONFIGMAP, namespace) or {}
        if (cm.get("data") or {}).get("kube-proxy-replacement") == "true":
            raise CiliumctlError(
                "no kube-proxy DaemonSet and cilium-config already enables kube-proxy "
                "replacement: nothing to migrate"
            )
        raise CiliumctlError(
            f"DaemonSet {KUBE_PROXY} not found in {KUBE_PROXY_NS}: nothing to migrate from",
            "set kube-proxy-replacement=true with `cilium config set` instead",
        )
    return kube_proxy


def _cnc() -> dict[str, Any]:
    return {
        "apiVersion": V2,
        "kind": KIND,
        "metadata": {"name": CNC_NAME},
        "spec": {"nodeSelector": {"matchLabels": {LABEL: "true"}}, "defaults": dict(KPR_DEFAULTS)},
    }


def _cnc_ok(client: NodeConfigClient, namespace: str) -> bool:
    obj = client.get_or_none(V2, KIND, CNC_NAME, namespace)
    spec = (obj or {}).get("spec") or {}
    return spec.get("nodeSelector") == _cnc()["spec"]["nodeSelector"] and all(
        (spec.get("defaults") or {}).get(k) == v for k, v in KPR_DEFAULTS.items()
    )


_EXPR = {"key": LABEL, "operator": "NotIn", "values": ["true"]}


def _affinity_terms(ds: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """kube-proxy's node selector terms with our NotIn expression; True when already there."""
    spec = ds.get("spec", {}).get("template", {}).get("spec", {})
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = [dict(t) for t in required.get("nodeSelectorTerms") or []] or [{}]
    present = all(_EXPR in (t.get("matchExpressions") or []) for t in terms)
    for term in terms:
        exprs = list(term.get("matchExpressions") or [])
        if _EXPR not in exprs:
            exprs.append(dict(_EXPR))
        term["matchExpressions"] = exprs
    return terms, present


def _nodes(client: NodeConfigClient) -> dict[str, dict[str, Any]]:
    return {n["metadata"]["name"]: n for n in client.list("v1", "Node")}


def migrate(
    client: MigrationClient,
    namespace: str,
    *,
    drain: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
    timeout: float = 300.0,
    progress: Progress = lambda _: None,
) -> Report:
    """Migrate nodes to kube-proxy replacement one by one (resuming a recorded migration)."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit {limit} must be at least 1")
    st = read_state(client, namespace)
    if st.phase == "finished":
        return Report([NOTHING_TO_DO], st.migrated, [], st.phase)
    if st.phase == "finishing":
        raise CiliumctlError(
            "an interrupted `migrate-kpr --finish` is in progress", "run migrate-kpr --finish again"
        )
    kube_proxy = _preflight(client, namespace, st)
    assert kube_proxy is not None
    nodes = _nodes(client)
    migrated = [n for n in st.migrated if n in nodes]
    remaining = sorted((n for n in nodes if n not in migrated), key=_natural)
    if st.current in remaining:  # the node an interrupted run was working on goes first
        remaining.remove(st.current)
        remaining.insert(0, st.current)
    todo = remaining[:limit] if limit else remaining
    steps: list[str] = []
    cnc_ok = _cnc_ok(client, namespace)
    terms, affinity_ok = _affinity_terms(kube_proxy)
    if not cnc_ok:
        steps.append(
            f"create CiliumNodeConfig {CNC_NAME} (kube-proxy-replacement=true) for nodes "
            f"labelled {LABEL}=true"
        )
    if not affinity_ok:
        steps.append(
            f"patch DaemonSet {KUBE_PROXY_NS}/{KUBE_PROXY} to run only on unmigrated nodes"
        )
    for node in todo:
        steps.append(
            f"migrate {node}: label {LABEL}=true"
            + (", cordon and drain" if drain else "")
            + ", restart its agent, verify kube-proxy-replacement=true"
            + (", uncordon" if drain else "")
        )
    if len(todo) == len(remaining):
        steps.append("then run `cilium config node migrate-kpr --finish`")
    if dry_run:
        return Report(steps, migrated, remaining, st.phase or "not started")

    st.phase = st.phase or "started"
    _write_state(client, namespace, st)
    if not cnc_ok:
        progress(f"creating CiliumNodeConfig {CNC_NAME}")
        obj = _cnc()
        obj["metadata"]["namespace"] = namespace
        client.apply(obj, force=True)
    if not affinity_ok:
        progress(f"patching DaemonSet {KUBE_PROXY}")
        client.patch(
            "apps/v1",
            "DaemonSet",
            KUBE_PROXY,
            {
                "spec": {
                    "template": {
                        "spec": {
                            "affinity": {
                                "nodeAffinity": {
                                    "requiredDuringSchedulingIgnoredDuringExecution": {
                                        "nodeSelectorTerms": terms
                                    }
                                }
                            }
                        }
                    }
                }
            },
            KUBE_PROXY_NS,
        )
    st.phase = "nodes"
    _write_state(client, namespace, st)
    for index, node in enumerate(todo, 1):
        progress(f"migrating {node} ({len(migrated) + 1}/{len(nodes)})")
        st.current = node
        st.migrated = migrated
        _write_state(client, namespace, st)
        _migrate_node(client, namespace, node, drain=drain, timeout=timeout, progress=progress)
        migrated.append(node)
        st.current = ""
        st.migrated = migrated
        if index == len(remaining):
            st.phase = "nodes-migrated"
        _write_state(client, namespace, st)
    left = [n for n in remaining if n not in migrated]
    return Report(steps, migrated, left, st.phase)


def _migrate_node(
    client: MigrationClient,
    namespace: str,
    node: str,
    *,
    drain: bool,
    timeout: float,
    progress: Progress,
) -> None:
    client.patch("v1", "Node", node, {"metadata": {"labels": {LABEL: "true"}}})
    if drain:
        progress(f"{node}: cordon and drain")
        client.patch("v1", "Node", node, {"spec": {"unschedulable": True}})
        _drain(client, node, timeout)
    snap = load(client, namespace, with_pods=False)
    engine = Engine(snap.inputs)
    infos = {i.name: i for i in snap.node_infos()}
    eff = engine.resolve(infos[node], infos)
    setting = eff.values.get("kube-proxy-replacement")
    if setting is None or setting.value != "true":
        found = f"{setting.value!r} from {setting.source}" if setting else "unset"
        raise CiliumctlError(
            f"{node}: the effective kube-proxy-replacement would be {found}, not 'true'; "
            f"stopped before restarting its agent",
            "check `cilium config node effective "
            f"{node}` (allowed/blocked override keys, other CiliumNodeConfigs) and run again",
        )
    progress(f"{node}: restarting its agent")
    restart_nodes(
        client, namespace, {node: eff.fingerprint()}, batch=1, timeout=timeout, progress=progress
    )
    _wait_kube_proxy_gone(client, node, timeout)
    if drain:
        client.patch("v1", "Node", node, {"spec": {"unschedulable": None}})


def _drain(client: MigrationClient, node: str, timeout: float) -> None:
    """Evict the node's pods except DaemonSet and mirror pods (PodDisruptionBudgets apply)."""
    deadline = time.monotonic() + timeout
    while True:
        pods = [
            p
            for p in client.list("v1", "Pod", None)
            if (p.get("spec") or {}).get("nodeName") == node
            and not any(
                o.get("kind") == "DaemonSet" for o in p["metadata"].get("ownerReferences") or []
            )
            and "kubernetes.io/config.mirror" not in (p["metadata"].get("annotations") or {})
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        if not pods:
            return
        for pod in pods:
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            # A PodDisruptionBudget may refuse an eviction for now: retried below.
            with contextlib.suppress(CiliumctlError):
                client.request(
                    "POST",
                    f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/eviction",
                    what=f"evict pod {meta['namespace']}/{meta['name']}",
                    body={
                        "apiVersion": "policy/v1",
                        "kind": "Eviction",
                        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                    },
                )
        if time.monotonic() > deadline:
            raise CiliumctlError(
                f"{node}: {len(pods)} pod(s) not evicted after {timeout:.0f}s",
                "check PodDisruptionBudgets, then run migrate-kpr again (it resumes)",
            )
        time.sleep(1)


def _wait_kube_proxy_gone(client: NodeConfigClient, node: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        left = [
            p
            for p in client.list("v1", "Pod", KUBE_PROXY_NS, label_selector="k8s-app=kube-proxy")
            if (p.get("spec") or {}).get("nodeName") == node
        ]
        if not left:
            return
        if time.monotonic() > deadline:
            raise CiliumctlError(
                f"{node}: kube-proxy pod {left[0]['metadata']['name']} still runs after "
                f"{timeout:.0f}s",
                "check the kube-proxy DaemonSet's node affinity, then run migrate-kpr again",
            )
        time.sleep(1)


def finish(
    client: MigrationClient,
    namespace: str,
    *,
    dry_run: bool = False,
    progress: Progress = lambda _: None,
) -> Report:
    """Make kube-proxy replacement the default, delete kube-proxy and remove the labels."""
    st = read_state(client, namespace)
    if st.phase == "finished":
        return Report([NOTHING_TO_DO], st.migrated, [], st.phase)
    _preflight(client, namespace, st)
    nodes = _nodes(client)
    if st.phase != "finishing":
        unmigrated = sorted(
            (
                n
                for n, obj in nodes.items()
                if (
                    (obj["metadata"].get("labels") or {}).get(LABEL) != "true"
                    or n not in st.migrated
                )
            ),
            key=_natural,
        )
        if unmigrated:
            shown = ", ".join(unmigrated[:5]) + (" ..." if len(unmigrated) > 5 else "")
            raise CiliumctlError(
                f"{len(unmigrated)} node(s) not migrated yet ({shown})",
                "run `cilium config node migrate-kpr` until every node is migrated",
            )
    steps = [
        "set kube-proxy-replacement=true in cilium-config",
        f"delete DaemonSet {KUBE_PROXY_NS}/{KUBE_PROXY}",
        f"remove the {LABEL} label from {len(nodes)} node(s)",
        f"delete CiliumNodeConfig {CNC_NAME}",
    ]
    if dry_run:
        return Report(steps, st.migrated, [], st.phase)
    st.phase = "finishing"
    _write_state(client, namespace, st)
    progress("setting the cilium-config default")
    client.patch("v1", "ConfigMap", CONFIGMAP, {"data": dict(KPR_DEFAULTS)}, namespace)
    progress(f"deleting DaemonSet {KUBE_PROXY}")
    client.delete("apps/v1", "DaemonSet", KUBE_PROXY, KUBE_PROXY_NS)
    for name, obj in sorted(nodes.items()):
        if LABEL in (obj["metadata"].get("labels") or {}):
            client.patch("v1", "Node", name, {"metadata": {"labels": {LABEL: None}}})
    client.delete(V2, KIND, CNC_NAME, namespace)
    snap = load(client, namespace, with_pods=False)
    engine = Engine(snap.inputs)
    infos = {i.name: i for i in snap.node_infos()}
    wrong = sorted(
        n
        for n, info in infos.items()
        if engine.resolve(info, infos).plain().get("kube-proxy-replacement") != "true"
    )
    if wrong:
        raise CiliumctlError(
            f"kube-proxy-replacement is not 'true' on {', '.join(wrong)} after the cleanup",
            "check `cilium config node effective NODE` for a CiliumNodeConfig that turns it off",
        )
    st.phase = "finished"
    _write_state(client, namespace, st)
    return Report(steps, st.migrated, [], st.phase)
