"""Endpoints: one per local pod, from identity to an enforced policy map.

States follow upstream: ``waiting-for-identity`` (labels known, no number yet) ->
``regenerating`` (policy computed and written to the datapath) -> ``ready``. An endpoint is
regenerated when the policies or the identities its policy selects change; its
CiliumEndpoint object mirrors what the datapath enforces.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ciliumctl.agent import labels as lbl
from ciliumctl.agent.datapath import Datapath
from ciliumctl.agent.policy import EndpointContext, PolicyRepository, PolicyResult, SelectorCache
from ciliumctl.datapath.model import EndpointSpec
from ciliumctl.datapath.model import Protocol as L4
from ciliumctl.errors import CiliumctlError
from ciliumctl.spans import Steps
from ciliumctl.validators.labels import LabelFilter

log = logging.getLogger("cilium-agent.endpoint")

WAITING_FOR_IDENTITY = "waiting-for-identity"
REGENERATING = "regenerating"
READY = "ready"
NOT_READY = "not-ready"
DISCONNECTING = "disconnecting"
STATES = (WAITING_FOR_IDENTITY, REGENERATING, READY, NOT_READY, DISCONNECTING)
MAX_ENDPOINT_ID = 4095
_L4 = {"TCP": L4.TCP, "UDP": L4.UDP, "SCTP": L4.SCTP}


class Allocator(Protocol):
    """Identity allocation as the endpoint manager needs it."""

    def allocate(self, labels: Mapping[str, str]) -> Any:
        """An object with an ``identity`` number."""
        ...


class EndpointError(CiliumctlError):
    """An endpoint request the agent cannot honour."""


@dataclass
class Endpoint:
    """One local endpoint."""

    id: int
    namespace: str
    pod_name: str
    container_id: str = ""
    ifname: str = ""
    netns: str = ""
    ipv4: str | None = None
    mac: str | None = None
    host_mac: str | None = None
    node: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    security_labels: dict[str, str] = field(default_factory=dict)
    named_ports: dict[str, tuple[tuple[L4, int], ...]] = field(default_factory=dict)
    identity: int | None = None
    state: str = WAITING_FOR_IDENTITY
    result: PolicyResult | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    pod_uid: str = ""
    published: dict[str, Any] | None = None  # the CiliumEndpoint last written
    saved: dict[str, Any] | None = None  # the state record last written
    #: serialises this endpoint's datapath writes (programs, policy map), so the policy
    #: computed last is the one written last, while other endpoints go on in parallel
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def set_state(self, state: str, reason: str) -> None:
        """Record a state change (kept in the endpoint's status log, newest first)."""
        self.state = state
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.log.insert(0, {"code": "OK", "message": reason, "state": state, "timestamp": stamp})
        del self.log[20:]

    def state_record(self) -> dict[str, Any]:
        """What a restarted agent needs to take the endpoint over (its datapath state stays)."""
        return {
            "id": self.id,
            "namespace": self.namespace,
            "pod_name": self.pod_name,
            "container_id": self.container_id,
            "ifname": self.ifname,
            "netns": self.netns,
            "ipv4": self.ipv4,
            "mac": self.mac,
            "host_mac": self.host_mac,
            "identity": self.identity,
            "security_labels": self.security_labels,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], node: str) -> Endpoint:
        """An endpoint restored from :meth:`state_record`."""
        ep = cls(int(record["id"]), str(record["namespace"]), str(record["pod_name"]), node=node)
        for key in ("container_id", "ifname", "netns", "ipv4", "mac", "host_mac", "identity"):
            setattr(ep, key, record.get(key))
        ep.security_labels = dict(record.get("security_labels") or {})
        ep.set_state(WAITING_FOR_IDENTITY, "Endpoint restored from state")
        return ep

    def spec(self) -> EndpointSpec:
        """What the datapath needs."""
        return EndpointSpec(
            self.id, self.ifname, self.identity or 0, self.ipv4, None, self.mac, self.host_mac
        )

    def to_api(self) -> dict[str, Any]:
        """Upstream's Endpoint model (``cilium-dbg endpoint get -o json``)."""
        policy = self.result.policy if self.result else None
        return {
            "id": self.id,
            "spec": {"label-configuration": {"user": []}},
            "status": {
                "state": self.state,
                "identity": {
                    "id": self.identity or 0,
                    "labels": lbl.format_labels(self.security_labels),
                },
                "labels": {
                    "security-relevant": lbl.format_labels(self.security_labels),
                    "realized": {"user": []},
                    "derived": lbl.format_labels(
                        {k: v for k, v in self.labels.items() if k not in self.security_labels}
                    ),
                },
                "networking": {
                    "addressing": [{"ipv4": self.ipv4}] if self.ipv4 else [],
                    "interface-name": self.ifname,
                    "mac": self.mac or "",
                    "host-mac": self.host_mac or "",
                    "container-interface-name": "eth0",
                },
                "external-identifiers": {
                    "container-id": self.container_id,
                    "k8s-namespace": self.namespace,
                    "k8s-pod-name": self.pod_name,
                    "pod-name": f"{self.namespace}/{self.pod_name}",
                    "netns": self.netns,
                },
                "named-ports": [
                    {"name": name, "port": port, "protocol": proto.name}
                    for name, specs in sorted(self.named_ports.items())
                    for proto, port in specs
                ],
                "policy": {
                    "realized": {
                        "policy-enabled": _enabled(policy),
                        "policy-revision": self.result.revision if self.result else 0,
                        "allowed-ingress-identities": _idents(self.result, 0, False),
                        "allowed-egress-identities": _idents(self.result, 1, False),
                        "denied-ingress-identities": _idents(self.result, 0, True),
                        "denied-egress-identities": _idents(self.result, 1, True),
                    },
                    "proxy-statistics": [],
                    "policies": list(self.result.policies) if self.result else [],
                    "not-enforced": list(self.result.not_enforced) if self.result else [],
                    "rejected": list(self.result.rejected) if self.result else [],
                },
                "log": list(self.log),
            },
        }

    def to_cep(self) -> dict[str, Any]:
        """The CiliumEndpoint object for this endpoint (owned by its pod)."""
        policy = self.result.policy if self.result else None
        meta: dict[str, Any] = {"name": self.pod_name, "namespace": self.namespace}
        if self.pod_uid:
            meta["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Pod", "name": self.pod_name, "uid": self.pod_uid}
            ]
        notes = list(self.result.not_enforced) + list(self.result.rejected) if self.result else []
        return {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumEndpoint",
            "metadata": meta,
            "status": {
                "id": self.id,
                "identity": {
                    "id": self.identity or 0,
                    "labels": lbl.format_labels(self.security_labels),
                },
                "networking": {
                    "addressing": [{"ipv4": self.ipv4}] if self.ipv4 else [],
                    "node": self.node,
                },
                "state": self.state,
                "encryption": {},
                "named-ports": [
                    {"name": name, "port": port, "protocol": proto.name}
                    for name, specs in sorted(self.named_ports.items())
                    for proto, port in specs
                ],
                "policy": {
                    "ingress": {"enforcing": bool(policy and policy.ingress_enforced)},
                    "egress": {"enforcing": bool(policy and policy.egress_enforced)},
                    "not-enforced": notes,
                },
            },
        }


def _enabled(policy: Any) -> str:
    if policy is None:
        return "none"
    both = policy.ingress_enforced and policy.egress_enforced
    if both:
        return "both"
    return "ingress" if policy.ingress_enforced else "egress" if policy.egress_enforced else "none"


def _idents(result: PolicyResult | None, direction: int, deny: bool) -> list[int]:
    if result is None:
        return []
    return sorted(
        {e.identity for e in result.policy.entries if e.direction == direction and e.deny == deny}
    )


def named_ports_of(pod: Mapping[str, Any]) -> dict[str, tuple[tuple[L4, int], ...]]:
    """A pod's named container ports."""
    out: dict[str, list[tuple[L4, int]]] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            name = port.get("name")
            if name and port.get("containerPort"):
                proto = _L4.get(str(port.get("protocol") or "TCP"), L4.TCP)
                out.setdefault(str(name), []).append((proto, int(port["containerPort"])))
    return {k: tuple(v) for k, v in out.items()}


class EndpointManager:
    """The local endpoints, their identities and their regeneration."""

    def __init__(
        self,
        *,
        node: str,
        cluster: str,
        label_filter: LabelFilter,
        repository: PolicyRepository,
        cache: SelectorCache,
        allocator: Allocator,
        datapath: Datapath,
        publish: Callable[[Endpoint], None] = lambda _ep: None,
        on_regenerated: Callable[[Endpoint, float], None] = lambda _ep, _s: None,
        cluster_named_ports: Callable[[str], tuple[tuple[L4, int], ...]] = lambda _n: (),
    ) -> None:
        self.node = node
        self.cluster = cluster
        self.label_filter = label_filter
        self.repository = repository
        self.cache = cache
        self.allocator = allocator
        self.datapath = datapath
        self.publish = publish
        self.on_regenerated = on_regenerated
        self.cluster_named_ports = cluster_named_ports
        #: the index, identities and policy computation; held for in-memory work only, never
        #: for a datapath write, so a CNI lookup is not queued behind other pods' attaches.
        #: Order: an endpoint's ``lock`` first, then this one.
        self._lock = threading.RLock()
        self._endpoints: dict[int, Endpoint] = {}

    # ------------------------------------------------------------------ queries
    def list(self) -> list[Endpoint]:
        """Every endpoint, by id."""
        with self._lock:
            return [self._endpoints[i] for i in sorted(self._endpoints)]

    def get(self, endpoint_id: int) -> Endpoint | None:
        """One endpoint by id."""
        with self._lock:
            return self._endpoints.get(endpoint_id)

    def by_pod(self, namespace: str, name: str) -> Endpoint | None:
        """The endpoint of a pod."""
        with self._lock:
            for ep in self._endpoints.values():
                if (ep.namespace, ep.pod_name) == (namespace, name):
                    return ep
        return None

    def by_container(self, container_id: str) -> Endpoint | None:
        """The endpoint a CNI ADD created for a container."""
        with self._lock:
            for ep in self._endpoints.values():
                if container_id and ep.container_id == container_id:
                    return ep
        return None

    # ------------------------------------------------------------------ changes
    def _free_id(self) -> int:
        for candidate in range(1, MAX_ENDPOINT_ID + 1):
            if candidate not in self._endpoints:
                return candidate
        raise EndpointError(
            f"this node already has {MAX_ENDPOINT_ID} endpoints",
            "schedule fewer pods on this node",
        )

    def add(
        self,
        pod: Mapping[str, Any],
        namespace_labels: Mapping[str, str],
        *,
        endpoint_id: int | None = None,
        steps: Steps | None = None,
        **networking: Any,
    ) -> Endpoint:
        """Create (or update) the endpoint of ``pod`` and bring it to ``ready`` (``steps``
        times its identity, policy, datapath and regeneration)."""
        steps = steps or Steps()
        meta = pod.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name"))
        with self._lock:
            ep = self.by_pod(namespace, name)
            if ep is None:
                number = endpoint_id if endpoint_id is not None else self._free_id()
                if number in self._endpoints:
                    raise EndpointError(f"endpoint id {number} is in use", "pick another id")
                ep = Endpoint(number, namespace, name, node=self.node)
                self._endpoints[number] = ep
                ep.set_state(WAITING_FOR_IDENTITY, "Endpoint created")
        with ep.lock:
            with self._lock:
                steps.done("lock")
                for key, value in networking.items():
                    setattr(ep, key, value)
                self._set_pod(ep, pod, namespace_labels)
                steps.done("identity")
                # The programs start with the computed policy: never an allow-all moment.
                ep.result = self._compute(ep)
                spec, policy = ep.spec(), ep.result.policy
                steps.done("policy")
            self.datapath.create_endpoint(spec, policy)
            steps.done("datapath")
        self.regenerate(ep, "endpoint created")
        steps.done("regeneration")
        return ep

    def _compute(self, ep: Endpoint) -> PolicyResult:
        return self.repository.compute(
            EndpointContext(ep.security_labels, ep.named_ports),
            self.cache,
            self.cluster_named_ports,
        )

    def update_pod(
        self, pod: Mapping[str, Any], namespace_labels: Mapping[str, str], force: bool = False
    ) -> bool:
        """A pod's labels (or its namespace's) changed: re-resolve its identity
        (``force`` regenerates even when the identity stayed, e.g. after a restore)."""
        meta = pod.get("metadata") or {}
        ep = self.by_pod(str(meta.get("namespace") or "default"), str(meta.get("name")))
        if ep is None:
            return False
        before = (ep.identity, dict(ep.security_labels))
        with ep.lock:
            with self._lock:
                self._set_pod(ep, pod, namespace_labels)
                reload = ep.identity != before[0] and bool(ep.ifname)
                if reload:
                    spec, policy = ep.spec(), self._compute(ep).policy
            if reload:
                # The identity is compiled into the endpoint's programs: reload them.
                self.datapath.create_endpoint(spec, policy)
        if force or (ep.identity, ep.security_labels) != before:
            self.regenerate(ep, "labels changed" if not force else "restored")
        return True

    def _set_pod(
        self, ep: Endpoint, pod: Mapping[str, Any], namespace_labels: Mapping[str, str]
    ) -> None:
        ep.labels = lbl.endpoint_labels(dict(pod), namespace_labels, self.cluster)
        ep.security_labels = lbl.security_labels(ep.labels, self.label_filter)
        ep.named_ports = named_ports_of(pod)
        ep.pod_uid = str((pod.get("metadata") or {}).get("uid") or "")
        allocation = self.allocator.allocate(ep.security_labels)
        ep.identity = int(allocation.identity)
        self.cache.upsert(ep.identity, ep.security_labels)

    def restore(self, ep: Endpoint) -> None:
        """Take over an endpoint a previous agent created (its programs stay attached)."""
        with self._lock:
            if ep.id in self._endpoints:
                raise EndpointError(f"endpoint id {ep.id} is in use", "restore before creating")
            self._endpoints[ep.id] = ep

    def remove(self, endpoint_id: int) -> Endpoint | None:
        """Delete an endpoint (idempotent)."""
        with self._lock:
            ep = self._endpoints.pop(endpoint_id, None)
        if ep is not None:
            with ep.lock:
                ep.set_state(DISCONNECTING, "Endpoint deleted")
                self.datapath.delete_endpoint(ep.spec())
        return ep

    def regenerate(self, ep: Endpoint, reason: str) -> bool:
        """Recompute and write the endpoint's policy; True when its policy map changed."""
        if ep.identity is None:
            return False
        started = time.perf_counter()
        with ep.lock:
            with self._lock:
                ep.set_state(REGENERATING, f"Regenerating endpoint: {reason}")
                result = self._compute(ep)
                changed = ep.result is None or ep.result.policy != result.policy
            if changed:
                self.datapath.replace_policy(ep.id, result.policy)
            with self._lock:
                if ep.result is not None and ep.result.revision > result.revision:
                    # bump_revision moved it on while the map was written: the change it
                    # acknowledged did not select this endpoint, so the policy is the same
                    result = replace(result, revision=ep.result.revision)
                ep.result = result
                ep.set_state(READY, "Successfully regenerated endpoint program")
        self.on_regenerated(ep, time.perf_counter() - started)
        cep = ep.to_cep()
        if cep != ep.published:
            self.publish(ep)
            ep.published = cep
        return changed

    def bump_revision(self, revision: int, regenerated: set[int]) -> None:
        """A policy change that does not select an endpoint leaves its policy as it is, so
        its realized revision moves to ``revision`` without a regeneration, as upstream's
        endpoints do: tools (cilium-cli) wait until every endpoint has realized the new
        revision."""
        with self._lock:
            for ep in self.list():
                if ep.id not in regenerated and ep.result and ep.result.revision < revision:
                    ep.result = replace(ep.result, revision=revision)

    def regenerate_all(self, reason: str) -> int:
        """Regenerate every endpoint (policy or identity change); how many maps changed."""
        return sum(self.regenerate(ep, reason) for ep in self.list())
