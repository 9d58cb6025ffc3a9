"""The datapath facade the agent drives (implemented by :mod:`ciliumctl.datapath`).

The agent computes :mod:`ciliumctl.datapath.model` objects; an implementation writes them
into BPF maps. Declared here as a Protocol so the agent's logic is testable without a kernel.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from ciliumctl.datapath.model import EndpointPolicy, EndpointSpec, IPCacheEntry, ServiceFrontend


class Datapath(Protocol):
    """What the agent asks of the kernel side."""

    def create_endpoint(self, spec: EndpointSpec) -> None:
        """Attach the programs to the endpoint's host veth and record it in the endpoint map."""
        ...

    def delete_endpoint(self, endpoint_id: int) -> None:
        """Detach and forget an endpoint (idempotent)."""
        ...

    def replace_policy(self, endpoint_id: int, policy: EndpointPolicy) -> None:
        """Replace the endpoint's whole policy map atomically."""
        ...

    def upsert_ipcache(self, entry: IPCacheEntry) -> None:
        """Map a prefix to its identity (and tunnel endpoint)."""
        ...

    def delete_ipcache(self, prefix: str) -> None:
        """Remove a prefix (idempotent)."""
        ...

    def upsert_service(self, frontend: ServiceFrontend) -> None:
        """Install or replace a service frontend and its backends."""
        ...

    def delete_service(self, frontend: ServiceFrontend) -> None:
        """Remove a service frontend (idempotent)."""
        ...

    def dump_map(self, name: str) -> list[dict[str, Any]]:
        """The entries of one BPF map as plain data."""
        ...

    def maps(self) -> list[dict[str, Any]]:
        """Every map: name, path, max entries, current entries (for pressure and map list)."""
        ...

    def events(self, timeout: float) -> Iterator[dict[str, Any]]:
        """Monitor events (drop / trace / policy-verdict) read within ``timeout`` seconds."""
        ...

    def ct_gc(self) -> int:
        """Remove expired conntrack entries; how many."""
        ...
