"""`cilium config view|set|delete`: read and patch ``cilium-config``, then restart agents.

Restarts go batch by batch: at most ``maxUnavailable`` agent pods (from the DaemonSet's
update strategy) are deleted at once, and the next batch starts only when the DaemonSet is
fully ready again, so a bad option cannot take every node's networking down at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from typing import Any, Protocol

from ciliumctl.errors import CiliumctlError, UsageError
from ciliumctl.k8s.readiness import Status, compute

CONFIGMAP = "cilium-config"
AGENT_SELECTOR = "k8s-app=cilium"
Progress = Callable[[str], None]


class ConfigClient(Protocol):
    """The cluster calls the config commands need."""

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None: ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...

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


def _configmap(client: ConfigClient, namespace: str) -> dict[str, Any]:
    cm = client.get_or_none("v1", "ConfigMap", CONFIGMAP, namespace)
    if cm is None:
        raise CiliumctlError(
            f"ConfigMap {CONFIGMAP} not found in namespace {namespace}",
            "is Cilium installed? check -n/--namespace",
        )
    return cm


def view(client: ConfigClient, namespace: str) -> dict[str, str]:
    """The agent options in ``cilium-config``, sorted by key."""
    data = _configmap(client, namespace).get("data") or {}
    return {k: str(data[k]) for k in sorted(data)}


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments (or ``KEY VALUE`` as cilium-cli takes) into a mapping."""
    if len(pairs) == 2 and "=" not in pairs[0]:
        return {pairs[0]: pairs[1]}
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid option {pair!r}", "use KEY=VALUE (or KEY VALUE)")
        out[key] = value
    return out


def set_options(client: ConfigClient, namespace: str, options: dict[str, str]) -> dict[str, str]:
    """Set options; returns the previous value of each ('' when it was unset)."""
    if not options:
        raise UsageError("no option given", "use cilium config set KEY=VALUE")
    before = view(client, namespace)
    client.patch("v1", "ConfigMap", CONFIGMAP, {"data": options}, namespace)
    return {k: before.get(k, "") for k in options}


def delete_options(client: ConfigClient, namespace: str, keys: list[str]) -> list[str]:
    """Delete keys; returns those that existed (unknown keys are a usage error)."""
    before = view(client, namespace)
    missing = [k for k in keys if k not in before]
    if missing:
        raise UsageError(
            f"{', '.join(missing)} not set in {CONFIGMAP}",
            "`cilium config view` lists the keys that are set",
        )
    client.patch("v1", "ConfigMap", CONFIGMAP, {"data": dict.fromkeys(keys)}, namespace)
    return keys


def max_unavailable(daemonset: dict[str, Any], nodes: int) -> int:
    """The DaemonSet's rolling-update maxUnavailable as a pod count (at least 1)."""
    value = (
        ((daemonset.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    ).get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        return max(1, math.floor(nodes * int(value[:-1]) / 100))
    return max(1, int(value))


def _ready(pod: dict[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def restart_agents(
    client: ConfigClient,
    namespace: str,
    *,
    timeout: float = 300.0,
    batch: int | None = None,
    progress: Progress = lambda _: None,
    interval: float = 1.0,
    nodes: Collection[str] | None = None,
    hint: str = "revert the option with `cilium config set` or `cilium config delete`",
) -> int:
    """Delete agent pods in batches, waiting for readiness after each; returns the count.

    ``nodes`` limits the restart to the agents on those nodes (all agents by default). The
    first batch whose new pods fail (or are not ready within ``timeout``) stops the restart
    with an error naming the batch; later batches are left untouched.
    """
    ds = client.get_or_none("apps/v1", "DaemonSet", "cilium", namespace)
    if ds is None:
        raise CiliumctlError(
            f"DaemonSet cilium not found in {namespace}",
            "is Cilium installed? check -n/--namespace",
        )
    everything = client.list("v1", "Pod", namespace, label_selector=AGENT_SELECTOR)
    wanted = None if nodes is None else set(nodes)
    pods = sorted(
        (p for p in everything if wanted is None or _node(p) in wanted),
        key=_node,
    )
    size = batch or max_unavailable(ds, len(everything))
    old = {p["metadata"]["uid"] for p in everything}
    batches = math.ceil(len(pods) / size) if pods else 0
    for start in range(0, len(pods), size):
        group = pods[start : start + size]
        number = start // size + 1
        group_nodes = {_node(p) for p in group}
        progress(f"restarting agents {start + 1}-{start + len(group)} of {len(pods)}")
        for pod in group:
            client.delete("v1", "Pod", pod["metadata"]["name"], namespace)
        done_nodes = {_node(p) for p in pods[: start + len(group)]}
        deadline = time.monotonic() + timeout
        while True:
            current = client.list("v1", "Pod", namespace, label_selector=AGENT_SELECTOR)
            uids = {c["metadata"]["uid"] for c in current}
            fresh = [
                p for p in current if p["metadata"]["uid"] not in old and _node(p) in done_nodes
            ]
            gone = all(p["metadata"]["uid"] not in uids for p in group)
            if gone and len(fresh) >= len(done_nodes) and all(_ready(p) for p in fresh):
                break
            failing = [
                p["metadata"]["name"]
                for p in fresh
                if _node(p) in group_nodes and compute(p).status is Status.FAILED
            ]
            if failing:
                raise CiliumctlError(
                    f"restarted agents are failing ({', '.join(sorted(failing))}); stopped after "
                    f"batch {number} of {batches} (nodes {', '.join(sorted(group_nodes))}); "
                    f"{len(pods) - start - len(group)} agent(s) not restarted",
                    hint,
                )
            if time.monotonic() > deadline:
                raise CiliumctlError(
                    f"restarted agents not ready after {timeout:.0f}s "
                    f"({sum(_ready(p) for p in fresh)}/{len(fresh)} ready); stopped after "
                    f"batch {number} of {batches} (nodes {', '.join(sorted(group_nodes))})",
                    "check the new agents with `cilium status` and their logs",
                )
            time.sleep(interval)
    return len(pods)


def _node(pod: dict[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")
