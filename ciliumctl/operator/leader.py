"""Leader election on a coordination.k8s.io Lease, as the chart's two operator replicas need.

A replica becomes leader by creating the Lease or by taking over one whose holder stopped
renewing for ``lease_duration``; every write carries the resourceVersion it read, so two
candidates never both win. The leader renews every ``retry_period`` and steps down when it
could not renew within ``renew_deadline``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ciliumctl.k8s.errors import ConflictError, KubeError

log = logging.getLogger("cilium-operator.leader")
LEASE_API = "coordination.k8s.io/v1"
LEASE_NAME = "cilium-operator-resource-lock"


def _micro(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class LeaderElector:
    """Campaigns for one Lease and reports leadership changes."""

    def __init__(
        self,
        client: Any,
        identity: str,
        namespace: str,
        *,
        name: str = LEASE_NAME,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_change: Callable[[bool], None] = lambda _leader: None,
    ) -> None:
        self.client = client
        self.identity = identity
        self.namespace = namespace
        self.name = name
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_change = on_change
        self.is_leader = False
        self.last_renew = 0.0
        self._stop = threading.Event()

    def try_acquire_or_renew(self) -> bool:
        """One round: True when this replica holds the Lease afterwards."""
        now = time.time()
        lease = self.client.get_or_none(LEASE_API, "Lease", self.name, self.namespace)
        spec_now = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": _micro(now),
        }
        if lease is None:
            try:
                self.client.create(
                    {
                        "apiVersion": LEASE_API,
                        "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "spec": {**spec_now, "acquireTime": _micro(now), "leaseTransitions": 0},
                    }
                )
            except ConflictError:
                return False
            self.last_renew = now
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        if holder and holder != self.identity and now < renewed + duration:
            return False  # someone else holds a live lease
        changes = dict(spec_now)
        if holder != self.identity:
            changes["acquireTime"] = _micro(now)
            changes["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        try:
            # update (PUT with the read resourceVersion): the chart's RBAC grants get and
            # update on the operator's lease, as upstream's does, not patch
            self.client.update({**lease, "spec": {**spec, **changes}})
        except ConflictError:
            return False  # another candidate wrote first
        self.last_renew = now
        return True

    def _set(self, leader: bool) -> None:
        if leader != self.is_leader:
            self.is_leader = leader
            log.info("%s %s leadership", self.identity, "acquired" if leader else "lost")
            self.on_change(leader)

    def run(self) -> None:
        """Campaign until stopped (in the calling thread)."""
        while not self._stop.is_set():
            try:
                ok = self.try_acquire_or_renew()
            except KubeError as exc:
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc.message)
                ok = False
            if ok:
                self._set(True)
            elif self.is_leader and time.time() - self.last_renew > self.renew_deadline:
                self._set(False)
            self._stop.wait(self.retry_period)

    def release(self) -> None:
        """Stop campaigning and give the Lease up so a standby takes over at once."""
        self._stop.set()
        if not self.is_leader:
            return
        lease = self.client.get_or_none(LEASE_API, "Lease", self.name, self.namespace)
        if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
            spec = {k: v for k, v in (lease.get("spec") or {}).items() if k != "holderIdentity"}
            try:
                self.client.update({**lease, "spec": {**spec, "renewTime": _micro(0)}})
            except KubeError as exc:
                log.warning("releasing the lease: %s", exc.message)
        self._set(False)
