"""kwok's configuration: stages, fake nodes, Exec and Logs objects."""

from __future__ import annotations

import yaml

from ciliumctl.devcluster import kwok


def test_configuration_documents() -> None:
    docs = list(yaml.safe_load_all(kwok.configuration("10.250.0.1/16")))
    assert docs[0]["kind"] == "KwokConfiguration"
    assert docs[0]["options"]["cidr"] == "10.250.0.1/16"
    assert set(docs[0]["options"]["enableCRDs"]) == {"Exec", "ClusterExec", "Logs", "ClusterLogs"}
    names = [d["metadata"]["name"] for d in docs[1:]]
    assert names == ["pod-ready", "pod-broken", "pod-complete", "pod-delete"]
    assert all(d["spec"]["resourceRef"] == {"apiGroup": "v1", "kind": "Pod"} for d in docs[1:])


def _exprs(stage_name: str) -> list[dict[str, object]]:
    stage = next(s for s in kwok.pod_stages() if s["metadata"]["name"] == stage_name)
    exprs: list[dict[str, object]] = stage["spec"]["selector"]["matchExpressions"]
    return exprs


def test_ready_and_broken_stages_split_on_image_suffix() -> None:
    ready = [e for e in _exprs("pod-ready") if e["key"] == kwok.BROKEN_IMAGE_QUERY]
    broken = [e for e in _exprs("pod-broken") if e["key"] == kwok.BROKEN_IMAGE_QUERY]
    assert ready == [{"key": kwok.BROKEN_IMAGE_QUERY, "operator": "NotIn", "values": ["true"]}]
    assert broken == [{"key": kwok.BROKEN_IMAGE_QUERY, "operator": "In", "values": ["true"]}]
    assert 'endswith("-broken")' in kwok.BROKEN_IMAGE_QUERY


def test_broken_stage_reports_crashloop_not_ready() -> None:
    stage = next(s for s in kwok.pod_stages() if s["metadata"]["name"] == "pod-broken")
    template = stage["spec"]["next"]["statusTemplate"]
    assert "CrashLoopBackOff" in template
    assert "ready: false" in template
    assert "phase: Running" in template


def test_node_manifest_is_realistic() -> None:
    node = kwok.node_manifest("n1", labels={"pool": "a"})
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "n1"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"] == "amd64"
    assert labels["pool"] == "a"
    assert node["metadata"]["annotations"][kwok.MANAGED_ANNOTATION] == kwok.MANAGED_VALUE
    info = node["status"]["nodeInfo"]
    assert info["kernelVersion"] and info["osImage"]


def test_exec_and_logs_manifests() -> None:
    ex = kwok.exec_manifest("ns", "pod", "/tmp/w", ["c"], {"A": "1"})
    assert ex["kind"] == "Exec" and ex["metadata"] == {"name": "pod", "namespace": "ns"}
    assert ex["spec"]["execs"] == [
        {"local": {"workDir": "/tmp/w", "envs": [{"name": "A", "value": "1"}]}, "containers": ["c"]}
    ]
    logs = kwok.logs_manifest("ns", "pod", "/tmp/l.log", previous_logs_file="/tmp/p.log")
    assert logs["spec"]["logs"] == [{"logsFile": "/tmp/l.log", "previousLogsFile": "/tmp/p.log"}]
