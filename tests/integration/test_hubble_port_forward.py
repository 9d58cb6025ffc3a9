"""`cilium hubble port-forward` against the dev cluster (kwok nodes): the errors when Relay
is not enabled or has no ready pod, and the forward set up to the pod the Service's
EndpointSlice names (kwok pods run nothing, so the connection itself is refused by the API
server and reported). tests/realnodes has the end-to-end forward to a real pod."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client, ObjectRef

from .test_install import run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_port_forward(cluster: DevCluster, namespace: str, port: int) -> subprocess.Popen[str]:
    """`cilium hubble port-forward` in the background, forwarding 127.0.0.1:``port``."""
    argv = [sys.executable, "-m", "ciliumctl", "--kubeconfig", str(cluster.kubeconfig_path)]
    return subprocess.Popen(
        [*argv, "-n", namespace, "hubble", "port-forward", "--port-forward", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, NO_COLOR="1"),
    )


def relay_service(namespace: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "hubble-relay", "namespace": namespace},
        "spec": {
            "selector": selector,
            "ports": [{"name": "grpc", "port": 80, "targetPort": 4245}],
        },
    }


def test_relay_not_enabled(dev_cluster: DevCluster, namespace: str) -> None:
    result = run(dev_cluster, "-n", namespace, "hubble", "port-forward", timeout=60)
    assert result.returncode == 1
    assert f"Hubble Relay is not enabled: no Service hubble-relay in namespace {namespace}" in (
        result.stderr
    )
    assert "cilium hubble enable" in result.stderr


def test_relay_without_ready_pod(dev_cluster: DevCluster, client: Client, namespace: str) -> None:
    client.apply(relay_service(namespace, {"k8s-app": "hubble-relay"}))
    result = run(dev_cluster, "-n", namespace, "hubble", "port-forward", timeout=60)
    assert result.returncode == 1
    assert f"Hubble Relay has no ready pod behind Service {namespace}/hubble-relay" in (
        result.stderr
    )


def test_forward_goes_to_the_endpoint_pod(
    dev_cluster: DevCluster, client: Client, namespace: str
) -> None:
    labels = {"k8s-app": "hubble-relay"}
    client.apply(relay_service(namespace, labels))
    client.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "relay-0", "namespace": namespace, "labels": labels},
            "spec": {
                "containers": [
                    {"name": "relay", "image": "relay:test", "ports": [{"containerPort": 4245}]}
                ]
            },
        }
    )
    client.wait_ready([ObjectRef("v1", "Pod", "relay-0", namespace)], timeout=60)
    deadline = time.monotonic() + 60
    while not any(
        e.get("conditions", {}).get("ready")
        for s in client.list(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            namespace,
            label_selector="kubernetes.io/service-name=hubble-relay",
        )
        for e in s.get("endpoints") or []
    ):
        assert time.monotonic() < deadline, "the EndpointSlice never listed the pod as ready"
        time.sleep(0.5)
    port = free_port()
    proc = start_port_forward(dev_cluster, namespace, port)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(f"Forwarding from 127.0.0.1:{port} -> pod {namespace}/relay-0 ")
        assert "port 4245 (Service hubble-relay port 80)" in first
        # A second forward on the same local port is refused with the fix.
        busy = run(
            dev_cluster, "-n", namespace, "hubble", "port-forward", "--local-port", str(port)
        )
        assert busy.returncode == 1 and f"local port 127.0.0.1:{port} is in use" in busy.stderr
        # kwok pods run nothing: the connection is accepted, then closed, and the failure
        # reported; the command keeps serving.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.settimeout(30)
            conn.sendall(b"ping")
            assert conn.recv(16) == b""
        assert proc.poll() is None
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "port-forward: " in err and "relay-0" in err
