"""What ciliumctl remembers in the cluster about per-node configuration.

One ConfigMap in the Cilium namespace holds two JSON documents:

* ``applied``: for each node, the agent pod that ciliumctl (re)started and the fingerprint of
  the effective configuration it started with. A pod recorded here is known to be up to date
  exactly when the fingerprint still matches.
* ``deleted``: CiliumNodeConfigs removed by ``cilium config node delete`` (selector, time), so
  that nodes they used to select show a pending restart.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ciliumctl.nodeconfig.cluster import NodeConfigClient

STATE_CONFIGMAP = "ciliumctl-nodeconfig-state"


def _read(client: NodeConfigClient, namespace: str, key: str) -> dict[str, Any]:
    cm = client.get_or_none("v1", "ConfigMap", STATE_CONFIGMAP, namespace)
    raw = ((cm or {}).get("data") or {}).get(key)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _write(client: NodeConfigClient, namespace: str, key: str, value: dict[str, Any]) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": STATE_CONFIGMAP,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "ciliumctl"},
        },
        "data": {key: json.dumps(value, sort_keys=True)},
    }
    client.apply(cm, force=True)


def applied(client: NodeConfigClient, namespace: str) -> dict[str, dict[str, str]]:
    """node -> {"pod": uid, "fingerprint": digest} for pods ciliumctl restarted."""
    return {k: v for k, v in _read(client, namespace, "applied").items() if isinstance(v, dict)}


def record_applied(
    client: NodeConfigClient, namespace: str, records: dict[str, dict[str, str]]
) -> None:
    """Remember the pods (and config fingerprints) of restarted agents."""
    if not records:
        return
    current = applied(client, namespace)
    current.update(records)
    _write(client, namespace, "applied", current)


def deleted(client: NodeConfigClient, namespace: str) -> dict[str, dict[str, Any]]:
    """name -> {"selector": ..., "time": iso} for CNCs deleted through ciliumctl."""
    return {k: v for k, v in _read(client, namespace, "deleted").items() if isinstance(v, dict)}


def record_deleted(
    client: NodeConfigClient, namespace: str, name: str, selector: Any, keys: list[str]
) -> None:
    """Remember a deleted CNC so nodes it selected show a pending restart."""
    current = deleted(client, namespace)
    current[name] = {
        "selector": selector,
        "keys": keys,
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    _write(client, namespace, "deleted", current)
