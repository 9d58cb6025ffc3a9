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


def pod(ip: str = "10.0.0.9", host_ip: str | None = None, **spec: Any) -> dict[str, Any]:
    port: dict[str, Any] = {"containerPort": 8080, "hostPort": 4000, "protocol": "TCP"}
    if host_ip:
        port["hostIP"] = host_ip
    containers = [{"name": "echo", "ports": [port, {"containerPort": 9090}]}]
    return {"metadata": {"name": "echo", "namespace": "prod"},
            "spec": {"containers": containers, **spec}, "status": {"podIP": ip}}  # fmt: skip


def test_host_ports_of_local_pods_become_node_frontends() -> None:
    dp = RecordingDatapath()
    mgr = ServiceManager(dp, node_ips=("192.0.2.1", "192.0.2.2"), nodeport=True)
    mgr.upsert_pod(pod())
    assert set(dp.services) == {("192.0.2.1", 4000, 6), ("192.0.2.2", 4000, 6)}
    assert dp.services[("192.0.2.1", 4000, 6)].backends == (Backend("10.0.0.9", 8080),)
    assert [key for key, _fe in mgr.list()] == ["hostport:prod/echo"] * 2
    mgr.upsert_pod(pod(ip="10.0.0.10"))  # a new pod IP replaces the backend
    assert dp.services[("192.0.2.2", 4000, 6)].backends == (Backend("10.0.0.10", 8080),)
    mgr.upsert_pod(pod(), deleted=True)
    assert dp.services == {}


def test_host_port_with_a_host_ip_binds_only_that_address() -> None:
    dp = RecordingDatapath()
    mgr = ServiceManager(dp, node_ips=("192.0.2.1", "192.0.2.2"), nodeport=True)
    mgr.upsert_pod(pod(host_ip="192.0.2.2"))
    assert set(dp.services) == {("192.0.2.2", 4000, 6)}


def test_host_ports_need_kube_proxy_replacement_a_pod_ip_and_pod_networking() -> None:
    for mgr_nodeport, p in ((False, pod()), (True, pod(ip="")), (True, pod(hostNetwork=True))):
        dp = RecordingDatapath()
        ServiceManager(dp, node_ips=("192.0.2.1",), nodeport=mgr_nodeport).upsert_pod(p)
        assert dp.services == {}


def test_node_addresses_learnt_later_move_nodeport_and_host_port_frontends() -> None:
    """Pods and Services can be listed before the agent knows its Node's addresses."""
    dp = RecordingDatapath()
    mgr = ServiceManager(dp, nodeport=True)
    mgr.upsert_pod(pod())
    mgr.upsert_service(svc(30080))
    assert set(dp.services) == {("10.96.0.10", 80, 6)}
    mgr.set_node_ips(("192.0.2.1",))
    assert set(dp.services) == {
        ("10.96.0.10", 80, 6),
        ("192.0.2.1", 30080, 6),
        ("192.0.2.1", 4000, 6),
    }
    mgr.set_node_ips(("192.0.2.7",))
    assert ("192.0.2.1", 4000, 6) not in dp.services
    assert ("192.0.2.7", 4000, 6) in dp.services and ("192.0.2.7", 30080, 6) in dp.services
