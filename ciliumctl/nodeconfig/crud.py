"""``cilium config node set|list|get|delete``: CiliumNodeConfig objects (cilium.io/v2).

Every check (object name, keys, selector, CRD presence) runs before the cluster changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ciliumctl.errors import CiliumctlError, UsageError
from ciliumctl.nodeconfig import state
from ciliumctl.nodeconfig.cluster import (
    AGENT_DS,
    KIND,
    NodeConfigClient,
    agent_settings,
    list_cncs,
    node_info,
    require_crd,
)
from ciliumctl.nodeconfig.engine import V2, Engine, Inputs, is_configmap_key
from ciliumctl.nodeconfig.options import unknown_key_warnings
from ciliumctl.nodeconfig.selectors import compile_selector, format_selector

Obj = dict[str, Any]
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class SetResult:
    """What ``set`` did."""

    name: str
    created: bool
    changes: dict[str, tuple[str | None, str]]
    selector: dict[str, Any]
    nodes: list[str]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Row:
    """One CiliumNodeConfig as ``list`` shows it."""

    name: str
    api_version: str
    selector: str
    defaults: dict[str, str]
    nodes: list[str]
    created: str

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "apiVersion": self.api_version,
            "selector": self.selector,
            "defaults": self.defaults,
            "nodes": self.nodes,
            "created": self.created,
        }


def check_name(name: str) -> None:
    """A CiliumNodeConfig name must be a DNS subdomain."""
    if not name or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise UsageError(
            f"invalid CiliumNodeConfig name {name!r}",
            "use lower-case letters, digits, '-' and '.', starting and ending alphanumeric",
        )


def check_keys(pairs: dict[str, str]) -> list[str]:
    """Reject keys the agent would skip; warn about keys no agent option has."""
    if not pairs:
        raise UsageError(
            "no KEY=VALUE given", "e.g. cilium config node set NAME ... bpf-lb-acceleration=native"
        )
    bad = [k for k in pairs if not is_configmap_key(k)]
    if bad:
        raise UsageError(
            f"invalid key(s) {', '.join(repr(k) for k in bad)}",
            "keys are cilium-config option names: letters, digits, '-', '_' and '.'",
        )
    return unknown_key_warnings(list(pairs))


def _get(client: NodeConfigClient, namespace: str, name: str) -> Obj | None:
    return client.get_or_none(V2, KIND, name, namespace)


def _matching_nodes(client: NodeConfigClient, selector: Any) -> list[str]:
    compiled = compile_selector(selector)
    return sorted(
        info.name
        for info in (node_info(n) for n in client.list("v1", "Node"))
        if compiled.matches(info.labels)
    )


def set_config(
    client: NodeConfigClient,
    namespace: str,
    name: str,
    pairs: dict[str, str],
    *,
    selector: dict[str, Any] | None = None,
    all_nodes: bool = False,
) -> SetResult:
    """Create or update a CiliumNodeConfig: merge ``pairs`` into its defaults.

    A new object needs ``selector`` or ``all_nodes``; an existing one keeps its selector
    unless one is given.
    """
    check_name(name)
    warnings = check_keys(pairs)
    if selector is not None and all_nodes:
        raise UsageError("--selector and --all-nodes exclude each other", "give one of them")
    if selector is not None:
        compile_selector(selector, "--selector")
    require_crd(client)
    existing = _get(client, namespace, name)
    if existing is None and selector is None and not all_nodes:
        raise UsageError(
            f"CiliumNodeConfig {name} does not exist yet: it needs nodes to select",
            "add --selector key=value[,key=value] or --all-nodes",
        )
    old_spec = (existing or {}).get("spec") or {}
    if all_nodes:
        new_selector: dict[str, Any] = {}
    elif selector is not None:
        new_selector = selector
    else:
        new_selector = dict(old_spec.get("nodeSelector") or {})
    old_defaults = {str(k): str(v) for k, v in (old_spec.get("defaults") or {}).items()}
    defaults = {**old_defaults, **pairs}
    settings = agent_settings(
        client.get_or_none("apps/v1", "DaemonSet", AGENT_DS, namespace), namespace
    )
    engine = Engine(
        Inputs(namespace, {}, (), settings.sources, settings.allow_keys, settings.deny_keys)
    )
    for key in pairs:
        reason = engine.blocked_reason(key)
        if reason:
            warnings.append(f"{reason}: the agents will ignore it from a CiliumNodeConfig")
    nodes = _matching_nodes(client, new_selector)
    if not nodes:
        warnings.append(f"selector {format_selector(new_selector)} selects no node yet")
    obj = {
        "apiVersion": V2,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"nodeSelector": new_selector, "defaults": defaults},
    }
    client.apply(obj, force=True)
    changes = {k: (old_defaults.get(k), v) for k, v in pairs.items() if old_defaults.get(k) != v}
    return SetResult(name, existing is None, changes, new_selector, nodes, warnings)


def list_configs(client: NodeConfigClient, namespace: str) -> list[Row]:
    """Every CiliumNodeConfig in ``namespace`` with the nodes it selects."""
    require_crd(client)
    infos = [node_info(n) for n in client.list("v1", "Node")]
    rows = []
    for obj in sorted(list_cncs(client, namespace), key=lambda o: o["metadata"]["name"]):
        spec = obj.get("spec") or {}
        raw = spec.get("nodeSelector")
        try:
            compiled = compile_selector(raw) if raw is not None else None
            nodes = sorted(i.name for i in infos if compiled and compiled.matches(i.labels))
            shown = format_selector(raw)
        except CiliumctlError as exc:
            nodes, shown = [], f"<invalid: {exc.message}>"
        rows.append(
            Row(
                obj["metadata"]["name"],
                str(obj.get("apiVersion", V2)),
                shown,
                {str(k): str(v) for k, v in (spec.get("defaults") or {}).items()},
                nodes,
                str(obj["metadata"].get("creationTimestamp", "")),
            )
        )
    return rows


def get_config(client: NodeConfigClient, namespace: str, name: str) -> tuple[Obj, list[str]]:
    """One CiliumNodeConfig and the nodes it selects."""
    check_name(name)
    require_crd(client)
    obj = _get(client, namespace, name)
    if obj is None:
        raise CiliumctlError(
            f"CiliumNodeConfig {name} not found in namespace {namespace}",
            "`cilium config node list` shows the existing ones",
        )
    raw = (obj.get("spec") or {}).get("nodeSelector")
    return obj, (_matching_nodes(client, raw) if raw is not None else [])


def delete_config(client: NodeConfigClient, namespace: str, name: str) -> list[str]:
    """Delete a CiliumNodeConfig; returns the nodes it selected (their agents need a restart)."""
    obj, nodes = get_config(client, namespace, name)
    spec = obj.get("spec") or {}
    state.record_deleted(
        client, namespace, name, spec.get("nodeSelector"), sorted(spec.get("defaults") or {})
    )
    client.delete(V2, KIND, name, namespace)
    return nodes
