"""Small fakes for the agent's unit tests: a datapath that records calls, an identity store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ciliumctl.datapath.model import EndpointPolicy, EndpointSpec, IPCacheEntry, ServiceFrontend
from ciliumctl.k8s.errors import ConflictError


class RecordingDatapath:
    """Keeps what the agent wrote, as the BPF maps would hold it."""

    def __init__(self) -> None:
        self.endpoints: dict[int, EndpointSpec] = {}
        self.policies: dict[int, EndpointPolicy] = {}
        self.ipcache: dict[str, IPCacheEntry] = {}
        self.services: dict[tuple[str, int, int], ServiceFrontend] = {}
        self.policy_writes = 0
        self.pending_events: list[dict[str, Any]] = []

    def create_endpoint(self, spec: EndpointSpec) -> None:
        self.endpoints[spec.id] = spec

    def delete_endpoint(self, endpoint_id: int) -> None:
        self.endpoints.pop(endpoint_id, None)
        self.policies.pop(endpoint_id, None)

    def replace_policy(self, endpoint_id: int, policy: EndpointPolicy) -> None:
        self.policies[endpoint_id] = policy
        self.policy_writes += 1

    def upsert_ipcache(self, entry: IPCacheEntry) -> None:
        self.ipcache[entry.prefix] = entry

    def delete_ipcache(self, prefix: str) -> None:
        self.ipcache.pop(prefix, None)

    def upsert_service(self, frontend: ServiceFrontend) -> None:
        self.services[(frontend.address, frontend.port, int(frontend.protocol))] = frontend

    def delete_service(self, frontend: ServiceFrontend) -> None:
        self.services.pop((frontend.address, frontend.port, int(frontend.protocol)), None)

    def dump_map(self, name: str) -> list[dict[str, Any]]:
        if name == "cilium_ipcache_v2":
            return [{"key": p, "value": {"identity": e.identity}} for p, e in self.ipcache.items()]
        return []

    def maps(self) -> list[dict[str, Any]]:
        return [{"name": "cilium_ipcache_v2", "max-entries": 512000, "entries": len(self.ipcache)}]

    def events(self, timeout: float) -> Iterator[dict[str, Any]]:
        events, self.pending_events = self.pending_events, []
        yield from events

    def ct_gc(self) -> int:
        return 0


class MemoryIdentityStore:
    """CiliumIdentity create/get semantics of the API server, in a dict (unit tests only)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if name in self.objects:
            raise ConflictError(f"ciliumidentities {name} already exists")
        self.objects[name] = obj
        return obj

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self.objects.get(name)
