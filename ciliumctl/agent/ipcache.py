"""The ipcache: every prefix the datapath must map to a security identity.

Entries come from several owners (local and remote endpoints, nodes, the API server, CIDR
policies); each owner's view is kept, the most specific owner wins for a prefix, and only
changes reach the datapath.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ciliumctl.agent.datapath import Datapath
from ciliumctl.datapath.model import IPCacheEntry

#: Owners from the most to the least authoritative for one prefix.
OWNERS = ("endpoint", "remote-endpoint", "node", "kube-apiserver", "cidr")


@dataclass(frozen=True)
class Owned:
    """One owner's claim on a prefix."""

    owner: str
    entry: IPCacheEntry


class IPCache:
    """Prefix -> identity with provenance, mirrored into the datapath."""

    def __init__(self, datapath: Datapath) -> None:
        self._datapath = datapath
        self._claims: dict[str, dict[str, IPCacheEntry]] = {}
        self._written: dict[str, IPCacheEntry] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(prefix: str) -> str:
        return prefix if "/" in prefix else prefix + ("/128" if ":" in prefix else "/32")

    def upsert(
        self, owner: str, prefix: str, identity: int, tunnel_endpoint: str | None = None
    ) -> None:
        """``owner`` says ``prefix`` has ``identity``."""
        key = self._key(prefix)
        with self._lock:
            self._claims.setdefault(key, {})[owner] = IPCacheEntry(key, identity, tunnel_endpoint)
            self._sync(key)

    def delete(self, owner: str, prefix: str) -> None:
        """``owner`` withdraws its claim on ``prefix``."""
        key = self._key(prefix)
        with self._lock:
            claims = self._claims.get(key, {})
            claims.pop(owner, None)
            if not claims:
                self._claims.pop(key, None)
            self._sync(key)

    def owned_by(self, owner: str) -> set[str]:
        """The prefixes ``owner`` claims."""
        with self._lock:
            return {p for p, claims in self._claims.items() if owner in claims}

    def _sync(self, key: str) -> None:
        claims = self._claims.get(key)
        if not claims:
            if self._written.pop(key, None) is not None:
                self._datapath.delete_ipcache(key)
            return
        best = min(claims, key=lambda o: OWNERS.index(o) if o in OWNERS else len(OWNERS))
        entry = claims[best]
        if self._written.get(key) != entry:
            self._datapath.upsert_ipcache(entry)
            self._written[key] = entry

    def entries(self) -> list[Owned]:
        """The effective entries with their owner (``cilium-dbg bpf ipcache list``)."""
        with self._lock:
            out = []
            for key in sorted(self._written):
                entry = self._written[key]
                owner = next(o for o, e in self._claims[key].items() if e == entry)
                out.append(Owned(owner, entry))
            return out
