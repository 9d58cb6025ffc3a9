"""`cilium hubble port-forward` end to end: a Service named hubble-relay with a real pod on
a real node behind it (json-mock, an HTTP server), reached from 127.0.0.1 through the API
server and the node's kubelet."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys

from ciliumctl.devcluster import DevCluster, realnodes
from ciliumctl.k8s import Client, ObjectRef

NS = "rn-hubble-pf"
ECHO_IMAGE = "quay.io/cilium/json-mock:v1.3.8"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_port_forward_reaches_the_relay_pod(real_cluster: DevCluster, real_client: Client) -> None:
    c = real_client
    labels = {"k8s-app": "hubble-relay"}
    c.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    c.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "relay-standin", "namespace": NS, "labels": labels},
            "spec": {
                "nodeSelector": {realnodes.REAL_LABEL: "true"},
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "http",
                        "image": ECHO_IMAGE,
                        "ports": [{"name": "grpc", "containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}},
                    }
                ],
            },
        }
    )
    c.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "hubble-relay", "namespace": NS},
            "spec": {
                "selector": labels,
                "ports": [{"name": "grpc", "port": 80, "targetPort": "grpc"}],
            },
        }
    )
    c.wait_ready([ObjectRef("v1", "Pod", "relay-standin", NS)], timeout=180)
    port = _free_port()
    argv = [sys.executable, "-m", "ciliumctl", "--kubeconfig", str(real_cluster.kubeconfig_path)]
    proc = subprocess.Popen(
        [*argv, "-n", NS, "hubble", "port-forward", "--port-forward", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, NO_COLOR="1"),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"-> pod {NS}/relay-standin port 8080 (Service hubble-relay port 80)" in line
        for i in range(2):  # two connections, one after the other, both forwarded
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", f"/relay-{i}")
            response = conn.getresponse()
            body = response.read()
            conn.close()
            assert response.status == 200, (response.status, body[:200])
            assert json.loads(body)["path"] == f"/relay-{i}"  # json-mock echoes the request
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        c.delete("v1", "Namespace", NS)
    assert "port-forward: " not in err, err
