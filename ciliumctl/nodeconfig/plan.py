"""``cilium config node effective|plan``: what each agent will run with, and which need restarts.

A node's agent needs a restart when its pod started before the change that made its
effective configuration what it is now. ciliumctl knows this exactly for pods it restarted
itself (it records the fingerprint of the configuration they started with); for other pods it
compares the pod's creation time with the last write of the inputs that apply to the node:
cilium-config, the CiliumNodeConfigs that select it, CiliumNodeConfigs deleted through
ciliumctl that selected it, and the node's labels.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ciliumctl.errors import CiliumctlError
from ciliumctl.nodeconfig import state
from ciliumctl.nodeconfig.cluster import (
    CONFIGMAP,
    NodeConfigClient,
    Snapshot,
    created,
    last_write,
    load,
    parse_time,
)
from ciliumctl.nodeconfig.engine import KIND_CONFIGMAP, Effective, Engine, differences
from ciliumctl.nodeconfig.selectors import SelectorError, compile_selector


def check_node(snap: Snapshot, node: str) -> None:
    """Raise a clear error for a node the cluster does not have."""
    if node in snap.nodes:
        return
    near = difflib.get_close_matches(node, sorted(snap.nodes), n=1)
    hint = f"did you mean {near[0]}?" if near else "`kubectl get nodes` lists the nodes"
    raise CiliumctlError(f"node {node!r} not found", hint)


def effective(client: NodeConfigClient, namespace: str, node: str) -> tuple[Effective, Snapshot]:
    """The effective agent configuration of one node, with the snapshot it came from."""
    snap = load(client, namespace, with_pods=False)
    check_node(snap, node)
    engine = Engine(snap.inputs)
    infos = {i.name: i for i in snap.node_infos()}
    result = engine.resolve(infos[node], infos)
    return result, snap


@dataclass
class NodeStatus:
    """One node in the plan."""

    node: str
    fingerprint: str
    differences: dict[str, dict[str, Any]]
    pod: str | None
    pending: bool
    reason: str


@dataclass
class Group:
    """Nodes that share one effective configuration."""

    fingerprint: str
    nodes: list[str]
    differences: dict[str, dict[str, Any]]
    pending: list[str]

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "fingerprint": self.fingerprint,
            "nodes": self.nodes,
            "differences": self.differences,
            "restartPending": self.pending,
        }


@dataclass
class Plan:
    """Every node's effective configuration, grouped, with pending restarts."""

    groups: list[Group]
    nodes: dict[str, NodeStatus]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[str]:
        """Nodes whose agent pod predates their effective configuration."""
        return sorted(n for n, s in self.nodes.items() if s.pending)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "groups": [g.as_dict() for g in self.groups],
            "restartPending": self.pending,
            "nodes": {
                n: {"pod": s.pod, "restartPending": s.pending, "reason": s.reason}
                for n, s in sorted(self.nodes.items())
            },
            "warnings": self.warnings,
            "notes": self.notes,
        }


def _configmap_times(snap: Snapshot, client: NodeConfigClient) -> list[tuple[datetime, str]]:
    out = []
    for source in snap.settings.sources:
        if source.kind != KIND_CONFIGMAP:
            continue
        if (source.namespace, source.name) == (snap.namespace, CONFIGMAP) and snap.configmap:
            cm: dict[str, Any] | None = snap.configmap
        else:
            cm = client.get_or_none("v1", "ConfigMap", source.name, source.namespace)
        if cm is not None:
            out.append((last_write(cm), f"ConfigMap {source.namespace}/{source.name}"))
    return out


def build_plan(client: NodeConfigClient, namespace: str, snap: Snapshot | None = None) -> Plan:
    """Compute every node's effective configuration and whether its agent must restart."""
    snap = snap or load(client, namespace)
    engine = Engine(snap.inputs)
    infos = {i.name: i for i in snap.node_infos()}
    cm_data = dict((snap.configmap or {}).get("data") or {})
    records = state.applied(client, namespace)
    removed = state.deleted(client, namespace)
    cm_times = _configmap_times(snap, client)
    cnc_times = {
        str(o["metadata"]["name"]): last_write(o)
        for o in snap.cncs
        if (o.get("metadata") or {}).get("namespace") == namespace
    }
    removed_selectors = []
    for name, rec in removed.items():
        stamp = parse_time(str(rec.get("time", "")))
        try:
            selector = compile_selector(rec.get("selector"))
        except SelectorError:
            continue
        if stamp is not None:
            removed_selectors.append((name, selector, stamp))
    statuses: dict[str, NodeStatus] = {}
    warnings: list[str] = []
    diffs: dict[str, dict[str, dict[str, Any]]] = {}
    for name, info in infos.items():
        eff = engine.resolve(info, infos)
        for warning in eff.warnings:
            if warning not in warnings:
                warnings.append(warning)
        fp = eff.fingerprint()
        if fp not in diffs:
            diffs[fp] = differences(eff, cm_data)
        pod = snap.pods.get(name)
        if pod is None:
            statuses[name] = NodeStatus(name, fp, diffs[fp], None, False, "no agent pod")
            continue
        uid = str(pod["metadata"].get("uid", ""))
        record = records.get(name)
        if record and record.get("pod") == uid:
            pending = record.get("fingerprint") != fp
            reason = (
                "configuration changed since ciliumctl restarted this agent"
                if pending
                else "up to date (restarted by ciliumctl)"
            )
        else:
            changes = list(cm_times)
            changes += [
                (cnc_times[c], f"CiliumNodeConfig {c}")
                for c in engine.matching_names(info.labels)
                if c in cnc_times
            ]
            changes += [
                (t, f"deleted CiliumNodeConfig {c}")
                for c, sel, t in removed_selectors
                if sel.matches(info.labels)
            ]
            changes.append(
                (last_write(snap.nodes[name], labels_only=True), f"labels of node {name}")
            )
            started = created(pod)
            newer = sorted((t, what) for t, what in changes if t > started)
            pending = bool(newer)
            reason = f"agent pod started before {newer[-1][1]} changed" if newer else "up to date"
        statuses[name] = NodeStatus(name, fp, diffs[fp], pod["metadata"]["name"], pending, reason)
    groups: dict[str, Group] = {}
    for name in sorted(statuses):
        status = statuses[name]
        group = groups.setdefault(
            status.fingerprint, Group(status.fingerprint, [], status.differences, [])
        )
        group.nodes.append(name)
        if status.pending:
            group.pending.append(name)
    ordered = sorted(groups.values(), key=lambda g: (len(g.differences) > 0, g.nodes[0]))
    return Plan(ordered, statuses, warnings, list(snap.notes))
