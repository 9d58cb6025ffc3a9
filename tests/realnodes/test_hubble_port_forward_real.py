"""`cilium hubble port-forward` end to end: a Service named hubble-relay with a real pod on
a real node behind it (json-mock, an HTTP server), reached from 127.0.0.1 through the API
server and the node's kubelet."""

from __future__ import annotations

import http.client
import json

from ciliumctl.devcluster import DevCluster, realnodes
from ciliumctl.k8s import Client, ObjectRef
from tests.integration.test_hubble_port_forward import free_port, start_port_forward

NS = "rn-hubble-pf"
ECHO_IMAGE = "quay.io/cilium/json-mock:v1.3.8"


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
    port = free_port()
    proc = start_port_forward(real_cluster, NS, port)
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
