"""Garbage collection: unused CiliumIdentities, orphaned CiliumEndpoints, CiliumNodes of gone Nodes.

Identities follow upstream's CRD-mode rule: an identity no CiliumEndpoint uses is marked
with a heartbeat annotation and deleted when still unused ``heartbeat_timeout`` later; an
identity back in use loses the mark.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("cilium-operator.gc")
CILIUM_API = "cilium.io/v2"
HEARTBEAT = "io.cilium.heartbeat"


@dataclass
class GCResult:
    """What one GC pass did."""

    deleted: list[str] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)
    alive: int = 0


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _parse(text: str) -> float:
    import calendar

    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def _annotate(client: Any, ident: dict[str, Any], mark: str | None) -> None:
    """Set or clear the heartbeat mark by update (the chart grants update on identities, as
    upstream's does, not patch); an identity changed meanwhile is looked at next pass."""
    from ciliumctl.k8s.errors import ConflictError, NotFoundError

    meta = dict(ident["metadata"])
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != HEARTBEAT}
    if mark is not None:
        annotations[HEARTBEAT] = mark
    meta["annotations"] = annotations
    with contextlib.suppress(ConflictError, NotFoundError):
        client.update({**ident, "metadata": meta})


def identities(client: Any, heartbeat_timeout: float, now: float | None = None) -> GCResult:
    """One identity GC pass."""
    now = time.time() if now is None else now
    used = {
        int(((cep.get("status") or {}).get("identity") or {}).get("id") or 0)
        for cep in client.list(CILIUM_API, "CiliumEndpoint")
    }
    result = GCResult()
    for ident in client.list(CILIUM_API, "CiliumIdentity"):
        meta = ident["metadata"]
        name = meta["name"]
        mark = (meta.get("annotations") or {}).get(HEARTBEAT)
        if name.isdigit() and int(name) in used:
            result.alive += 1
            if mark:
                _annotate(client, ident, None)
            continue
        if not mark:
            _annotate(client, ident, _stamp(now))
            result.marked.append(name)
        elif now - _parse(mark) >= heartbeat_timeout:
            client.delete(CILIUM_API, "CiliumIdentity", name)
            log.info("deleted unused identity %s", name)
            result.deleted.append(name)
    return result


def endpoints(client: Any) -> GCResult:
    """Delete CiliumEndpoints whose pod is gone, replaced, succeeded or failed."""
    pods = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p for p in client.list("v1", "Pod")
    }
    result = GCResult()
    for cep in client.list(CILIUM_API, "CiliumEndpoint"):
        meta = cep["metadata"]
        pod = pods.get((meta["namespace"], meta["name"]))
        owners = [o.get("uid") for o in meta.get("ownerReferences") or [] if o.get("kind") == "Pod"]
        phase = ((pod or {}).get("status") or {}).get("phase")
        stale_owner = pod is not None and owners and pod["metadata"].get("uid") not in owners
        if pod is None or phase in ("Succeeded", "Failed") or stale_owner:
            client.delete(CILIUM_API, "CiliumEndpoint", meta["name"], meta["namespace"])
            result.deleted.append(f"{meta['namespace']}/{meta['name']}")
        else:
            result.alive += 1
    return result


def nodes(client: Any) -> GCResult:
    """Delete CiliumNodes whose Node no longer exists."""
    names = {n["metadata"]["name"] for n in client.list("v1", "Node")}
    result = GCResult()
    for cn in client.list(CILIUM_API, "CiliumNode"):
        name = cn["metadata"]["name"]
        if name in names:
            result.alive += 1
            continue
        client.delete(CILIUM_API, "CiliumNode", name)
        result.deleted.append(name)
    return result
