"""The datapath facade the agent drives: :class:`ciliumctl.datapath.Datapath` fits it.

The agent computes :mod:`ciliumctl.datapath.model` objects; the datapath writes them into
BPF maps. Declared here as a Protocol so the agent's logic is testable without a kernel.
"""

from __future__ import annotations

from typing import Any, Protocol

from ciliumctl.datapath.model import (
    EndpointPolicy,
    EndpointSpec,
    IPCacheEntry,
    ServiceFrontend,
)
from ciliumctl.datapath.model import (
    Protocol as L4,
)


class EventSource(Protocol):
    """The monitor ring buffer reader."""

    def read(self, timeout: float = 1.0, until: int = 0) -> list[Any]:
        """Events (drop / trace / policy-verdict objects) read within ``timeout`` seconds."""
        ...

    def close(self) -> None:
        """Release the ring buffer."""
        ...


class Datapath(Protocol):
    """What the agent asks of the kernel side."""

    def create_endpoint(self, spec: EndpointSpec, policy: EndpointPolicy | None = None) -> None:
        """Load and attach the endpoint's programs and record it in the endpoint map."""
        ...

    def delete_endpoint(self, spec: EndpointSpec) -> None:
        """Detach and forget an endpoint (idempotent)."""
        ...

    def replace_policy(self, endpoint_id: int, policy: EndpointPolicy) -> int:
        """Replace the endpoint's whole policy map atomically; the entries written."""
        ...

    def upsert_ipcache(self, entry: IPCacheEntry) -> None:
        """Map a prefix to its identity (and tunnel endpoint)."""
        ...

    def delete_ipcache(self, prefix: str) -> bool:
        """Remove a prefix (idempotent)."""
        ...

    def upsert_service(self, svc: ServiceFrontend) -> int:
        """Install or replace a service frontend and its backends."""
        ...

    def delete_service(self, address: str, port: int, protocol: L4 = L4.TCP) -> bool:
        """Remove a service frontend (idempotent)."""
        ...

    def map_names(self) -> list[str]:
        """The pinned maps."""
        ...

    def map_list(self) -> list[dict[str, Any]]:
        """Each pinned map with its name, path, entry count and size."""
        ...

    def dump_map(self, name: str) -> list[dict[str, Any]]:
        """The entries of one BPF map as plain data."""
        ...

    def events(self) -> EventSource:
        """A reader of the monitor events."""
        ...

    def ct_gc(self, now: float | None = None) -> int:
        """Remove expired conntrack entries; how many."""
        ...
