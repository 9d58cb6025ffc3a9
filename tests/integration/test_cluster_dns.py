"""The cluster DNS server against the real API server: Services and EndpointSlices become
names, new Services appear within a resync, everything else is NXDOMAIN."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from ciliumctl.devcluster import DevCluster, dns
from ciliumctl.k8s import Client


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
        u.bind(("127.0.0.1", 0))
        port = int(u.getsockname()[1])
        t.bind(("127.0.0.1", port))
        return port


def dig(port: int, *args: str) -> str:
    return subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), "+time=2", "+tries=1", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=15,
    ).stdout


@pytest.fixture
def server(dev_cluster: DevCluster) -> Iterator[int]:
    port = _free_port()
    corefile = f"""cluster.local:{port} in-addr.arpa:{port} {{
    bind 127.0.0.1
    kubernetes cluster.local in-addr.arpa {{
        kubeconfig {dev_cluster.kubeconfig_path} {dev_cluster.context}
        pods insecure
        resync 0.5
    }}
}}
"""
    running = dns.DnsServer(dns.parse_corefile(corefile, "test Corefile")).start()
    try:
        deadline = time.monotonic() + 30
        while not running.ready():
            assert time.monotonic() < deadline, "kubernetes plugin never synced"
            time.sleep(0.1)
        yield port
    finally:
        running.stop()


def _service(name: str, ns: str, **spec: object) -> dict[str, object]:
    meta = {"name": name, "namespace": ns}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def test_services_resolve(client: Client, namespace: str, server: int) -> None:
    echo = client.apply(
        _service("echo", namespace, ports=[{"name": "http", "port": 8080, "protocol": "TCP"}])
    )
    client.apply(_service("db", namespace, clusterIP="None", ports=[{"name": "pg", "port": 5432}]))
    client.apply(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "db-1",
                "namespace": namespace,
                "labels": {"kubernetes.io/service-name": "db"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.1.5"], "hostname": "db-0", "conditions": {"ready": True}}
            ],
        }
    )
    client.apply(_service("ext", namespace, type="ExternalName", externalName="k8s.io"))
    cluster_ip = echo["spec"]["clusterIP"]
    fqdn = f"echo.{namespace}.svc.cluster.local"
    deadline = time.monotonic() + 15
    while dig(server, "+short", f"db-0.db.{namespace}.svc.cluster.local").split() != ["10.244.1.5"]:
        assert time.monotonic() < deadline, "new objects never became names"
        time.sleep(0.2)
    assert dig(server, "+short", fqdn, "A").split() == [cluster_ip]
    assert dig(server, "+short", f"db.{namespace}.svc.cluster.local").split() == ["10.244.1.5"]
    srv = dig(server, "+short", f"_http._tcp.{fqdn}", "SRV").split()
    assert srv[2:] == ["8080", f"{fqdn}."]
    assert dig(server, "+short", f"ext.{namespace}.svc.cluster.local", "CNAME").split() == [
        "k8s.io."
    ]
    assert dig(server, "+short", "-x", cluster_ip).split() == [f"{fqdn}."]
    assert dig(server, "+short", f"10-244-1-9.{namespace}.pod.cluster.local").split() == [
        "10.244.1.9"
    ]
    assert "status: NXDOMAIN" in dig(server, f"nope.{namespace}.svc.cluster.local")
    # deleted Services disappear again
    client.delete("v1", "Service", "echo", namespace)
    deadline = time.monotonic() + 15
    while "status: NXDOMAIN" not in dig(server, fqdn):
        assert time.monotonic() < deadline, "a deleted Service kept resolving"
        time.sleep(0.2)
