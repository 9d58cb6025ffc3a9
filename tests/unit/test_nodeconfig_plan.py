"""Which agents need a restart: timestamps for unknown pods, fingerprints for recorded ones."""

from __future__ import annotations

import json
from typing import Any

from ciliumctl.nodeconfig.plan import build_plan

NS = "kube-system"
T0, T1, T2, T3 = (f"2026-01-01T00:00:0{i}Z" for i in range(4))


class FakeClient:
    def __init__(self, state: dict[str, str] | None = None) -> None:
        crd = {"spec": {"versions": [{"name": "v2", "served": True}]}}
        self.objects: dict[tuple[str, str, str | None], dict[str, Any]] = {
            ("ConfigMap", "cilium-config", NS): {
                "metadata": {"name": "cilium-config", "creationTimestamp": T0},
                "data": {"debug": "false"},
            },
            ("CustomResourceDefinition", "ciliumnodeconfigs.cilium.io", None): crd,
        }
        if state is not None:
            self.objects[("ConfigMap", "ciliumctl-nodeconfig-state", NS)] = {"data": state}
        self.cncs = [
            {
                "apiVersion": "cilium.io/v2",
                "metadata": {"name": "xdp", "namespace": NS, "uid": "c1", "creationTimestamp": T2},
                "spec": {
                    "nodeSelector": {"matchLabels": {"hw": "xdp"}},
                    "defaults": {"debug": "true"},
                },
            }
        ]
        self.nodes = [
            {"metadata": {"name": n, "labels": labels, "creationTimestamp": T0}}
            for n, labels in (("old", {"hw": "xdp"}), ("new", {"hw": "xdp"}), ("plain", {}))
        ]
        self.pods = [
            {
                "metadata": {"name": f"cilium-{n}", "uid": f"u-{n}", "creationTimestamp": t},
                "spec": {"nodeName": n},
            }
            for n, t in (("old", T1), ("new", T3), ("plain", T1))
        ]

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self.objects.get((kind, name, namespace))

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, **_: Any
    ) -> list[Any]:
        return {"CiliumNodeConfig": self.cncs, "Node": self.nodes, "Pod": self.pods}[kind]

    def apply(self, obj: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
        raise AssertionError("the plan must not write")

    def patch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("the plan must not write")

    def delete(self, *args: Any, **kwargs: Any) -> bool:
        raise AssertionError("the plan must not write")


def test_pods_older_than_a_matching_cnc_are_pending() -> None:
    plan = build_plan(FakeClient(), NS)
    assert plan.pending == ["old"]
    assert "CiliumNodeConfig xdp" in plan.nodes["old"].reason
    assert [g.nodes for g in plan.groups] == [["plain"], ["new", "old"]]
    assert plan.groups[1].differences["debug"]["effective"] == "true"


def test_a_recorded_pod_is_judged_by_its_fingerprint() -> None:
    first = build_plan(FakeClient(), NS)
    fp = first.nodes["old"].fingerprint
    recorded = {
        "old": {"pod": "u-old", "fingerprint": fp},
        "new": {"pod": "u-new", "fingerprint": "stale"},
    }
    plan = build_plan(FakeClient({"applied": json.dumps(recorded)}), NS)
    assert plan.pending == ["new"]
    assert "changed since ciliumctl restarted" in plan.nodes["new"].reason


def test_a_deleted_cnc_leaves_the_nodes_it_selected_pending() -> None:
    deleted = {"gone": {"selector": {}, "keys": ["mtu"], "time": T2}}
    plan = build_plan(FakeClient({"deleted": json.dumps(deleted)}), NS)
    assert plan.pending == ["old", "plain"]
    assert "deleted CiliumNodeConfig gone" in plan.nodes["plain"].reason
