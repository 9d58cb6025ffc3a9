"""Where Hubble Relay runs: the ready pod and port behind the ``hubble-relay`` Service.

`cilium hubble port-forward` forwards to it; the errors say when Relay is not enabled or
has no ready pod, with the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ciliumctl.errors import CiliumctlError
from ciliumctl.status.status import StatusClient

RELAY_SERVICE = "hubble-relay"
#: The local port cilium-cli forwards to Relay by default (the hubble CLI's default server).
DEFAULT_LOCAL_PORT = 4245


class RelayNotEnabledError(CiliumctlError):
    """No hubble-relay Service: Relay is not deployed."""


class RelayNotReadyError(CiliumctlError):
    """The Service exists but no ready pod backs it."""


@dataclass(frozen=True)
class RelayBackend:
    """The pod and its port that serve the Relay Service's first port."""

    pod: str
    port: int
    service_port: int


def relay_backend(client: StatusClient, namespace: str) -> RelayBackend:
    """The ready Relay pod to forward to, from the Service's EndpointSlices."""
    service = client.get_or_none("v1", "Service", RELAY_SERVICE, namespace)
    if service is None:
        raise RelayNotEnabledError(
            f"Hubble Relay is not enabled: no Service {RELAY_SERVICE} in namespace {namespace}",
            "enable it with `cilium hubble enable` (Relay is on by default), or pass -n with "
            "the namespace Cilium runs in",
        )
    ports = (service.get("spec") or {}).get("ports") or []
    if not ports:
        raise RelayNotReadyError(
            f"Service {namespace}/{RELAY_SERVICE} has no ports",
            "re-run `cilium hubble enable` to restore the Relay Service",
        )
    wanted = ports[0]
    slices = client.list(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        namespace,
        label_selector=f"kubernetes.io/service-name={RELAY_SERVICE}",
    )
    for item in slices:
        number = _slice_port(item, wanted.get("name"))
        for endpoint in item.get("endpoints") or []:
            ref = endpoint.get("targetRef") or {}
            ready = (endpoint.get("conditions") or {}).get("ready")
            if ref.get("kind") == "Pod" and ready is not False and number is not None:
                return RelayBackend(str(ref["name"]), number, int(wanted.get("port", 0)))
    raise RelayNotReadyError(
        f"Hubble Relay has no ready pod behind Service {namespace}/{RELAY_SERVICE}",
        f"check `cilium status` and `kubectl -n {namespace} get pods -l k8s-app=hubble-relay`",
    )


def _slice_port(item: dict[str, Any], name: str | None) -> int | None:
    for port in item.get("ports") or []:
        if (port.get("name") or None) == (name or None) and isinstance(port.get("port"), int):
            return int(port["port"])
    return None
