"""``cilium config node rollout``: restart only the agents whose configuration changed.

Affected nodes are those the plan marks as restart-pending (optionally narrowed by a label
selector). Their agent pods are deleted in batches of ``maxUnavailable`` (the DaemonSet's,
or the flag's) by :func:`ciliumctl.config.config.restart_agents`, which waits for readiness
after each batch and stops at the first failing one. Every agent that came back ready is
recorded with the fingerprint of the configuration it started with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ciliumctl.config.config import AGENT_SELECTOR, restart_agents
from ciliumctl.errors import CiliumctlError, UsageError
from ciliumctl.nodeconfig import state
from ciliumctl.nodeconfig.cluster import NodeConfigClient, load, node_info
from ciliumctl.nodeconfig.plan import build_plan
from ciliumctl.nodeconfig.selectors import compile_selector

Progress = Callable[[str], None]


@dataclass
class RolloutResult:
    """The nodes whose agents were restarted (or would be, for a dry run)."""

    nodes: list[str]
    up_to_date: list[str] = field(default_factory=list)


def _ready(pod: dict[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def record_restarted(
    client: NodeConfigClient,
    namespace: str,
    fingerprints: dict[str, str],
    old_uids: set[str],
) -> list[str]:
    """Record the new, ready agent pods of ``fingerprints``' nodes; returns those nodes."""
    records: dict[str, dict[str, str]] = {}
    for pod in client.list("v1", "Pod", namespace, label_selector=AGENT_SELECTOR):
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        uid = str(pod["metadata"].get("uid", ""))
        if node in fingerprints and uid not in old_uids and _ready(pod):
            records[node] = {"pod": uid, "fingerprint": fingerprints[node]}
    state.record_applied(client, namespace, records)
    return sorted(records)


def restart_nodes(
    client: NodeConfigClient,
    namespace: str,
    fingerprints: dict[str, str],
    *,
    batch: int | None,
    timeout: float,
    progress: Progress,
) -> int:
    """Restart the agents of ``fingerprints``' nodes in batches and record those that are up."""
    old = {
        str(p["metadata"].get("uid", ""))
        for p in client.list("v1", "Pod", namespace, label_selector=AGENT_SELECTOR)
    }
    try:
        count = restart_agents(
            client,
            namespace,
            timeout=timeout,
            batch=batch,
            progress=progress,
            nodes=set(fingerprints),
            hint="fix the node's configuration (`cilium config node set|delete`, "
            "`cilium config node effective NODE`) and run the rollout again; agents not "
            "restarted keep running their old configuration",
        )
    finally:
        record_restarted(client, namespace, fingerprints, old)
    return count


def rollout(
    client: NodeConfigClient,
    namespace: str,
    *,
    selector: dict[str, Any] | None = None,
    max_unavailable: int | None = None,
    timeout: float = 300.0,
    dry_run: bool = False,
    progress: Progress = lambda _: None,
) -> RolloutResult:
    """Restart the agents with a pending configuration change, batch by batch."""
    if max_unavailable is not None and max_unavailable < 1:
        raise UsageError(f"--max-unavailable {max_unavailable} must be at least 1")
    compiled = compile_selector(selector, "--selector") if selector is not None else None
    snap = load(client, namespace)
    if snap.settings.daemonset is None:
        raise CiliumctlError(
            f"DaemonSet cilium not found in {namespace}",
            "is Cilium installed? check -n/--namespace",
        )
    plan = build_plan(client, namespace, snap)
    chosen = [
        n
        for n in plan.pending
        if compiled is None or compiled.matches(node_info(snap.nodes[n]).labels)
    ]
    up_to_date = sorted(set(plan.nodes) - set(chosen))
    if dry_run or not chosen:
        return RolloutResult(chosen, up_to_date)
    fingerprints = {n: plan.nodes[n].fingerprint for n in chosen}
    restart_nodes(
        client,
        namespace,
        fingerprints,
        batch=max_unavailable,
        timeout=timeout,
        progress=progress,
    )
    return RolloutResult(chosen, up_to_date)
