"""Readiness of Kubernetes objects, following the rules of kstatus.

Every object maps to one of Current, InProgress, Failed, Terminating or NotFound with a
human-readable reason. The functions are pure (they read plain dicts) so that they can be
unit-tested rule by rule and reused for any object the tool waits on.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Obj = dict[str, Any]

#: How long a Pending pod may stay Unschedulable before it counts as Failed.
UNSCHEDULABLE_GRACE = timedelta(seconds=15)


class Status(enum.StrEnum):
    """The kstatus vocabulary."""

    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    NOT_FOUND = "NotFound"


@dataclass(frozen=True)
class Result:
    """The computed status of one object and why."""

    status: Status
    message: str

    @property
    def ready(self) -> bool:
        """True when the object has reached its desired state."""
        return self.status is Status.CURRENT


def _get(obj: Obj, path: str, default: Any = None) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur if cur is not None else default


def _int(obj: Obj, path: str, default: int) -> int:
    value = _get(obj, path, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _conditions(obj: Obj) -> list[Obj]:
    conds = _get(obj, "status.conditions", [])
    return [c for c in conds if isinstance(c, dict)] if isinstance(conds, list) else []


def _condition(obj: Obj, ctype: str) -> Obj | None:
    for cond in _conditions(obj):
        if cond.get("type") == ctype:
            return cond
    return None


def _is_true(cond: Obj | None) -> bool:
    return cond is not None and cond.get("status") == "True"


def _is_false(cond: Obj | None) -> bool:
    return cond is not None and cond.get("status") == "False"


def _generic(obj: Obj) -> Result | None:
    """Rules shared by every kind: deletion, observed generation, Reconciling/Stalled."""
    if _get(obj, "metadata.deletionTimestamp"):
        return Result(Status.TERMINATING, "Resource scheduled for deletion")
    observed = _get(obj, "status.observedGeneration")
    generation = _get(obj, "metadata.generation")
    if observed is not None and generation is not None and int(observed) != int(generation):
        kind = obj.get("kind", "Resource")
        return Result(
            Status.IN_PROGRESS,
            f"{kind} generation is {generation}, but latest observed generation is {observed}",
        )
    reconciling = _condition(obj, "Reconciling")
    if _is_true(reconciling):
        return Result(Status.IN_PROGRESS, str((reconciling or {}).get("message") or "Reconciling"))
    stalled = _condition(obj, "Stalled")
    if _is_true(stalled):
        return Result(Status.FAILED, str((stalled or {}).get("message") or "Stalled"))
    return None


def _deployment(obj: Obj) -> Result:
    progressing = available = False
    for cond in _conditions(obj):
        if cond.get("type") == "Progressing":
            if cond.get("reason") == "ProgressDeadlineExceeded":
                return Result(Status.FAILED, "Progress deadline exceeded")
            if cond.get("status") == "True" and cond.get("reason") == "NewReplicaSetAvailable":
                progressing = True
        elif cond.get("type") == "Available" and cond.get("status") == "True":
            available = True
    spec = _int(obj, "spec.replicas", 1)
    replicas = _int(obj, "status.replicas", 0)
    updated = _int(obj, "status.updatedReplicas", 0)
    ready = _int(obj, "status.readyReplicas", 0)
    avail = _int(obj, "status.availableReplicas", 0)
    if spec > replicas:
        return Result(Status.IN_PROGRESS, f"Replicas: {replicas}/{spec}")
    if spec > updated:
        return Result(Status.IN_PROGRESS, f"Updated: {updated}/{spec}")
    if replicas > spec:
        return Result(Status.IN_PROGRESS, f"Pending termination: {replicas - spec}")
    if updated > avail:
        return Result(Status.IN_PROGRESS, f"Available: {avail}/{updated}")
    if spec > ready:
        return Result(Status.IN_PROGRESS, f"Ready: {ready}/{spec}")
    if not progressing:
        return Result(Status.IN_PROGRESS, "ReplicaSet not Available")
    if not available:
        return Result(Status.IN_PROGRESS, "Deployment not Available")
    return Result(Status.CURRENT, f"Deployment is available. Replicas: {replicas}")


def _daemonset(obj: Obj) -> Result:
    desired = _int(obj, "status.desiredNumberScheduled", -1)
    if desired == -1:
        return Result(Status.IN_PROGRESS, "Missing .status.desiredNumberScheduled")
    checks = (
        ("Current", _int(obj, "status.currentNumberScheduled", 0)),
        ("Updated", _int(obj, "status.updatedNumberScheduled", 0)),
        ("Available", _int(obj, "status.numberAvailable", 0)),
        ("Ready", _int(obj, "status.numberReady", 0)),
    )
    for label, count in checks:
        if desired > count:
            return Result(Status.IN_PROGRESS, f"{label}: {count}/{desired}")
    return Result(Status.CURRENT, f"All replicas scheduled as expected. Replicas: {desired}")


def _statefulset(obj: Obj) -> Result:
    if _get(obj, "spec.updateStrategy.type") == "OnDelete":
        return Result(Status.CURRENT, "StatefulSet is using the ondelete update strategy")
    spec = _int(obj, "spec.replicas", 1)
    replicas = _int(obj, "status.replicas", 0)
    ready = _int(obj, "status.readyReplicas", 0)
    current = _int(obj, "status.currentReplicas", 0)
    updated = _int(obj, "status.updatedReplicas", 0)
    partition = _int(obj, "spec.updateStrategy.rollingUpdate.partition", -1)
    if spec > replicas:
        return Result(Status.IN_PROGRESS, f"Replicas: {replicas}/{spec}")
    if spec > ready:
        return Result(Status.IN_PROGRESS, f"Ready: {ready}/{spec}")
    if replicas > spec:
        return Result(Status.IN_PROGRESS, f"Pending termination: {replicas - spec}")
    if partition != -1:
        if updated < spec - partition:
            return Result(Status.IN_PROGRESS, f"updated: {updated}/{spec - partition}")
        return Result(Status.CURRENT, f"Partition rollout complete. updated: {updated}")
    if spec > current:
        return Result(Status.IN_PROGRESS, f"current: {current}/{spec}")
    cur_rev = _get(obj, "status.currentRevision", "")
    upd_rev = _get(obj, "status.updateRevision", "")
    if cur_rev != upd_rev:
        return Result(
            Status.IN_PROGRESS,
            f"Waiting for updated revision {upd_rev} to match current {cur_rev}",
        )
    return Result(Status.CURRENT, f"All replicas scheduled as expected. Replicas: {spec}")


def _replicaset(obj: Obj) -> Result:
    if _is_true(_condition(obj, "ReplicaFailure")):
        return Result(Status.IN_PROGRESS, "Replica Failure condition. Check Pods")
    spec = _int(obj, "spec.replicas", 1)
    replicas = _int(obj, "status.replicas", 0)
    ready = _int(obj, "status.readyReplicas", 0)
    avail = _int(obj, "status.availableReplicas", 0)
    labelled = _int(obj, "status.fullyLabeledReplicas", 0)
    if spec > labelled:
        return Result(Status.IN_PROGRESS, f"Labelled: {labelled}/{spec}")
    if spec > avail:
        return Result(Status.IN_PROGRESS, f"Available: {avail}/{spec}")
    if spec > ready:
        return Result(Status.IN_PROGRESS, f"Ready: {ready}/{spec}")
    if replicas > spec:
        return Result(Status.IN_PROGRESS, f"Pending termination: {replicas - spec}")
    return Result(Status.CURRENT, f"ReplicaSet is available. Replicas: {spec}")


def _crashlooping(obj: Obj) -> list[str]:
    names = []
    for key in ("status.initContainerStatuses", "status.containerStatuses"):
        for cs in _get(obj, key, []) or []:
            if _get(cs, "state.waiting.reason") == "CrashLoopBackOff":
                names.append(str(cs.get("name", "?")))
    return names


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _pod(obj: Obj, now: datetime) -> Result:
    phase = _get(obj, "status.phase", "")
    if phase == "Succeeded":
        return Result(Status.CURRENT, "Pod has completed successfully")
    if phase == "Failed":
        return Result(Status.FAILED, "Pod has completed, but not successfully")
    if phase == "Running":
        if _is_true(_condition(obj, "Ready")):
            return Result(Status.CURRENT, "Pod is Ready")
        looping = _crashlooping(obj)
        if looping:
            return Result(Status.FAILED, f"Containers in CrashLoop state: {', '.join(looping)}")
        return Result(Status.IN_PROGRESS, "Pod is running but is not Ready")
    scheduled = _condition(obj, "PodScheduled")
    if _is_false(scheduled) and (scheduled or {}).get("reason") == "Unschedulable":
        since = _parse_time((scheduled or {}).get("lastTransitionTime"))
        if since is not None and now - since > UNSCHEDULABLE_GRACE:
            return Result(Status.FAILED, "Pod could not be scheduled")
        return Result(Status.IN_PROGRESS, "Pod has not been scheduled")
    return Result(Status.IN_PROGRESS, "Pod is in the Pending phase")


def _job(obj: Obj) -> Result:
    parallelism = _int(obj, "spec.parallelism", 1)
    completions = _int(obj, "spec.completions", parallelism)
    succeeded = _int(obj, "status.succeeded", 0)
    active = _int(obj, "status.active", 0)
    failed = _int(obj, "status.failed", 0)
    for cond in _conditions(obj):
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return Result(Status.CURRENT, f"Job Completed. succeeded: {succeeded}/{completions}")
        if cond.get("type") == "Failed":
            return Result(Status.FAILED, f"Job Failed. failed: {failed}/{completions}")
    if not _get(obj, "status.startTime"):
        return Result(Status.IN_PROGRESS, "Job not started")
    return Result(
        Status.IN_PROGRESS,
        f"Job in progress. success:{succeeded}, active: {active}, failed: {failed}",
    )


def _crd(obj: Obj) -> Result:
    for cond in _conditions(obj):
        if cond.get("type") == "NamesAccepted" and cond.get("status") == "False":
            return Result(Status.FAILED, str(cond.get("message") or "CRD names not accepted"))
        if cond.get("type") == "Established":
            if cond.get("status") == "False" and cond.get("reason") != "Installing":
                return Result(Status.FAILED, str(cond.get("message") or "CRD not established"))
            if cond.get("status") == "True":
                return Result(Status.CURRENT, "CRD is established")
    return Result(Status.IN_PROGRESS, "Install in progress")


def _namespace(obj: Obj) -> Result:
    if _get(obj, "status.phase") == "Terminating":
        return Result(Status.TERMINATING, "Namespace is terminating")
    return Result(Status.CURRENT, "Namespace is active")


def _ready_condition(obj: Obj) -> Result:
    """Kinds without a rule of their own: a ``Ready`` condition decides, if present."""
    ready = _condition(obj, "Ready")
    if ready is None:
        return Result(Status.CURRENT, "Resource is current")
    if ready.get("status") == "True":
        return Result(Status.CURRENT, str(ready.get("message") or "Resource is Ready"))
    return Result(Status.IN_PROGRESS, str(ready.get("message") or "Resource is not Ready"))


_RULES: dict[tuple[str, str], Callable[[Obj], Result]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("", "Namespace"): _namespace,
}


#: Kinds whose controllers always report status.observedGeneration: until they do, the
#: status (all zeros right after creation) describes nothing and must not read as Current.
_OBSERVED_KINDS = {
    ("apps", "Deployment"),
    ("apps", "DaemonSet"),
    ("apps", "StatefulSet"),
    ("apps", "ReplicaSet"),
}


def compute(obj: Obj | None, *, now: datetime | None = None) -> Result:
    """Return the kstatus status of ``obj``; ``None`` (an object that is gone) is NotFound."""
    if obj is None:
        return Result(Status.NOT_FOUND, "Resource not found")
    generic = _generic(obj)
    if generic is not None:
        return generic
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0]
    kind = str(obj.get("kind", ""))
    if (group, kind) in _OBSERVED_KINDS and _get(obj, "status.observedGeneration") is None:
        return Result(Status.IN_PROGRESS, f"{kind} not yet observed by its controller")
    if (group, kind) == ("", "Pod"):
        return _pod(obj, now or datetime.now(UTC))
    rule = _RULES.get((group, kind), _ready_condition)
    return rule(obj)
