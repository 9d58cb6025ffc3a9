"""Informers: a kind's objects kept current by list + watch, for the agent and the operator.

Each informer lists (recording the resourceVersion), then watches from it; a closed watch is
resumed from the last version seen, an expired one (410) or a broken connection leads to a
fresh list whose differences are delivered as events, so no change is lost across an API
server restart. A periodic resync relists the same way. Handlers run on the informer's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ciliumctl.k8s.errors import KubeError, NotFoundError

log = logging.getLogger("ciliumctl.informer")

Obj = dict[str, Any]
Handler = Callable[[str, Obj, Obj | None], None]  # (ADDED|MODIFIED|DELETED, obj, old)


def object_key(obj: Obj) -> str:
    """``namespace/name`` (or ``name``) of an object."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


@dataclass
class Informer:
    """One kind's cache, kept by list + watch in a daemon thread."""

    client: Any
    api_version: str
    kind: str
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None
    handlers: list[Handler] = field(default_factory=list)
    resync: float = 600.0
    watch_timeout: int = 300
    store: dict[str, Obj] = field(default_factory=dict)
    resource_version: str = ""
    synced: threading.Event = field(default_factory=threading.Event)
    last_error: str = ""
    relists: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Informer:
        """Start the list + watch loop in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the current watch returns."""
        self._stop.set()

    def items(self) -> list[Obj]:
        """A snapshot of the cache."""
        with self._lock:
            return list(self.store.values())

    def get(self, key: str) -> Obj | None:
        """One cached object by ``namespace/name``."""
        with self._lock:
            return self.store.get(key)

    # ------------------------------------------------------------------ loop
    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self.relist()
                backoff = 0.5
                deadline = time.monotonic() + self.resync
                while not self._stop.is_set() and time.monotonic() < deadline:
                    if not self._watch_once():
                        break  # expired: relist
            except KubeError as exc:
                self.last_error = exc.message
                log.warning("%s informer: %s; retrying in %.1fs", self.kind, exc.message, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def relist(self) -> None:
        """List everything and deliver the differences to the cache as events."""
        items, version = self.client.list_with_version(
            self.api_version,
            self.kind,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        fresh = {object_key(item): item for item in items}
        self.resource_version = version
        self.relists += 1
        with self._lock:
            old = self.store
            self.store = dict(fresh)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self._deliver("ADDED", obj, None)
            elif _rv(before) != _rv(obj):
                self._deliver("MODIFIED", obj, before)
        for key, obj in old.items():
            if key not in fresh:
                self._deliver("DELETED", obj, obj)
        self.last_error = ""
        self.synced.set()

    def _watch_once(self) -> bool:
        """Follow one watch; False when the resource version expired."""
        for event in self.client.watch(
            self.api_version,
            self.kind,
            self.namespace,
            resource_version=self.resource_version,
            timeout_seconds=self.watch_timeout,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        ):
            if self._stop.is_set():
                return True
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    return False
                raise KubeError(f"watch {self.kind}: {obj.get('message') or obj}")
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if rv:
                self.resource_version = rv
            if kind == "BOOKMARK":
                continue
            key = object_key(obj)
            with self._lock:
                before = self.store.get(key)
                if kind == "DELETED":
                    self.store.pop(key, None)
                else:
                    self.store[key] = obj
            self._deliver(str(kind), obj, before)
        return True

    def _deliver(self, kind: str, obj: Obj, old: Obj | None) -> None:
        if self._stop.is_set():
            return  # a stopped informer's owner may already be gone
        for handler in self.handlers:
            try:
                handler(kind, obj, old)
            except Exception:  # a handler bug must not stop the informer
                log.exception("%s handler failed on %s %s", self.kind, kind, object_key(obj))


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def served(client: Any, api_version: str, kind: str) -> bool:
    """Whether the API server serves ``kind`` (a CRD may be missing)."""
    try:
        client.resource(api_version, kind)
    except NotFoundError:
        return False
    return True
