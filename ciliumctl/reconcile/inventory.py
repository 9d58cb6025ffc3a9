"""The inventory: which objects a reconcile applied, kept in the cluster for pruning.

A ConfigMap ``ciliumctl-inventory-<name>`` in Cilium's namespace lists the objects (API
version, kind, namespace, name, and whether Helm or server-side apply owns them). Every
object applied with server-side apply also carries the annotation
``ciliumctl.io/inventory: <name>``. An object is pruned only when it is listed in the
previous inventory, is no longer desired, still carries this inventory's annotation, and
has no ``ciliumctl.io/prune: "false"`` opt-out: ciliumctl never prunes what it did not create.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ciliumctl.reconcile.objects import (
    INVENTORY_ANNOTATION,
    PRUNE_ANNOTATION,
    Key,
    group_of,
    is_generated,
)

PREFIX = "ciliumctl-inventory-"
MANAGED_BY = "ciliumctl"
#: Kinds never pruned automatically: deleting them cascades to everything inside.
NEVER_PRUNED = frozenset({("apiextensions.k8s.io", "CustomResourceDefinition"), ("", "Namespace")})


class InventoryClient(Protocol):
    """The calls the inventory needs."""

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None: ...

    def apply(
        self,
        obj: dict[str, Any],
        *,
        field_manager: str = ...,
        force: bool = False,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, order=True)
class Entry:
    """One object of the inventory; ``via`` is ``ssa`` (ours to prune) or ``helm``."""

    api_version: str
    kind: str
    namespace: str
    name: str
    via: str = "ssa"

    @property
    def key(self) -> Key:
        """The object's identity."""
        return Key(group_of(self.api_version), self.kind, self.namespace, self.name)

    @classmethod
    def of(cls, obj: dict[str, Any], via: str) -> Entry:
        """The entry of a full object."""
        meta = obj.get("metadata") or {}
        return cls(
            str(obj["apiVersion"]), str(obj["kind"]), str(meta.get("namespace") or ""),
            str(meta["name"]), via,
        )  # fmt: skip


@dataclass
class Inventory:
    """The stored inventory: entries and whether the last apply completed."""

    name: str
    entries: list[Entry]
    complete: bool = True


def configmap_name(name: str) -> str:
    """The inventory ConfigMap's name."""
    return PREFIX + name


def read(client: InventoryClient, namespace: str, name: str) -> Inventory | None:
    """The stored inventory, or None when this inventory was never written."""
    cm = client.get_or_none("v1", "ConfigMap", configmap_name(name), namespace)
    if cm is None:
        return None
    data = cm.get("data") or {}
    try:
        raw = json.loads(data.get("objects") or "[]")
        entries = [Entry(**item) for item in raw]
    except (ValueError, TypeError):
        entries = []
    return Inventory(name, entries, data.get("status", "complete") == "complete")


def write(
    client: InventoryClient,
    namespace: str,
    name: str,
    entries: list[Entry],
    *,
    complete: bool,
    version: str,
) -> None:
    """Store the inventory (``complete=False`` while an apply is in flight: the union of
    the old and new entries, so an interrupted apply leaves nothing untracked)."""
    from ciliumctl.k8s.client import FIELD_MANAGER

    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(name),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
            "annotations": {INVENTORY_ANNOTATION: name},
        },
        "data": {
            "objects": json.dumps([asdict(e) for e in sorted(set(entries))], indent=1),
            "status": "complete" if complete else "pending",
            "ciliumVersion": version,
        },
    }
    client.apply(body, field_manager=FIELD_MANAGER, force=True)


def prune_decision(entry: Entry, live: dict[str, Any] | None, inventory: str) -> tuple[bool, str]:
    """Whether an entry no longer desired may be deleted, and why (for reporting)."""
    if entry.via != "ssa":
        return False, "owned by the Helm release (Helm removes it)"
    if is_generated(group_of(entry.api_version), entry.kind):
        return False, f"Cilium generates {entry.kind} objects; never touched"
    if (group_of(entry.api_version), entry.kind) in NEVER_PRUNED:
        return False, f"{entry.kind}s are never pruned (deleting one deletes what it holds)"
    if live is None:
        return False, "already gone"
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    if annotations.get(INVENTORY_ANNOTATION) != inventory:
        return False, f"not created by ciliumctl inventory {inventory!r} (no matching annotation)"
    if str(annotations.get(PRUNE_ANNOTATION, "")).lower() == "false":
        return False, f'opted out with {PRUNE_ANNOTATION}: "false"'
    return True, "no longer desired"
