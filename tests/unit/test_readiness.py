"""Every readiness rule (the kstatus port), one case per branch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ciliumctl.k8s.readiness import Status, compute

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def obj(
    api_version: str,
    kind: str,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "generation": 1, **meta},
        "spec": spec or {},
        "status": status or {},
    }


def cond(
    ctype: str, status: str, reason: str = "", message: str = "", ltt: str | None = None
) -> dict[str, Any]:
    out = {"type": ctype, "status": status, "reason": reason, "message": message}
    if ltt:
        out["lastTransitionTime"] = ltt
    return out


def test_none_is_not_found() -> None:
    assert compute(None).status is Status.NOT_FOUND


def test_deletion_timestamp_is_terminating() -> None:
    o = obj("v1", "ConfigMap", deletionTimestamp="2026-01-01T00:00:00Z")
    assert compute(o).status is Status.TERMINATING


def test_observed_generation_behind_is_in_progress() -> None:
    o = obj("apps/v1", "Deployment", status={"observedGeneration": 1}, generation=2)
    r = compute(o)
    assert r.status is Status.IN_PROGRESS
    assert "generation is 2" in r.message


def test_generic_reconciling_and_stalled() -> None:
    rec = obj(
        "example.com/v1",
        "Widget",
        status={"conditions": [cond("Reconciling", "True", message="working")]},
    )
    assert compute(rec) == compute(rec) and compute(rec).status is Status.IN_PROGRESS
    assert compute(rec).message == "working"
    stalled = obj("example.com/v1", "Widget", status={"conditions": [cond("Stalled", "True")]})
    assert compute(stalled).status is Status.FAILED


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([], Status.CURRENT),
        ([cond("Ready", "True")], Status.CURRENT),
        ([cond("Ready", "False", message="waiting")], Status.IN_PROGRESS),
        ([cond("Ready", "Unknown")], Status.IN_PROGRESS),
    ],
)
def test_generic_ready_condition(conditions: list[dict[str, Any]], expected: Status) -> None:
    assert (
        compute(obj("example.com/v1", "Widget", status={"conditions": conditions})).status
        is expected
    )


def _deploy(spec_replicas: int = 3, **status: Any) -> dict[str, Any]:
    base = {
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "observedGeneration": 1,
        "conditions": [
            cond("Progressing", "True", "NewReplicaSetAvailable"),
            cond("Available", "True"),
        ],
    }
    base.update(status)
    return obj("apps/v1", "Deployment", spec={"replicas": spec_replicas}, status=base)


@pytest.mark.parametrize(
    ("deploy", "expected", "fragment"),
    [
        (_deploy(), Status.CURRENT, "Replicas: 3"),
        (_deploy(replicas=2), Status.IN_PROGRESS, "Replicas: 2/3"),
        (_deploy(updatedReplicas=1), Status.IN_PROGRESS, "Updated: 1/3"),
        (_deploy(replicas=4), Status.IN_PROGRESS, "Pending termination: 1"),
        (_deploy(availableReplicas=2), Status.IN_PROGRESS, "Available: 2/3"),
        (_deploy(readyReplicas=2, availableReplicas=3), Status.IN_PROGRESS, "Ready: 2/3"),
        (
            _deploy(conditions=[cond("Available", "True")]),
            Status.IN_PROGRESS,
            "ReplicaSet not Available",
        ),
        (
            _deploy(conditions=[cond("Progressing", "True", "NewReplicaSetAvailable")]),
            Status.IN_PROGRESS,
            "Deployment not Available",
        ),
        (
            _deploy(conditions=[cond("Progressing", "False", "ProgressDeadlineExceeded")]),
            Status.FAILED,
            "Progress deadline exceeded",
        ),
    ],
)
def test_deployment(deploy: dict[str, Any], expected: Status, fragment: str) -> None:
    r = compute(deploy)
    assert r.status is expected
    assert fragment in r.message


def test_deployment_default_replicas_is_one() -> None:
    d = _deploy(replicas=1, updatedReplicas=1, readyReplicas=1, availableReplicas=1)
    d["spec"] = {}
    assert compute(d).status is Status.CURRENT


def _ds(**status: Any) -> dict[str, Any]:
    base = {
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 3,
        "updatedNumberScheduled": 3,
        "numberAvailable": 3,
        "numberReady": 3,
        "observedGeneration": 1,
    }
    base.update(status)
    return obj("apps/v1", "DaemonSet", status=base)


@pytest.mark.parametrize(
    ("ds", "expected", "fragment"),
    [
        (_ds(), Status.CURRENT, "Replicas: 3"),
        (
            obj("apps/v1", "DaemonSet", status={"observedGeneration": 1}),
            Status.IN_PROGRESS,
            "Missing",
        ),
        (_ds(currentNumberScheduled=2), Status.IN_PROGRESS, "Current: 2/3"),
        (_ds(updatedNumberScheduled=1), Status.IN_PROGRESS, "Updated: 1/3"),
        (_ds(numberAvailable=0), Status.IN_PROGRESS, "Available: 0/3"),
        (_ds(numberReady=2), Status.IN_PROGRESS, "Ready: 2/3"),
    ],
)
def test_daemonset(ds: dict[str, Any], expected: Status, fragment: str) -> None:
    r = compute(ds)
    assert r.status is expected
    assert fragment in r.message


def _sts(spec: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    base = {
        "replicas": 2,
        "readyReplicas": 2,
        "currentReplicas": 2,
        "updatedReplicas": 2,
        "currentRevision": "r1",
        "updateRevision": "r1",
        "observedGeneration": 1,
    }
    base.update(status)
    return obj("apps/v1", "StatefulSet", spec={"replicas": 2, **(spec or {})}, status=base)


@pytest.mark.parametrize(
    ("sts", "expected", "fragment"),
    [
        (_sts(), Status.CURRENT, "Replicas: 2"),
        (_sts({"updateStrategy": {"type": "OnDelete"}}, replicas=0), Status.CURRENT, "ondelete"),
        (_sts(replicas=1), Status.IN_PROGRESS, "Replicas: 1/2"),
        (_sts(readyReplicas=1), Status.IN_PROGRESS, "Ready: 1/2"),
        (_sts(replicas=3, readyReplicas=3), Status.IN_PROGRESS, "Pending termination: 1"),
        (
            _sts({"updateStrategy": {"rollingUpdate": {"partition": 1}}}, updatedReplicas=0),
            Status.IN_PROGRESS,
            "updated: 0/1",
        ),
        (
            _sts({"updateStrategy": {"rollingUpdate": {"partition": 1}}}, updatedReplicas=1),
            Status.CURRENT,
            "Partition rollout complete",
        ),
        (_sts(currentReplicas=1), Status.IN_PROGRESS, "current: 1/2"),
        (_sts(updateRevision="r2"), Status.IN_PROGRESS, "Waiting for updated revision r2"),
    ],
)
def test_statefulset(sts: dict[str, Any], expected: Status, fragment: str) -> None:
    r = compute(sts)
    assert r.status is expected
    assert fragment in r.message


def _rs(**status: Any) -> dict[str, Any]:
    base = {
        "replicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "fullyLabeledReplicas": 2,
        "observedGeneration": 1,
    }
    base.update(status)
    return obj("apps/v1", "ReplicaSet", spec={"replicas": 2}, status=base)


@pytest.mark.parametrize(
    ("rs", "expected", "fragment"),
    [
        (_rs(), Status.CURRENT, "Replicas: 2"),
        (_rs(conditions=[cond("ReplicaFailure", "True")]), Status.IN_PROGRESS, "Replica Failure"),
        (_rs(fullyLabeledReplicas=1), Status.IN_PROGRESS, "Labelled: 1/2"),
        (_rs(availableReplicas=1), Status.IN_PROGRESS, "Available: 1/2"),
        (_rs(readyReplicas=1), Status.IN_PROGRESS, "Ready: 1/2"),
        (_rs(replicas=3), Status.IN_PROGRESS, "Pending termination: 1"),
    ],
)
def test_replicaset(rs: dict[str, Any], expected: Status, fragment: str) -> None:
    r = compute(rs)
    assert r.status is expected
    assert fragment in r.message


def _pod(
    phase: str,
    conditions: list[dict[str, Any]] | None = None,
    container_statuses: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return obj(
        "v1",
        "Pod",
        status={
            "phase": phase,
            "conditions": conditions or [],
            "containerStatuses": container_statuses or [],
        },
    )


LONG_AGO = (NOW - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
JUST_NOW = (NOW - timedelta(seconds=2)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("pod", "expected", "fragment"),
    [
        (_pod("Succeeded"), Status.CURRENT, "completed successfully"),
        (_pod("Failed"), Status.FAILED, "not successfully"),
        (_pod("Running", [cond("Ready", "True")]), Status.CURRENT, "Pod is Ready"),
        (
            _pod(
                "Running",
                [cond("Ready", "False")],
                [{"name": "agent", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
            ),
            Status.FAILED,
            "CrashLoop state: agent",
        ),
        (_pod("Running", [cond("Ready", "False")]), Status.IN_PROGRESS, "not Ready"),
        (
            _pod("Pending", [cond("PodScheduled", "False", "Unschedulable", ltt=LONG_AGO)]),
            Status.FAILED,
            "could not be scheduled",
        ),
        (
            _pod("Pending", [cond("PodScheduled", "False", "Unschedulable", ltt=JUST_NOW)]),
            Status.IN_PROGRESS,
            "not been scheduled",
        ),
        (_pod("Pending"), Status.IN_PROGRESS, "Pending phase"),
    ],
)
def test_pod(pod: dict[str, Any], expected: Status, fragment: str) -> None:
    r = compute(pod, now=NOW)
    assert r.status is expected
    assert fragment in r.message


def _job(conditions: list[dict[str, Any]] | None = None, **status: Any) -> dict[str, Any]:
    return obj(
        "batch/v1",
        "Job",
        spec={"completions": 2},
        status={"conditions": conditions or [], **status},
    )


@pytest.mark.parametrize(
    ("job", "expected", "fragment"),
    [
        (_job([cond("Complete", "True")], succeeded=2), Status.CURRENT, "succeeded: 2/2"),
        (_job([cond("Failed", "True")], failed=3), Status.FAILED, "failed: 3/2"),
        (_job(), Status.IN_PROGRESS, "not started"),
        (_job(startTime="2026-01-01T00:00:00Z", active=1), Status.IN_PROGRESS, "active: 1"),
        (_job([cond("Complete", "False")], startTime="x"), Status.IN_PROGRESS, "in progress"),
    ],
)
def test_job(job: dict[str, Any], expected: Status, fragment: str) -> None:
    r = compute(job)
    assert r.status is expected
    assert fragment in r.message


def _crd(*conditions: dict[str, Any]) -> dict[str, Any]:
    return obj(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        status={"conditions": list(conditions)},
    )


@pytest.mark.parametrize(
    ("crd", "expected"),
    [
        (_crd(cond("NamesAccepted", "True"), cond("Established", "True")), Status.CURRENT),
        (_crd(cond("NamesAccepted", "False", message="conflict")), Status.FAILED),
        (_crd(cond("Established", "False", "Installing")), Status.IN_PROGRESS),
        (_crd(cond("Established", "False", "Broken")), Status.FAILED),
        (_crd(), Status.IN_PROGRESS),
    ],
)
def test_crd(crd: dict[str, Any], expected: Status) -> None:
    assert compute(crd).status is expected


def test_namespace_active_and_terminating() -> None:
    assert compute(obj("v1", "Namespace", status={"phase": "Active"})).status is Status.CURRENT
    assert (
        compute(obj("v1", "Namespace", status={"phase": "Terminating"})).status
        is Status.TERMINATING
    )


def test_result_ready_property() -> None:
    assert compute(_ds()).ready
    assert not compute(None).ready


@pytest.mark.parametrize("kind", ["Deployment", "DaemonSet", "StatefulSet", "ReplicaSet"])
def test_unobserved_workload_is_in_progress(kind: str) -> None:
    # Right after creation the API server returns zeroed status without observedGeneration;
    # kstatus' count rules alone would call a DaemonSet with desired 0 Current.
    fresh = obj(
        "apps/v1",
        kind,
        status={"desiredNumberScheduled": 0, "numberReady": 0, "currentNumberScheduled": 0},
    )
    result = compute(fresh)
    assert result.status is Status.IN_PROGRESS
    assert "not yet observed" in result.message
