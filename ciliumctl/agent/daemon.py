"""The agent: state, Kubernetes watchers, and the status the API and ``cilium-dbg`` report.

Watchers (informers over :class:`ciliumctl.k8s.Client`) feed the policy repository, the
identity cache, the endpoint manager, the ipcache, services and IPAM. When the API server is
gone the datapath keeps what it has and the status says so.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from ciliumctl.agent import labels as lbl
from ciliumctl.agent.config import AgentConfig
from ciliumctl.agent.datapath import Datapath
from ciliumctl.agent.endpoint import STATES, Endpoint, EndpointManager
from ciliumctl.agent.health import NodeHealth
from ciliumctl.agent.identity import IdentityAllocator, labels_of
from ciliumctl.agent.ipam import IPAM
from ciliumctl.agent.ipcache import IPCache
from ciliumctl.agent.masquerade import Masquerader
from ciliumctl.agent.metrics import AgentMetrics
from ciliumctl.agent.policy import (
    KINDS,
    KNP_API_VERSION,
    KNP_KIND,
    PolicyRepository,
    SelectorCache,
    policy_key,
    reserved_identities,
    selects,
)
from ciliumctl.agent.services import ServiceManager
from ciliumctl.cni.plugin import Plumber
from ciliumctl.datapath.model import Protocol, ReservedIdentity
from ciliumctl.errors import CiliumctlError
from ciliumctl.validators.labels import build_filter
from ciliumctl.validators.policy_model import API_VERSION as CILIUM_API
from ciliumctl.versions import RUNTIME_VERSION

log = logging.getLogger("cilium-agent")

#: Local (node-scoped) identities for CIDRs start here, as upstream's.
CIDR_IDENTITY_BASE = 1 << 24
VERSION = RUNTIME_VERSION


class Controller:
    """Success/failure bookkeeping of one background task (upstream's controller status)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.success = 0
        self.failure = 0
        self.consecutive_failures = 0
        self.last_failure_msg = ""
        self.last_success = ""
        self.last_failure = ""

    def ok(self) -> None:
        """One success."""
        self.success += 1
        self.consecutive_failures = 0
        self.last_success = _now()

    def fail(self, message: str) -> None:
        """One failure."""
        self.failure += 1
        self.consecutive_failures += 1
        self.last_failure_msg = message
        self.last_failure = _now()

    def to_api(self) -> dict[str, Any]:
        """Upstream's ControllerStatus."""
        return {
            "name": self.name,
            "status": {
                "success-count": self.success,
                "failure-count": self.failure,
                "consecutive-failure-count": self.consecutive_failures,
                "last-failure-msg": self.last_failure_msg,
                "last-success-timestamp": self.last_success,
                "last-failure-timestamp": self.last_failure,
            },
        }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


#: seconds before a CiliumEndpoint the API server refused is written again
CEP_RETRY_S = 2.0


class Agent:
    """Everything one node's agent knows and does."""

    def __init__(
        self, config: AgentConfig, datapath: Datapath, client: Any, node_name: str
    ) -> None:
        self.config = config
        self.datapath = datapath
        self.client = client
        self.node_name = node_name
        self.started = time.time()
        self.metrics = AgentMetrics()
        self.label_filter, findings = build_filter(config.label_patterns, "labels")
        errors = [f.message for f in findings if f.severity.value == "error"]
        if errors:
            from ciliumctl.errors import ConfigError

            raise ConfigError(f"labels option: {'; '.join(errors)}", "fix the 'labels' patterns")
        allow_host = config.get("allow-localhost") != "policy"
        self.repository = PolicyRepository(config.cluster, config.enforcement, allow_host)
        self.cache = SelectorCache()
        self.cache.set_identities(reserved_identities())
        self.allocator = IdentityAllocator(client)
        self.ipcache = IPCache(datapath)
        self.ipam = IPAM(config.get("ipam"))
        self.services = ServiceManager(datapath, nodeport=config.flag("kube-proxy-replacement"))
        self.controllers: dict[str, Controller] = {}
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.cidr_identities: dict[str, int] = {}
        self.node_ip: str | None = None
        #: node name -> its first InternalIP (tunnel endpoints of CEPs that name a node)
        self._node_addresses: dict[str, str] = {}
        self.events: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=int(config.get("monitor-queue-size"))
        )
        self.event_seq = 0
        self.event_cond = threading.Condition()
        self.informers: dict[str, Any] = {}
        self.lock = threading.RLock()
        self.endpoints = EndpointManager(
            node=node_name,
            cluster=config.cluster,
            label_filter=self.label_filter,
            repository=self.repository,
            cache=self.cache,
            allocator=self.allocator,
            datapath=datapath,
            publish=self._publish,
            on_regenerated=self._regenerated,
            cluster_named_ports=self._cluster_named_ports,
        )
        self._remote_named_ports: dict[str, dict[str, tuple[tuple[Protocol, int], ...]]] = {}
        self._stop = threading.Event()
        self.state_dir = Path(config.get("state-dir") or "/var/run/cilium") / "state"
        self.restored: list[int] = []
        self._state_lock = threading.Lock()
        self._cep_cond = threading.Condition()
        self._cep_pending: dict[int, Endpoint] = {}
        self._cep_thread: threading.Thread | None = None
        self._cep_writing = False
        self._cep_retry: dict[int, tuple[Endpoint, float]] = {}
        #: node-to-node probes (cilium-health); None when enable-health-checking=false
        self.health: NodeHealth | None = (
            NodeHealth(node_name, int(config.get("cluster-health-port")))
            if config.flag("enable-health-checking")
            else None
        )
        #: the endpoints' veth wiring, done here for cilium-cni (the netlink module; set by
        #: the entry point, None in an agent that leaves it to the plugin)
        self.plumber: Plumber | None = None
        #: set by the agent's entry point when it masquerades (iptables in the node)
        self.masquerader: Masquerader | None = None
        self._masquerading: list[str] | None = None

    # ------------------------------------------------------------------ helpers
    def controller(self, name: str) -> Controller:
        """The controller named ``name`` (created on first use)."""
        with self.lock:
            if name not in self.controllers:
                self.controllers[name] = Controller(name)
            return self.controllers[name]

    def _regenerated(self, ep: Endpoint, seconds: float) -> None:
        self.metrics.regenerations.labels(outcome="success").inc()
        self.metrics.regeneration_time.labels(scope="total").observe(seconds)

    def _publish(self, ep: Endpoint) -> None:
        """State file and ipcache now; the CiliumEndpoint by the sync thread (upstream's
        sync-to-k8s-ciliumendpoint controller), so a CNI ADD does not wait on the API server."""
        self._save(ep)
        if ep.ipv4:
            self.ipcache.upsert("endpoint", ep.ipv4, ep.identity or 0)
        if self.client is None:
            return
        with self._cep_cond:
            self._cep_pending[ep.id] = ep
            self._cep_retry.pop(ep.id, None)
            if self._cep_thread is None:
                self._cep_thread = threading.Thread(
                    target=self._sync_ceps, name="cep-sync", daemon=True
                )
                self._cep_thread.start()
            self._cep_cond.notify()

    def _sync_ceps(self) -> None:
        """Write the latest state of each endpoint queued by :meth:`_publish`, one at a time;
        an endpoint deleted before its turn is skipped."""
        while not self._stop.is_set():
            with self._cep_cond:
                while not self._cep_pending and not self._stop.is_set():
                    now = time.monotonic()
                    for ep_id, (retry, due) in list(self._cep_retry.items()):
                        if due <= now:
                            del self._cep_retry[ep_id]
                            self._cep_pending.setdefault(ep_id, retry)
                    if not self._cep_pending:
                        self._cep_cond.wait(1.0)
                if self._stop.is_set():
                    return
                ep = self._cep_pending.pop(next(iter(self._cep_pending)))
                self._cep_writing = True
            try:
                failed = self.endpoints.get(ep.id) is ep and not self._apply_cep(ep)
            finally:
                with self._cep_cond:
                    self._cep_writing = False
            if failed:  # retried in CEP_RETRY_S unless a newer state is queued meanwhile
                with self._cep_cond:
                    self._cep_retry[ep.id] = (ep, time.monotonic() + CEP_RETRY_S)

    def flush_ceps(self, timeout: float = 30.0) -> bool:
        """Wait until every queued CiliumEndpoint is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cep_cond:
                if not (self._cep_pending or self._cep_retry or self._cep_writing):
                    return True
            time.sleep(0.02)
        return False

    def _apply_cep(self, ep: Endpoint) -> bool:
        ctl = self.controller(f"sync-to-k8s-ciliumendpoint ({ep.id})")
        try:
            cep = ep.to_cep()
            if self.node_ip:  # upstream's CEPs name the node by its IP: the tunnel endpoint
                cep["status"]["networking"]["node"] = self.node_ip
            self.client.apply(cep, field_manager="cilium-agent", force=True)
            ctl.ok()
            return True
        except Exception as exc:
            ctl.fail(str(exc))
            log.warning("CiliumEndpoint %s/%s not written: %s", ep.namespace, ep.pod_name, exc)
            return False

    def _cluster_named_ports(self, name: str) -> tuple[tuple[Protocol, int], ...]:
        found: set[tuple[Protocol, int]] = set()
        for ep in self.endpoints.list():
            found |= set(ep.named_ports.get(name, ()))
        for ports in self._remote_named_ports.values():
            found |= set(ports.get(name, ()))
        return tuple(sorted(found))

    def _update_gauges(self) -> None:
        counts = collections.Counter(ep.state for ep in self.endpoints.list())
        for state in STATES:
            self.metrics.endpoint_state.labels(endpoint_state=state).set(counts.get(state, 0))
        self.metrics.endpoint.set(sum(counts.values()))
        self.metrics.policy.set(len([p for p in self.repository.policies() if not p.errors]))
        self.metrics.policy_revision.set(self.repository.revision)
        idents = self.allocator.identities()
        self.metrics.identity.labels(type="global").set(len(idents))
        self.metrics.identity.labels(type="local").set(len(self.cidr_identities))
        self.metrics.identity.labels(type="reserved").set(len(ReservedIdentity) - 1)

    def write_runtime_config(self) -> Path:
        """``state/agent-runtime-config.json``: the parts of upstream's DaemonConfig (Go
        field names) that tools read from a running agent (cilium-cli's connectivity test
        detects features from it), with what this agent really does."""
        doc = {
            "MonitorAggregation": self.config.get("monitor-aggregation"),
            "EnableICMPRules": True,  # ICMP and ICMPv6 types are enforced by the datapath
            "EnableHealthChecking": self.health is not None,
            "EnableEndpointHealthChecking": False,  # no per-node health endpoint pods
            "EncryptNode": False,
            "NodeEncryptionOptOutLabelsString": "",
            "EnableK8sNetworkPolicy": self.config.flag("enable-k8s-networkpolicy"),
            "EnableK8sClusterNetworkPolicy": False,
            "EnableIPv4": self.config.flag("enable-ipv4"),
            "EnableIPv6": self.config.flag("enable-ipv6"),
            "EnableL7Proxy": False,  # L7 rules are not enforced (status says so)
            "RoutingMode": self.config.get("routing-mode"),
            "KubeProxyReplacement": self.config.get("kube-proxy-replacement"),
        }
        path = self.state_dir / "agent-runtime-config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, path)
        return path

    # ------------------------------------------------------------------ restart
    def _save(self, ep: Endpoint) -> None:
        """Write the endpoint's state file (atomically). Saves and removals are serialised:
        an endpoint deleted meanwhile is not written back, and a success clears an earlier
        failure of the controller."""
        with self._state_lock:
            record = ep.state_record()
            if record == ep.saved or self.endpoints.get(ep.id) is not ep:
                return
            path = self.state_dir / str(ep.id) / "ep.json"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(record))
                os.replace(tmp, path)
                ep.saved = record
            except OSError as exc:
                self.controller("endpoint-state-save").fail(str(exc))
                return
            self.controller("endpoint-state-save").ok()

    def restore_endpoints(self) -> list[Endpoint]:
        """Endpoints a previous agent left (state files); their datapath state is kept.

        Identities and policy are reconciled by :meth:`reconcile_restored` once the
        watchers are in sync; addresses are re-reserved when the pool is known.
        """
        found: list[Endpoint] = []
        if not self.state_dir.is_dir():
            return found
        for path in sorted(self.state_dir.glob("*/ep.json")):
            try:
                ep = Endpoint.from_record(json.loads(path.read_text()), self.node_name)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("state %s unreadable, skipped: %s", path, exc)
                continue
            self.endpoints.restore(ep)
            found.append(ep)
        self.restored = [ep.id for ep in found]
        log.info("restored %d endpoint(s) from %s", len(found), self.state_dir)
        return found

    def reconcile_restored(self) -> None:
        """After sync: restored endpoints whose pod is gone are removed, the others take
        their addresses back and are regenerated with the current policy, their programs
        rebuilt by this agent."""
        for endpoint_id in self.restored:
            ep = self.endpoints.get(endpoint_id)
            if ep is None:
                continue
            pod = self.pods.get(f"{ep.namespace}/{ep.pod_name}")
            if pod is None:
                self.remove_endpoint(ep.id)
                continue
            if ep.ipv4:
                try:
                    self.ipam.allocate(f"{ep.namespace}/{ep.pod_name}/restored", ep.ipv4)
                except CiliumctlError as exc:
                    self.controller(f"restore-endpoint ({ep.id})").fail(str(exc))
            self.endpoints.update_pod(pod, self.ns_labels(ep.namespace), force=True)
            if ep.result is not None:
                # Recompile and re-attach with this agent's code and configuration (the
                # identity may have changed too); tc filter replacement is atomic, so the
                # old programs forward until the new ones are in place.
                try:
                    self.datapath.create_endpoint(ep.spec(), ep.result.policy)
                except CiliumctlError as exc:
                    self.controller(f"restore-endpoint ({ep.id})").fail(str(exc))
        self.restored = []

    def remove_state(self, endpoint_id: int) -> None:
        """Forget an endpoint's state file."""
        path = self.state_dir / str(endpoint_id)
        with self._state_lock:
            for child in path.glob("*"):
                child.unlink(missing_ok=True)
            if path.is_dir():
                path.rmdir()

    # ------------------------------------------------------------------ policy
    def policy_event(self, kind: str, obj: dict[str, Any], _old: dict[str, Any] | None) -> None:
        """A CNP/CCNP/KNP changed: re-parse, refresh CIDR identities, regenerate the endpoints
        it selects (or selected); every endpoint when the CIDR identities changed."""
        key = policy_key(obj)
        before = self.repository.get(key)
        if kind == "DELETED":
            self.repository.delete(key)
            after = None
        else:
            after = self.repository.upsert(obj)
            outcome = "fail" if after.errors else "success"
            self.metrics.policy_change.labels(outcome=outcome).inc()
        if self._sync_cidr_identities():
            self.endpoints.regenerate_all("policy and CIDR identities changed")
        else:
            regenerated = set()
            for ep in self.endpoints.list():
                if selects(before, ep.security_labels) or selects(after, ep.security_labels):
                    self.endpoints.regenerate(ep, "policy changed")
                    regenerated.add(ep.id)
            self.endpoints.bump_revision(self.repository.revision, regenerated)
        self._update_gauges()

    def _sync_cidr_identities(self) -> bool:
        """CIDR identities for the prefixes policies name; True when the set changed."""
        wanted = self.repository.cidr_prefixes()
        changed = False
        for prefix in sorted(set(self.cidr_identities) - wanted):
            changed = True
            number = self.cidr_identities.pop(prefix)
            self.cache.remove(number)
            self.ipcache.delete("cidr", prefix)
        used = set(self.cidr_identities.values())
        for prefix in sorted(wanted - set(self.cidr_identities)):
            if ipaddress.ip_network(prefix).prefixlen == 0:
                continue  # the world identities cover it
            changed = True
            number = CIDR_IDENTITY_BASE + 1
            while number in used:
                number += 1
            used.add(number)
            self.cidr_identities[prefix] = number
            self.cache.upsert(number, lbl.cidr_labels(prefix))
            self.ipcache.upsert("cidr", prefix, number)
        return changed

    # ------------------------------------------------------------------ identities
    def identity_event(self, kind: str, obj: dict[str, Any], _old: dict[str, Any] | None) -> None:
        """A CiliumIdentity changed: update the selector cache and regenerate."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        if not name.isdigit():
            return
        if kind == "DELETED":
            self.allocator.forget(int(name))
            self.cache.remove(int(name))
        else:
            self.allocator.observe(obj)
            self.cache.upsert(int(name), labels_of(obj))
        self.endpoints.regenerate_all("identities changed")
        self._update_gauges()

    # ------------------------------------------------------------------ pods / namespaces
    def namespace_event(self, kind: str, obj: dict[str, Any], _old: dict[str, Any] | None) -> None:
        """Namespace labels are part of every endpoint's labels there."""
        meta = obj.get("metadata") or {}
        name = str(meta.get("name"))
        if kind == "DELETED":
            self.namespace_labels.pop(name, None)
            return
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        if self.namespace_labels.get(name) == labels:
            return
        self.namespace_labels[name] = labels
        for key, pod in list(self.pods.items()):
            if key.startswith(name + "/"):
                self.endpoints.update_pod(pod, labels)

    def pod_event(self, kind: str, obj: dict[str, Any], _old: dict[str, Any] | None) -> None:
        """A pod of this node changed: its endpoint follows its labels; deleted -> removed."""
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        self.services.upsert_pod(obj, deleted=kind == "DELETED")
        if kind == "DELETED":
            self.pods.pop(key, None)
            ep = self.endpoints.by_pod(str(meta.get("namespace")), str(meta.get("name")))
            if ep is not None:
                self.remove_endpoint(ep.id)
            return
        self.pods[key] = obj
        self.endpoints.update_pod(obj, self.namespace_labels.get(str(meta.get("namespace")), {}))

    def pod_for(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A local pod from the watch cache, else read from the API."""
        pod = self.pods.get(f"{namespace}/{name}")
        if pod is None and self.client is not None:
            pod = self.client.get_or_none("v1", "Pod", name, namespace)
            if pod is not None:
                self.pods[f"{namespace}/{name}"] = pod
        return pod

    def ns_labels(self, namespace: str) -> dict[str, str]:
        """A namespace's labels (watch cache, else the API)."""
        if namespace not in self.namespace_labels and self.client is not None:
            ns = self.client.get_or_none("v1", "Namespace", namespace)
            if ns is not None:
                labels = (ns.get("metadata") or {}).get("labels") or {}
                self.namespace_labels[namespace] = {str(k): str(v) for k, v in labels.items()}
        return self.namespace_labels.get(namespace, {"kubernetes.io/metadata.name": namespace})

    def remove_endpoint(self, endpoint_id: int) -> Endpoint | None:
        """Delete an endpoint, its ipcache entry and its address."""
        ep = self.endpoints.remove(endpoint_id)
        self.remove_state(endpoint_id)
        if ep is not None and ep.ipv4:
            self.ipcache.delete("endpoint", ep.ipv4)
            self.ipam.release(ep.ipv4)
        self._update_gauges()
        return ep

    # ------------------------------------------------------------------ cluster topology
    def cep_event(self, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Remote endpoints (other nodes' CiliumEndpoints) into the ipcache."""
        status = obj.get("status") or {}
        networking = status.get("networking") or {}
        if networking.get("node") == self.node_ip or networking.get("node") == self.node_name:
            return
        key = f"{(obj.get('metadata') or {}).get('namespace')}/{obj['metadata']['name']}"
        previous = ((old or {}).get("status") or {}).get("networking") or {}
        for addr in previous.get("addressing") or []:
            if addr.get("ipv4"):
                self.ipcache.delete("remote-endpoint", addr["ipv4"])
        if kind == "DELETED":
            self._remote_named_ports.pop(key, None)
            return
        identity = int((status.get("identity") or {}).get("id") or 0)
        node = str(networking.get("node") or "")
        node = self._node_addresses.get(node, node)  # a node name (older agents) -> its IP
        tunnel = node if self.config.get("routing-mode") == "tunnel" else None
        for addr in networking.get("addressing") or []:
            if addr.get("ipv4") and identity:
                self.ipcache.upsert("remote-endpoint", addr["ipv4"], identity, tunnel)
        ports: dict[str, list[tuple[Protocol, int]]] = {}
        for port in status.get("named-ports") or []:
            proto = Protocol[str(port.get("protocol") or "TCP")]
            ports.setdefault(str(port["name"]), []).append((proto, int(port["port"])))
        self._remote_named_ports[key] = {k: tuple(v) for k, v in ports.items()}

    def node_event(self, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Node addresses into the ipcache (host / remote-node); podCIDR for kubernetes IPAM."""
        meta = obj.get("metadata") or {}
        name = str(meta.get("name"))
        local = name == self.node_name
        for address in _node_ips(old or {}):
            self.ipcache.delete("node", address)
        if kind == "DELETED":
            if self.health is not None:
                self.health.set_node(name, None)
            return
        identity = ReservedIdentity.HOST if local else ReservedIdentity.REMOTE_NODE
        ips = _node_ips(obj)
        if ips:
            self._node_addresses[name] = ips[0]
        if self.health is not None:
            self.health.set_node(name, ips[0] if ips else None)
        # node addresses are reached through the underlay, not the overlay: the nodes route
        # to each other (and to each other's podCIDRs) already, and the host stack, not an
        # endpoint program, answers for a node address
        for address in ips:
            self.ipcache.upsert("node", address, int(identity), None)
        if local:
            self.node_ip = ips[0] if ips else None
            self.services.set_node_ips(tuple(ips))
            if self.config.get("ipam") == "kubernetes":
                spec = obj.get("spec") or {}
                self.ipam.set_cidrs(spec.get("podCIDRs") or [spec.get("podCIDR") or ""][:1])
                self._pod_cidrs_changed()

    def ciliumnode_event(self, kind: str, obj: dict[str, Any], _old: dict[str, Any] | None) -> None:
        """This node's CiliumNode: the pod CIDRs the operator allocated (cluster-pool)."""
        if (obj.get("metadata") or {}).get("name") != self.node_name or kind == "DELETED":
            return
        if self.config.get("ipam") == "cluster-pool":
            cidrs = ((obj.get("spec") or {}).get("ipam") or {}).get("podCIDRs") or []
            self.ipam.set_cidrs(cidrs)
            self._pod_cidrs_changed()

    def _pod_cidrs_changed(self) -> None:
        if self.masquerader is not None and self.ipam.cidrs != self._masquerading:
            self._masquerading = self.ipam.cidrs
            self.masquerader.sync(self._masquerading)

    def slice_event(self, kind: str, obj: dict[str, Any], _old: dict[str, Any] | None) -> None:
        """EndpointSlices: service backends; the kubernetes service's are the API server."""
        self.services.upsert_slice(obj, deleted=kind == "DELETED")
        meta = obj.get("metadata") or {}
        service = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if meta.get("namespace") == "default" and service == "kubernetes":
            for prefix in self.ipcache.owned_by("kube-apiserver"):
                self.ipcache.delete("kube-apiserver", prefix)
            if kind != "DELETED":
                for endpoint in obj.get("endpoints") or []:
                    for address in endpoint.get("addresses") or []:
                        ident = int(ReservedIdentity.KUBE_APISERVER)
                        self.ipcache.upsert("kube-apiserver", str(address), ident)

    def service_event(self, kind: str, obj: dict[str, Any], _old: dict[str, Any] | None) -> None:
        """Services: frontends."""
        if kind == "DELETED":
            self.services.delete_service(obj)
        else:
            self.services.upsert_service(obj)

    # ------------------------------------------------------------------ watchers
    def start_watchers(self) -> None:
        """Start one informer per watched kind (the CRD kinds only when served)."""
        from ciliumctl.k8s.informer import Informer, served

        if self.client is None:
            return
        local = f"spec.nodeName={self.node_name}"
        specs: list[tuple[str, str, str, Any, str | None]] = [
            ("namespaces", "v1", "Namespace", self.namespace_event, None),
            ("nodes", "v1", "Node", self.node_event, None),
            ("pods", "v1", "Pod", self.pod_event, local),
            ("services", "v1", "Service", self.service_event, None),
            ("endpointslices", "discovery.k8s.io/v1", "EndpointSlice", self.slice_event, None),
            ("networkpolicies", KNP_API_VERSION, KNP_KIND, self.policy_event, None),
            ("ciliumidentities", CILIUM_API, "CiliumIdentity", self.identity_event, None),
            ("ciliumendpoints", CILIUM_API, "CiliumEndpoint", self.cep_event, None),
            ("ciliumnodes", CILIUM_API, "CiliumNode", self.ciliumnode_event, None),
        ]
        specs += [(k.lower() + "s", CILIUM_API, k, self.policy_event, None) for k in KINDS[:2]]
        if not self.config.flag("enable-k8s-networkpolicy"):
            specs = [s for s in specs if s[0] != "networkpolicies"]
        for name, api, kind, handler, field_selector in specs:
            if not served(self.client, api, kind):
                self.controller(f"k8s-watch-{name}").fail(f"{kind} ({api}) is not served")
                continue
            informer = Informer(
                self.client, api, kind, field_selector=field_selector, handlers=[handler]
            )
            self.informers[name] = informer.start()

    def wait_synced(self, timeout: float) -> bool:
        """Whether every informer finished its first list within ``timeout``."""
        deadline = time.monotonic() + timeout
        for informer in self.informers.values():
            if not informer.synced.wait(max(deadline - time.monotonic(), 0)):
                return False
        return True

    # ------------------------------------------------------------------ monitor
    def pump_events(self) -> None:
        """Read the datapath's events into the monitor ring and the drop/forward counters."""
        reader = None
        while not self._stop.is_set():
            try:
                if reader is None:
                    reader = self.datapath.events()
                for event in reader.read(timeout=1.0):
                    self._record_event(event_dict(event))
                self.controller("monitor-events").ok()
            except Exception as exc:
                self.controller("monitor-events").fail(str(exc))
                reader = None
                self._stop.wait(1.0)
        if reader is not None:
            reader.close()

    def maintenance(self, interval: float = 30.0) -> None:
        """Conntrack GC and map pressure, every ``interval`` seconds."""
        while not self._stop.wait(interval):
            ctl = self.controller("ct-map-gc")
            try:
                self.datapath.ct_gc()
                for name, limit in MAP_LIMITS.items():
                    if name in self.datapath.map_names():
                        used = len(self.datapath.dump_map(name))
                        self.metrics.map_pressure.labels(map_name=name).set(used / limit)
                ctl.ok()
            except Exception as exc:
                ctl.fail(str(exc))

    def health_probes(self, interval: float = 60.0) -> None:
        """Probe the nodes every ``interval`` seconds (upstream's probe interval) until the
        agent stops; nothing when health checking is off."""
        if self.health is not None:
            self.health.run(self._stop, interval)

    def _record_event(self, event: dict[str, Any]) -> None:
        direction = str(event.get("direction") or "INGRESS").upper()
        if event.get("type") == "drop":
            reason = str(event.get("reason") or "unknown")
            self.metrics.drop.labels(reason=reason, direction=direction).inc()
        elif event.get("type") == "trace":
            self.metrics.forward.labels(direction=direction).inc()
        with self.event_cond:
            self.event_seq += 1
            self.events.append({"seq": self.event_seq, **event})
            self.event_cond.notify_all()

    def events_since(self, seq: int, timeout: float) -> list[dict[str, Any]]:
        """Monitor events after ``seq``, waiting up to ``timeout`` for the first."""
        with self.event_cond:
            if self.event_seq <= seq:
                self.event_cond.wait(timeout)
            return [e for e in self.events if e["seq"] > seq]

    def stop(self) -> None:
        """Stop background work (the datapath keeps its state)."""
        self._stop.set()
        with self._cep_cond:
            self._cep_cond.notify_all()
        for informer in self.informers.values():
            informer.stop()

    # ------------------------------------------------------------------ status
    def k8s_status(self) -> dict[str, Any]:
        """Upstream's K8sStatus: Ok when every watcher is in sync with the API server."""
        if self.client is None:
            return {"state": "Disabled", "msg": "no Kubernetes client"}
        broken = {n: i.last_error for n, i in self.informers.items() if i.last_error}
        unsynced = [n for n, i in self.informers.items() if not i.synced.is_set()]
        if broken:
            first = next(iter(broken.items()))
            return {
                "state": "Failure" if len(broken) == len(self.informers) else "Warning",
                "msg": f"API server unreachable or failing ({first[0]}: {first[1]}); the "
                "datapath keeps its current state",
                "k8s-api-versions": sorted(self.informers),
            }
        if unsynced:
            return {"state": "Warning", "msg": f"waiting for sync: {', '.join(unsynced)}"}
        version = ""
        try:
            version = str(self.client.server_version().get("gitVersion") or "")
        except Exception as exc:
            return {
                "state": "Warning",
                "msg": f"API server unreachable ({exc}); the datapath keeps its current state",
                "k8s-api-versions": sorted(self.informers),
            }
        return {"state": "Ok", "msg": version, "k8s-api-versions": sorted(self.informers)}

    def status(self) -> dict[str, Any]:
        """Upstream's StatusResponse (``GET /v1/healthz``)."""
        k8s = self.k8s_status()
        not_enforced = sorted(
            {n for ep in self.endpoints.list() if ep.result for n in ep.result.not_enforced}
        )
        rejected = sorted({f"{p.key}: {e}" for p in self.repository.policies() for e in p.errors})
        failing = [c for c in self.controllers.values() if c.consecutive_failures]
        cilium_state = "Ok"
        messages = []
        if k8s["state"] == "Failure":
            cilium_state = "Warning"
            messages.append(k8s["msg"])
        if rejected:
            messages.append(f"{len(rejected)} policy error(s)")
        kpr = self.config.flag("kube-proxy-replacement")
        tunnel = self.config.get("routing-mode") == "tunnel"
        return {
            "cilium": {"state": cilium_state, "msg": "; ".join(messages)},
            "kubernetes": k8s,
            "kube-proxy-replacement": {
                "mode": "True" if kpr else "False",
                "features": {"nodePort": {"enabled": kpr}, "hostPort": {"enabled": False}},
            },
            "host-routing": {"mode": "Legacy"},
            "masquerading": (
                self.masquerader.status() if self.masquerader is not None else {"enabled": False}
            ),
            "routing": {
                "intra-host-routing-mode": "Legacy",
                "inter-host-routing-mode": "Tunnel" if tunnel else "Native",
                "tunnel-protocol": self.config.get("tunnel-protocol").upper() if tunnel else "",
            },
            "controllers": [c.to_api() for c in sorted(self.controllers.values(), key=_by_name)],
            "failing-controllers": len(failing),
            "proxy": {
                "state": "Disabled",
                "msg": "no L7 proxy in this agent: L7 rules and toFQDNs are not enforced "
                "(traffic they would allow is denied)",
                "total-redirects": 0,
            },
            "hubble": {"state": "Disabled", "msg": "Hubble is not provided by this agent"},
            "cluster": {
                "ciliumHealth": (
                    self.health.summary()
                    if self.health is not None
                    else {"state": "Disabled", "msg": "enable-health-checking=false"}
                ),
                "nodes": [
                    {
                        "name": self.node_name,
                        "primary-address": {"ipv4": {"enabled": True, "ip": self.node_ip or ""}},
                    }
                ],
            },
            "ipam": self.ipam.status(),
            "encryption": {"mode": "Disabled"},
            "identity-range": {"min-identity": 256, "max-identity": 65535},
            "policy": {
                "revision": self.repository.revision,
                "not-enforced": not_enforced,
                "rejected": rejected,
            },
            "stale": {},
            "version": VERSION,
            "uptime-seconds": round(time.time() - self.started, 1),
        }

    def healthy(self, require_k8s: bool = True) -> bool:
        """What /healthz answers (the kubelet's probes)."""
        state = self.status()
        if require_k8s and state["kubernetes"]["state"] == "Failure":
            return False
        return bool(state["cilium"]["state"] in ("Ok", "Warning"))


#: Maximum entries of the maps whose pressure is reported (the datapath's defaults).
MAP_LIMITS = {"cilium_ipcache": 512000, "cilium_ct4_global": 262144}
_PROTO_NAMES = {1: "ICMPv4", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}


def event_dict(event: Any) -> dict[str, Any]:
    """A datapath event as the monitor's JSON (dicts pass through)."""
    if isinstance(event, dict):
        return event
    kind = str(getattr(event.type, "name", event.type)).lower().replace("_", "-")
    proto = _PROTO_NAMES.get(int(event.protocol), str(event.protocol))
    return {
        "type": kind,
        "reason": event.reason_text,
        "reason-code": int(event.reason),
        "direction": str(getattr(event.direction, "name", event.direction)),
        "src": f"{event.src}:{event.sport}",
        "dst": f"{event.dst}:{event.dport}",
        "proto": proto,
        "src-label": int(event.src_identity),
        "dst-label": int(event.dst_identity),
        "endpoint": int(event.endpoint),
        "ifindex": int(event.ifindex),
        "length": int(event.length),
        "verdict": "DENIED" if event.dropped else "ALLOWED",
        "match": str(getattr(event.match, "name", event.match)),
        "timestamp-ns": int(event.timestamp_ns),
    }


def _by_name(ctl: Controller) -> str:
    return ctl.name


def _node_ips(node: dict[str, Any]) -> list[str]:
    addresses = (node.get("status") or {}).get("addresses") or []
    return [
        str(a["address"])
        for a in addresses
        if a.get("type") == "InternalIP" and ":" not in str(a.get("address"))
    ]
