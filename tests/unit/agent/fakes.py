"""Small fakes for the agent's unit tests: a datapath that records calls, an identity store."""

from __future__ import annotations

from typing import Any

from ciliumctl.datapath.model import (
    EndpointPolicy,
    EndpointSpec,
    IPCacheEntry,
    Protocol,
    ServiceFrontend,
)
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

    def create_endpoint(self, spec: EndpointSpec, policy: EndpointPolicy | None = None) -> None:
        self.endpoints[spec.id] = spec

    def delete_endpoint(self, spec: EndpointSpec) -> None:
        self.endpoints.pop(spec.id, None)
        self.policies.pop(spec.id, None)

    def replace_policy(self, endpoint_id: int, policy: EndpointPolicy) -> int:
        self.policies[endpoint_id] = policy
        self.policy_writes += 1
        return len(policy.entries)

    def upsert_ipcache(self, entry: IPCacheEntry) -> None:
        self.ipcache[entry.prefix] = entry

    def delete_ipcache(self, prefix: str) -> bool:
        return self.ipcache.pop(prefix, None) is not None

    def upsert_service(self, svc: ServiceFrontend) -> int:
        self.services[(svc.address, svc.port, int(svc.protocol))] = svc
        return len(self.services)

    def delete_service(self, address: str, port: int, protocol: Protocol = Protocol.TCP) -> bool:
        return self.services.pop((address, port, int(protocol)), None) is not None

    def dump_map(self, name: str) -> list[dict[str, Any]]:
        if name == "cilium_ipcache":  # decoded as the real datapath decodes it
            return [{"prefix": p, "identity": e.identity} for p, e in self.ipcache.items()]
        return []

    def map_names(self) -> list[str]:
        return ["cilium_ipcache"]

    def map_list(self) -> list[dict[str, Any]]:
        return [
            {"name": "cilium_ipcache", "path": "cilium_ipcache", "entries": len(self.ipcache),
             "max-entries": 512000}
        ]  # fmt: skip

    def events(self) -> RecordedEvents:
        return RecordedEvents(self)

    def ct_gc(self, now: float | None = None) -> int:
        return 0


class RecordedEvents:
    """Hands out the events a test queued."""

    def __init__(self, owner: RecordingDatapath) -> None:
        self.owner = owner

    def read(self, timeout: float = 1.0, until: int = 0) -> list[dict[str, Any]]:
        events, self.owner.pending_events = self.owner.pending_events, []
        return events

    def close(self) -> None:
        pass


class MemoryIdentityStore:
    """CiliumIdentity create/list semantics of the API server, in a dict (unit tests only)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if name in self.objects:
            raise ConflictError(f"ciliumidentities {name} already exists")
        self.objects[name] = obj
        return obj

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        assert field_selector is not None and field_selector.startswith("metadata.name=")
        found = self.objects.get(field_selector.removeprefix("metadata.name="))
        return [found] if found is not None else []
