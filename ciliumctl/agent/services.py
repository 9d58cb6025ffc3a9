"""Services: ClusterIP and NodePort frontends from Services and their EndpointSlices, and
the hostPorts of this node's pods (Cilium serves them with kube-proxy replacement, as the
portmap plugin would otherwise)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ciliumctl.agent.datapath import Datapath
from ciliumctl.datapath.model import Backend, Protocol, ServiceFrontend

_PROTO = {"TCP": Protocol.TCP, "UDP": Protocol.UDP, "SCTP": Protocol.SCTP}
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def _key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


class ServiceManager:
    """Keeps the datapath's service map equal to what Services + EndpointSlices say."""

    def __init__(self, datapath: Datapath, node_ips: tuple[str, ...] = (), nodeport: bool = False):
        self._datapath = datapath
        self._lock = threading.Lock()
        self._services: dict[str, dict[str, Any]] = {}
        self._slices: dict[str, dict[str, dict[str, Any]]] = {}  # service -> slice name -> slice
        self._written: dict[str, set[ServiceFrontend]] = {}
        self._hostports: dict[str, dict[str, Any]] = {}  # "hostport:<ns>/<pod>" -> local pod
        self.node_ips = node_ips
        self.nodeport = nodeport

    def upsert_service(self, svc: Mapping[str, Any]) -> None:
        """A Service was added or changed."""
        meta = svc.get("metadata") or {}
        key = _key(str(meta.get("namespace")), str(meta.get("name")))
        with self._lock:
            self._services[key] = dict(svc)
            self._sync(key)

    def delete_service(self, svc: Mapping[str, Any]) -> None:
        """A Service was deleted."""
        meta = svc.get("metadata") or {}
        key = _key(str(meta.get("namespace")), str(meta.get("name")))
        with self._lock:
            self._services.pop(key, None)
            self._sync(key)

    def upsert_slice(self, eps: Mapping[str, Any], deleted: bool = False) -> None:
        """An EndpointSlice was added, changed or (``deleted``) removed."""
        meta = eps.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            return
        key = _key(str(meta.get("namespace")), str(service))
        with self._lock:
            slices = self._slices.setdefault(key, {})
            if deleted:
                slices.pop(str(meta.get("name")), None)
            else:
                slices[str(meta.get("name"))] = dict(eps)
            self._sync(key)

    def upsert_pod(self, pod: Mapping[str, Any], deleted: bool = False) -> None:
        """A local pod changed: its containers' hostPorts become frontends on the node's
        addresses (or the port's hostIP) with the pod as the one backend."""
        meta = pod.get("metadata") or {}
        key = "hostport:" + _key(str(meta.get("namespace")), str(meta.get("name")))
        with self._lock:
            if deleted:
                self._hostports.pop(key, None)
            else:
                self._hostports[key] = dict(pod)
            self._sync(key)

    def set_node_ips(self, ips: tuple[str, ...]) -> None:
        """The node's addresses changed: NodePort and hostPort frontends follow them."""
        with self._lock:
            if ips == self.node_ips:
                return
            self.node_ips = ips
            for key in [*self._services, *self._hostports]:
                self._sync(key)

    def _hostport_frontends(self, pod: Mapping[str, Any]) -> set[ServiceFrontend]:
        out: set[ServiceFrontend] = set()
        pod_ip = str((pod.get("status") or {}).get("podIP") or "")
        spec = pod.get("spec") or {}
        if not self.nodeport or not pod_ip or ":" in pod_ip or spec.get("hostNetwork"):
            return out
        for container in spec.get("containers") or []:
            for port in container.get("ports") or []:
                if not port.get("hostPort"):
                    continue
                proto = _PROTO.get(str(port.get("protocol") or "TCP"), Protocol.TCP)
                backend = (Backend(pod_ip, int(port["containerPort"])),)
                host_ip = str(port.get("hostIP") or "")
                wildcard = host_ip in ("", "0.0.0.0")  # noqa: S104 - hostIP unset
                for address in self.node_ips if wildcard else (host_ip,):
                    out.add(
                        ServiceFrontend(address, int(port["hostPort"]), proto, "NodePort", backend)
                    )
        return out

    def backends(self, key: str, port_name: str, protocol: str) -> tuple[Backend, ...]:
        """Ready backends of a service port."""
        out: set[Backend] = set()
        for eps in self._slices.get(key, {}).values():
            if eps.get("addressType", "IPv4") != "IPv4":
                continue
            number = next(
                (
                    int(p["port"])
                    for p in eps.get("ports") or []
                    if (p.get("name") or "") == port_name
                    and (p.get("protocol") or "TCP") == protocol
                    and p.get("port")
                ),
                None,
            )
            if number is None:
                continue
            for endpoint in eps.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint.get("addresses") or []:
                    out.add(Backend(str(address), number))
        return tuple(sorted(out, key=lambda b: (b.address, b.port)))

    def frontends(self, key: str) -> set[ServiceFrontend]:
        """The frontends a service (or a pod's hostPorts) should have now."""
        if key.startswith("hostport:"):
            pod = self._hostports.get(key)
            return self._hostport_frontends(pod) if pod is not None else set()
        svc = self._services.get(key)
        if svc is None:
            return set()
        spec = svc.get("spec") or {}
        ips = [
            ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"
        ]
        out: set[ServiceFrontend] = set()
        for port in spec.get("ports") or []:
            proto_name = str(port.get("protocol") or "TCP")
            proto = _PROTO.get(proto_name, Protocol.TCP)
            backends = self.backends(key, str(port.get("name") or ""), proto_name)
            for ip in ips:
                if ":" not in ip:
                    out.add(ServiceFrontend(ip, int(port["port"]), proto, "ClusterIP", backends))
            if self.nodeport and port.get("nodePort"):
                for node_ip in self.node_ips:
                    out.add(
                        ServiceFrontend(node_ip, int(port["nodePort"]), proto, "NodePort", backends)
                    )
        return out

    def _sync(self, key: str) -> None:
        wanted = self.frontends(key)
        current = self._written.get(key, set())
        for frontend in current - wanted:
            if not any(_same(frontend, w) for w in wanted):
                self._datapath.delete_service(frontend.address, frontend.port, frontend.protocol)
        for frontend in wanted - current:
            self._datapath.upsert_service(frontend)
        if wanted:
            self._written[key] = wanted
        else:
            self._written.pop(key, None)

    def list(self) -> list[tuple[str, ServiceFrontend]]:
        """Every frontend with its service (``cilium-dbg service list``)."""
        with self._lock:
            return sorted(
                ((k, f) for k, fs in self._written.items() for f in fs),
                key=lambda item: (item[1].address, item[1].port, int(item[1].protocol)),
            )


def _same(a: ServiceFrontend, b: ServiceFrontend) -> bool:
    return (a.address, a.port, a.protocol) == (b.address, b.port, b.protocol)
