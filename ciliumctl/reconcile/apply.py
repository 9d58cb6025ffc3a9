"""Converge the cluster on the desired state: `cilium reconcile apply`.

Order: CRDs (server-side apply, waited until Established); namespaces, service accounts,
RBAC, ConfigMaps and Secrets; the chart through Helm (install when there is no release,
upgrade otherwise, so `helm history` and `cilium upgrade` keep working); other workloads;
a wait for health with the readiness rules; custom resources (node configs, policies);
prune; the final inventory. Objects whose dry run shows no change are not sent at all, so
their resourceVersion stays. The inventory is written as the union of the old and new
objects before the first change, so an interrupted apply leaves nothing untracked and the
next run converges.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ciliumctl.errors import CiliumctlError
from ciliumctl.helm.protocols import HelmRenderer, HelmWriter
from ciliumctl.reconcile import inventory as inv
from ciliumctl.reconcile.errors import ReconcileError
from ciliumctl.reconcile.objects import STAGES, WORKLOAD_KINDS, Key, group_of
from ciliumctl.reconcile.plan import Change, Plan, PlanClient, compute
from ciliumctl.reconcile.source import DesiredState

Progress = Callable[[str], None]


class ApplyClient(PlanClient, Protocol):
    """The cluster calls apply needs on top of the plan's."""

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

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
    ) -> dict[str, Any]: ...

    def status_of(self, ref: Any) -> Any: ...

    def wait_ready(self, refs: list[Any], *, timeout: float, interval: float = 1.0) -> Any: ...


class HelmInstaller(HelmRenderer, HelmWriter, Protocol):
    """The Helm operations the chart part needs (see :class:`ciliumctl.helm.Helm`)."""


@dataclass
class ApplyResult:
    """What an apply did."""

    plan: Plan
    applied: list[Change] = field(default_factory=list)
    pruned: list[Change] = field(default_factory=list)
    helm_action: str | None = None
    helm_revision: int | None = None
    restarted_agents: int = 0
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "dryRun": self.dry_run,
            "plan": self.plan.as_dict(),
            "applied": [c.as_dict(with_diff=False) for c in self.applied],
            "pruned": [c.as_dict(with_diff=False) for c in self.pruned],
            "helm": {"action": self.helm_action, "revision": self.helm_revision},
            "restartedAgents": self.restarted_agents,
            "notes": self.notes,
        }


def _ref(change: Change) -> Any:
    from ciliumctl.k8s import ObjectRef

    return ObjectRef(
        change.api_version, change.key.kind, change.key.name, change.key.namespace or None
    )


def entries_for(plan: Plan) -> list[inv.Entry]:
    """The inventory entries of everything the plan desires."""
    return [
        inv.Entry(c.api_version, c.key.kind, c.key.namespace, c.key.name, c.via)
        for c in plan.changes
        if c.action != "deleted"
    ]


def apply(
    client: ApplyClient,
    helm: HelmInstaller,
    state: DesiredState,
    chart: Path,
    *,
    prune: bool = True,
    dry_run: bool = False,
    wait: bool = True,
    timeout: float = 300.0,
    restart_on_config_change: bool = False,
    plan: Plan | None = None,
    progress: Progress = lambda _: None,
) -> ApplyResult:
    """Converge the cluster on ``state`` (see the module docstring for the order)."""
    plan = plan or compute(client, helm, state, chart, progress=progress)
    result = ApplyResult(plan, dry_run=dry_run)
    if dry_run:
        return result
    if plan.in_sync and not plan.helm_needed:
        _finish_inventory(client, state, plan)
        return result
    previous = plan.inventory.entries if plan.inventory is not None else []
    desired = entries_for(plan)
    _ensure_namespace(client, state.namespace)
    inv.write(client, state.namespace, state.inventory, [*previous, *desired], complete=False,
              version=state.version)  # fmt: skip
    todo = [c for c in plan.changes if c.via == "ssa" and c.action in ("created", "changed")]
    by_stage = {s: [c for c in todo if c.stage == s] for s in STAGES}
    progress(f"applying: {len(todo)} object(s) by server-side apply")
    _apply_all(client, by_stage["crds"], result)
    if by_stage["crds"]:
        progress("waiting: CRDs established")
        client.wait_ready([_ref(c) for c in by_stage["crds"]], timeout=timeout)
    _apply_all(client, by_stage["base"], result)
    if plan.helm_needed:
        _helm(client, helm, state, chart, plan, result, wait=wait, timeout=timeout,
              progress=progress)  # fmt: skip
    _apply_all(client, by_stage["workloads"], result)
    if wait:
        workloads = [
            _ref(c)
            for c in plan.changes
            if c.action in ("created", "changed")
            and (group_of(c.api_version), c.key.kind) in WORKLOAD_KINDS
        ]
        if workloads:
            progress(f"waiting: {len(workloads)} workload(s) ready")
            client.wait_ready(workloads, timeout=timeout)
    _apply_all(client, by_stage["custom-resources"], result)
    if prune:
        _prune(client, plan, result, progress)
    else:
        kept = [c for c in plan.changes if c.action == "deleted" and c.via == "ssa"]
        desired += [inv.Entry(c.api_version, c.key.kind, c.key.namespace, c.key.name) for c in kept]
        if kept:
            result.notes.append(f"--prune=false: kept {len(kept)} object(s) no longer desired")
    inv.write(client, state.namespace, state.inventory, desired, complete=True,
              version=state.version)  # fmt: skip
    if restart_on_config_change:
        result.restarted_agents = _restart_if_needed(client, state, plan, timeout, progress)
    return result


def _finish_inventory(client: ApplyClient, state: DesiredState, plan: Plan) -> None:
    """An in-sync cluster whose inventory is missing or pending gets a complete one."""
    desired = entries_for(plan)
    stored = plan.inventory
    if stored is None or not stored.complete or sorted(set(stored.entries)) != sorted(set(desired)):
        inv.write(client, state.namespace, state.inventory, desired, complete=True,
                  version=state.version)  # fmt: skip


def _ensure_namespace(client: ApplyClient, namespace: str) -> None:
    if client.get_or_none("v1", "Namespace", namespace) is None:
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})


def _apply_all(client: ApplyClient, changes: list[Change], result: ApplyResult) -> None:
    """Server-side apply (forced: the desired state wins) one stage, in parallel."""
    if not changes:
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [
            (c, pool.submit(client.apply, c.desired, force=True)) for c in changes if c.desired
        ]
        for change, future in futures:
            future.result()
            result.applied.append(change)


def _helm(
    client: ApplyClient,
    helm: HelmInstaller,
    state: DesiredState,
    chart: Path,
    plan: Plan,
    result: ApplyResult,
    *,
    wait: bool,
    timeout: float,
    progress: Progress,
) -> None:
    """Install or upgrade the release with exactly the rendered values; roll back a failed
    upgrade; repair a release an interrupted run left pending."""
    from ciliumctl.install.install import wait_for_cilium

    release = plan.release
    rollback_to: int | None = None
    if release is not None and release.status != "deployed":
        good = release.last_deployed()
        if good is None:
            progress(f"removing the interrupted first install ({release.status})")
            helm.uninstall(state.release, state.namespace, wait=True)
            release = None
        elif release.status.startswith("pending-"):
            progress(f"release is {release.status}; rolling back to revision {good} first")
            helm.rollback(state.release, state.namespace, good)
    if release is not None:
        rollback_to = release.last_deployed() or release.revision
    action = "install" if release is None else "upgrade"
    what = (
        f"cilium reconcile install {state.version}"
        if release is None
        else f"cilium reconcile {release.cilium_version} -> {state.version}"
    )
    progress(f"helm {action}: {what}")
    status = helm.install_or_upgrade(
        state.release,
        state.namespace,
        chart,
        plan.chart_values,
        reset_values=release is not None,
        description=what,
        skip_crds=True,
    )
    result.helm_action = action
    result.helm_revision = int(status.get("version", 0) or 0) or None
    result.applied += [c for c in plan.changes if c.via == "helm" and c.action != "unchanged"]
    if not wait:
        return
    try:
        wait_for_cilium(client, state.namespace, timeout=timeout, progress=progress)
    except CiliumctlError as exc:
        if rollback_to is None:
            raise
        progress(f"the new release is not healthy ({exc.message}); rolling back to {rollback_to}")
        helm.rollback(state.release, state.namespace, rollback_to)
        raise ReconcileError(
            f"Cilium did not become healthy after the Helm upgrade and was rolled back to "
            f"revision {rollback_to}: {exc.message}",
            "fix the desired state (values, version) and reconcile again",
        ) from exc


def _prune(client: ApplyClient, plan: Plan, result: ApplyResult, progress: Progress) -> None:
    """Delete what the previous inventory applied and is no longer desired (checked again
    against the live object right before deleting)."""
    for change in plan.changes:
        if change.action != "deleted" or change.via != "ssa":
            continue
        key = change.key
        live = client.get_or_none(change.api_version, key.kind, key.name, key.namespace or None)
        entry = inv.Entry(change.api_version, key.kind, key.namespace, key.name)
        allowed, reason = inv.prune_decision(entry, live, plan.state.inventory)
        if not allowed:
            result.notes.append(f"kept {key}: {reason}")
            continue
        progress(f"pruning: {key}")
        client.delete(change.api_version, key.kind, key.name, key.namespace or None)
        result.pruned.append(change)


def config_changed(plan: Plan) -> bool:
    """True when cilium-config or a CiliumNodeConfig changes (the agents read both at start)."""
    for change in plan.changes:
        if change.action == "unchanged":
            continue
        if change.key == Key("", "ConfigMap", plan.state.namespace, "cilium-config"):
            return True
        if change.key.kind == "CiliumNodeConfig" and change.key.group == "cilium.io":
            return True
    return False


def _restart_if_needed(
    client: ApplyClient, state: DesiredState, plan: Plan, timeout: float, progress: Progress
) -> int:
    from ciliumctl.config.config import restart_agents

    if not config_changed(plan):
        return 0
    agent = Key("apps", "DaemonSet", state.namespace, "cilium")
    if any(c.key == agent and c.action != "unchanged" for c in plan.changes):
        return 0  # the agent DaemonSet itself changed: it rolls its pods anyway
    progress("restarting agents: cilium-config or a CiliumNodeConfig changed")
    return restart_agents(client, state.namespace, timeout=timeout, progress=progress)
