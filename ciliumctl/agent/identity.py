"""Security identities in CRD mode: CiliumIdentity objects named by number from 256.

Allocation must give two agents asking for the same labels at the same moment the same
number, without a lock service. Each label set has its own deterministic probe sequence
(a hash of the sorted labels picks the first number, then the next ones in order); an agent
reuses an existing identity with the same labels, else creates the next free number of
that sequence. Creation is atomic in the API server: the loser of a race gets AlreadyExists,
reads the winner's object, finds the same labels and takes that number. Numbers held by
other label sets are skipped the same way by everyone, so both agents end on one number.
Reserved identities (host, world, health, init, ...) are never allocated.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ciliumctl.agent import labels as lbl
from ciliumctl.datapath.model import MIN_ALLOCATED_IDENTITY, ReservedIdentity
from ciliumctl.errors import CiliumctlError
from ciliumctl.k8s.errors import ConflictError
from ciliumctl.nodeconfig.selectors import key_problem, value_problem

log = logging.getLogger("cilium-agent.identity")

API_VERSION = "cilium.io/v2"
KIND = "CiliumIdentity"
#: Highest cluster-local identity number (16 bits).
MAX_ALLOCATED_IDENTITY = 65535
#: How many numbers one allocation tries before giving up.
MAX_PROBES = 4096
_RESERVED_BY_LABEL = {
    next(iter(labels)): num
    for num, labels in lbl.RESERVED_LABELS.items()
    if len(labels) == 1  # host, unmanaged, health, init, remote-node, kube-apiserver, ingress
}


class IdentityClient(Protocol):
    """The API calls allocation needs (a subset of :class:`ciliumctl.k8s.Client`)."""

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create an object; ConflictError when it exists."""
        ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """List objects (the chart's agent ClusterRole grants list, not get)."""
        ...


class IdentityExhaustedError(CiliumctlError):
    """No free identity number in the probe sequence."""


@dataclass(frozen=True)
class Allocation:
    """The outcome of one allocation."""

    identity: int
    created: bool  # this agent created the CiliumIdentity object


def labels_key(labels: Mapping[str, str]) -> str:
    """The canonical text of a label set (what allocation hashes and compares)."""
    return ";".join(lbl.format_labels(labels))


def first_candidate(labels: Mapping[str, str]) -> int:
    """Where the label set's probe sequence starts."""
    digest = hashlib.sha256(labels_key(labels).encode()).digest()
    span = MAX_ALLOCATED_IDENTITY - MIN_ALLOCATED_IDENTITY + 1
    return MIN_ALLOCATED_IDENTITY + int.from_bytes(digest[:8], "big") % span


def reserved_for(labels: Mapping[str, str]) -> int | None:
    """The reserved identity a label set stands for (``reserved:host`` -> 1), or None."""
    for key in labels:
        if key in _RESERVED_BY_LABEL:
            return int(_RESERVED_BY_LABEL[key])
    return None


def identity_object(number: int, labels: Mapping[str, str]) -> dict[str, Any]:
    """The CiliumIdentity for ``number``: security labels, and k8s labels for selection."""
    meta_labels = {}
    for key, value in labels.items():
        source, bare = lbl.split(key)
        if source == lbl.K8S and key_problem(bare) is None and value_problem(value) is None:
            meta_labels[bare] = value
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": str(number), "labels": meta_labels},
        "security-labels": dict(labels),
    }


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """The security labels of a CiliumIdentity object."""
    return {str(k): str(v) for k, v in (obj.get("security-labels") or {}).items()}


class IdentityAllocator:
    """Allocates identities and keeps the cluster's identities as the watcher reports them."""

    def __init__(self, client: IdentityClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._by_number: dict[int, dict[str, str]] = {}
        self._by_key: dict[str, int] = {}

    # -------------------------------------------------------------- cache (from the watcher)
    def observe(self, obj: Mapping[str, Any]) -> int | None:
        """Record a CiliumIdentity seen on the API (add or update); its number, or None."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        if not name.isdigit():
            return None
        number, labels = int(name), labels_of(obj)
        with self._lock:
            old = self._by_number.get(number)
            if old is not None:
                self._by_key.pop(labels_key(old), None)
            self._by_number[number] = labels
            self._by_key.setdefault(labels_key(labels), number)
        return number

    def forget(self, number: int) -> None:
        """A CiliumIdentity was deleted."""
        with self._lock:
            old = self._by_number.pop(number, None)
            if old is not None and self._by_key.get(labels_key(old)) == number:
                del self._by_key[labels_key(old)]

    def identities(self) -> dict[int, dict[str, str]]:
        """Every known allocated identity and its labels."""
        with self._lock:
            return dict(self._by_number)

    def lookup(self, labels: Mapping[str, str]) -> int | None:
        """The number of a known identity with exactly these labels."""
        reserved = reserved_for(labels)
        if reserved is not None:
            return reserved
        with self._lock:
            return self._by_key.get(labels_key(labels))

    # -------------------------------------------------------------- allocation
    def allocate(self, labels: Mapping[str, str]) -> Allocation:
        """The identity for ``labels``, creating its CiliumIdentity when none exists yet."""
        known = self.lookup(labels)
        if known is not None:
            return Allocation(known, False)
        if not labels:
            return Allocation(int(ReservedIdentity.UNMANAGED), False)
        key = labels_key(labels)
        span = MAX_ALLOCATED_IDENTITY - MIN_ALLOCATED_IDENTITY + 1
        start = first_candidate(labels)
        for step in range(min(MAX_PROBES, span)):
            number = MIN_ALLOCATED_IDENTITY + (start - MIN_ALLOCATED_IDENTITY + step) % span
            with self._lock:
                holder = self._by_number.get(number)
            if holder is not None and labels_key(holder) != key:
                continue
            try:
                created = self._client.create(identity_object(number, labels))
            except ConflictError:
                # list by name: the chart's agent ClusterRole grants list/watch, not get
                found = self._client.list(
                    API_VERSION, KIND, field_selector=f"metadata.name={number}"
                )
                if not found:  # deleted between create and list: try it again later
                    continue
                existing = found[0]
                self.observe(existing)
                if labels_key(labels_of(existing)) == key:
                    return Allocation(number, False)
                continue
            self.observe(created)
            log.info("allocated identity %d for %s", number, key)
            return Allocation(number, True)
        raise IdentityExhaustedError(
            f"no free security identity for labels {key} after {min(MAX_PROBES, span)} tries",
            "delete unused CiliumIdentity objects (the operator's identity GC does) or reduce "
            "identity-relevant labels with the 'labels' option",
        )
