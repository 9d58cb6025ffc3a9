"""Prune decisions: never what ciliumctl did not create, never generated kinds."""

from __future__ import annotations

from typing import Any

import pytest

from ciliumctl.reconcile import inventory as inv
from ciliumctl.reconcile.objects import INVENTORY_ANNOTATION, PRUNE_ANNOTATION


def live(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "x", "annotations": annotations or {}}}


CNP = inv.Entry("cilium.io/v2", "CiliumNetworkPolicy", "app", "p")


@pytest.mark.parametrize(
    ("entry", "obj", "allowed", "why"),
    [
        (CNP, live({INVENTORY_ANNOTATION: "cilium"}), True, "no longer desired"),
        (CNP, live(), False, "not created by ciliumctl"),
        (CNP, live({INVENTORY_ANNOTATION: "other"}), False, "not created by ciliumctl"),
        (
            CNP,
            live({INVENTORY_ANNOTATION: "cilium", PRUNE_ANNOTATION: "false"}),
            False,
            "opted out",
        ),
        (CNP, None, False, "already gone"),
        (
            inv.Entry("cilium.io/v2", "CiliumIdentity", "", "1"),
            live({INVENTORY_ANNOTATION: "cilium"}),
            False,
            "never touched",
        ),
        (
            inv.Entry("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "a.cilium.io"),
            live({INVENTORY_ANNOTATION: "cilium"}),
            False,
            "never pruned",
        ),
        (
            inv.Entry("v1", "Namespace", "", "app"),
            live({INVENTORY_ANNOTATION: "cilium"}),
            False,
            "never pruned",
        ),
        (
            inv.Entry("v1", "ConfigMap", "kube-system", "cilium-config", "helm"),
            live({INVENTORY_ANNOTATION: "cilium"}),
            False,
            "Helm",
        ),
    ],
)
def test_prune_decision(
    entry: inv.Entry, obj: dict[str, Any] | None, allowed: bool, why: str
) -> None:
    ok, reason = inv.prune_decision(entry, obj, "cilium")
    assert ok is allowed and why in reason


class FakeClient:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace or "", name))

    def apply(self, obj: dict[str, Any], **_: Any) -> dict[str, Any]:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj
        return obj


def test_inventory_round_trip() -> None:
    client = FakeClient()
    assert inv.read(client, "kube-system", "cilium") is None
    entries = [CNP, inv.Entry("v1", "ConfigMap", "kube-system", "cilium-config", "helm"), CNP]
    inv.write(client, "kube-system", "cilium", entries, complete=False, version="1.18.5")
    cm = client.objects[("ConfigMap", "kube-system", "ciliumctl-inventory-cilium")]
    assert cm["metadata"]["annotations"][INVENTORY_ANNOTATION] == "cilium"
    stored = inv.read(client, "kube-system", "cilium")
    assert stored is not None and not stored.complete
    assert sorted(stored.entries) == sorted(set(entries))
    inv.write(client, "kube-system", "cilium", [CNP], complete=True, version="1.18.5")
    again = inv.read(client, "kube-system", "cilium")
    assert again is not None and again.complete and again.entries == [CNP]
