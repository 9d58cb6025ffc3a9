"""Services: ClusterIP and NodePort frontends from Services and EndpointSlices."""

from __future__ import annotations

from typing import Any

from ciliumctl.agent.services import ServiceManager
from ciliumctl.datapath.model import Backend, Protocol
from tests.unit.agent.fakes import RecordingDatapath


def svc(node_port: int | None = None) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
    if node_port:
        port["nodePort"] = node_port
    spec = {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [port]}
    return {"metadata": {"name": "web", "namespace": "prod"}, "spec": spec}


def eps(name: str, *addresses: str, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "prod",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": ready}}
                          for a in addresses]}  # fmt: skip


def test_clusterip_backends_follow_endpointslices() -> None:
    dp = RecordingDatapath()
    mgr = ServiceManager(dp)
    mgr.upsert_service(svc())
    assert dp.services[("10.96.0.10", 80, 6)].backends == ()
    mgr.upsert_slice(eps("web-a", "10.0.0.5", "10.0.0.6"))
    mgr.upsert_slice(eps("web-b", "10.0.1.7"))
    mgr.upsert_slice(eps("web-c", "10.0.1.8", ready=False))
    fe = dp.services[("10.96.0.10", 80, 6)]
    assert fe.backends == (
        Backend("10.0.0.5", 8080),
        Backend("10.0.0.6", 8080),
        Backend("10.0.1.7", 8080),
    )
    assert fe.protocol is Protocol.TCP and fe.kind == "ClusterIP"
    mgr.upsert_slice(eps("web-a", "10.0.0.5"), deleted=True)
    assert dp.services[("10.96.0.10", 80, 6)].backends == (Backend("10.0.1.7", 8080),)
    mgr.delete_service(svc())
    assert dp.services == {}
    assert mgr.list() == []


def test_nodeport_only_with_kube_proxy_replacement() -> None:
    dp = RecordingDatapath()
    ServiceManager(dp, node_ips=("192.0.2.1",), nodeport=False).upsert_service(svc(30080))
    assert set(dp.services) == {("10.96.0.10", 80, 6)}
    dp = RecordingDatapath()
    mgr = ServiceManager(dp, node_ips=("192.0.2.1",), nodeport=True)
    mgr.upsert_service(svc(30080))
    assert dp.services[("192.0.2.1", 30080, 6)].kind == "NodePort"
    assert [key for key, _fe in mgr.list()] == ["prod/web", "prod/web"]
