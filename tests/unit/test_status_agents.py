"""`cilium status` asks every running agent for its own status (``cilium-dbg status -o
json`` through exec, as cilium-cli does) and reports what each says is wrong per pod; an
exec that fails or hangs is that pod's error; agents on kwok nodes have nobody to ask.
The real-node tests do this against real agents; here the cluster side is a small table."""

from __future__ import annotations

import json
from typing import Any

from ciliumctl.k8s.client import ExecResult
from ciliumctl.k8s.errors import KubeTimeoutError
from ciliumctl.status import status

SOCK = "unix:///var/run/cilium/cilium.sock"
HEALTHY = {
    "cilium": {"state": "Ok", "msg": ""},
    "kubernetes": {"state": "Ok", "msg": "v1.34.4"},
    "controllers": [{"name": "ct-map-gc", "status": {"consecutive-failure-count": 0}}],
    "masquerading": {"enabled": True, "mode": "IPTables", "enabledProtocols": {"ipv4": True}},
}


def test_agent_errors_name_each_failing_part() -> None:
    assert status.agent_errors(HEALTHY) == []
    broken = {
        "cilium": {"state": "Warning", "msg": "API server unreachable"},
        "kubernetes": {"state": "Failure", "msg": "connection refused"},
        "controllers": [
            {"name": "ct-map-gc", "status": {"consecutive-failure-count": 3,
                                             "last-failure-msg": "map full"}}
        ],
        "masquerading": {"enabled": True, "msg": "iptables: Permission denied"},
    }  # fmt: skip
    assert status.agent_errors(broken) == [
        "cilium: Warning API server unreachable",
        "kubernetes: Failure connection refused",
        "controller ct-map-gc is failing: map full",
        "masquerading: iptables: Permission denied",
    ]


class Cluster:
    """Three agent pods: healthy on node-a, hung on node-b, on a kwok node node-k; plus a
    pending one (not asked)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, list[str], str | None]] = []

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        if kind == "Node":
            kwok = {"kwok.x-k8s.io/node": "fake"}
            return [
                {"metadata": {"name": "node-a"}},
                {"metadata": {"name": "node-b"}},
                {"metadata": {"name": "node-k", "annotations": kwok}},
            ]
        if kind == "Pod" and label_selector == "k8s-app=cilium":
            return [
                {"metadata": {"name": f"cilium-{n}"}, "spec": {"nodeName": f"node-{n}"},
                 "status": {"phase": phase}}
                for n, phase in (("a", "Running"), ("b", "Running"), ("k", "Running"),
                                 ("p", "Pending"))
            ]  # fmt: skip
        return []

    def get_or_none(self, *args: Any) -> dict[str, Any] | None:
        return None

    def exec(self, namespace: str, pod: str, argv: list[str], container: str | None = None,
             *, timeout: float = 60.0) -> ExecResult:  # fmt: skip
        self.asked.append((pod, argv, container))
        assert timeout == status.AGENT_STATUS_TIMEOUT
        if pod == "cilium-b":
            raise KubeTimeoutError(f"exec in {pod}: command did not finish within {timeout}s")
        return ExecResult(json.dumps(HEALTHY).encode(), b"", 0)


def test_running_agents_are_asked_and_a_hung_one_is_its_pods_error() -> None:
    cluster = Cluster()
    comp = status.Component("cilium", "DaemonSet", "OK")
    status._query_agents(cluster, "kube-system", comp)
    assert sorted(a[0] for a in cluster.asked) == ["cilium-a", "cilium-b"]
    assert {(a[1][0], a[2]) for a in cluster.asked} == {("cilium-dbg", "cilium-agent")}
    assert cluster.asked[0][1] == ["cilium-dbg", "status", "-o", "json"]
    assert comp.state == "error" and len(comp.errors) == 1
    assert comp.errors[0].startswith("pod cilium-b: unable to retrieve cilium status:")
    assert "did not finish within 10.0s" in comp.errors[0]
    assert comp.agents_not_queried == 1


def test_an_agent_reporting_trouble_or_failing_its_command_is_an_error() -> None:
    class Sick(Cluster):
        def exec(self, namespace: str, pod: str, argv: list[str],
                 container: str | None = None, *, timeout: float = 60.0) -> ExecResult:  # fmt: skip
            if pod == "cilium-b":
                return ExecResult(
                    b"", b"Error: cannot reach the agent at unix:///var/run/cilium/cilium.sock", 1
                )
            sick = dict(HEALTHY, kubernetes={"state": "Failure", "msg": "no API server"})
            return ExecResult(json.dumps(sick).encode(), b"", 0)

    comp = status.Component("cilium", "DaemonSet", "OK")
    status._query_agents(Sick(), "kube-system", comp)
    assert sorted(comp.errors) == [
        "pod cilium-a: kubernetes: Failure no API server",
        f"pod cilium-b: unable to retrieve cilium status: Error: cannot reach the agent at {SOCK}",
    ]


def test_a_disabled_or_missing_daemonset_asks_nobody() -> None:
    cluster = Cluster()
    status._query_agents(
        cluster, "kube-system", status.Component("cilium", "DaemonSet", "disabled")
    )
    assert cluster.asked == []
