"""The agent against a real API server (kwok nodes, the datapath recorded): watchers,
identities, CiliumEndpoints, policy regeneration, rejected policies, build-config."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.agent.api import serve_api
from ciliumctl.agent.config import AgentConfig
from ciliumctl.agent.daemon import Agent
from ciliumctl.datapath.model import Direction, Protocol
from ciliumctl.dbg.buildconfig import BuildConfigOptions, compute, write
from ciliumctl.dbg.client import AgentClient
from ciliumctl.k8s import Client
from ciliumctl.nodeconfig import plan
from ciliumctl.operator.ipam import ClusterPool, reconcile
from tests.unit.agent.fakes import RecordingDatapath

NODE = "kwok-node-0"
NS = "ag-e2e"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "nodeName": NODE,
            "containers": [
                {"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": 80}]}
            ],
        },
    }


@pytest.fixture
def running_agent(
    ag_cluster, tmp_path: Path
) -> Iterator[tuple[Agent, AgentClient, RecordingDatapath, Client]]:  # type: ignore[no-untyped-def]
    client = Client(str(ag_cluster.kubeconfig_path), ag_cluster.context)
    reconcile(client, ClusterPool(["10.90.0.0/16"], 24))  # the operator's part: pod CIDRs
    client.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"team": "a"}}}
    )
    sock = tmp_path / "cilium.sock"
    config = AgentConfig.load(None, {"socket-path": str(sock), "state-dir": str(tmp_path)})
    dp = RecordingDatapath()
    agent = Agent(config, dp, client, NODE)
    server = serve_api(agent, sock)
    agent.start_watchers()
    try:
        assert agent.wait_synced(60)
        wait_for("the CiliumNode's pod CIDR", lambda: agent.ipam.cidrs)
        yield agent, AgentClient(str(sock)), dp, client
    finally:
        agent.stop()
        server.shutdown()
        server.server_close()
        client.delete("v1", "Namespace", NS)


def cni_add(api: AgentClient, name: str) -> dict[str, Any]:
    ip = api.request("POST", f"/v1/ipam?owner={NS}/{name}")["address"]["ipv4"]
    return api.request(
        "PUT",
        "/v1/endpoint/0",
        {
            "k8s-namespace": NS,
            "k8s-pod-name": name,
            "container-id": f"cid-{name}",
            "interface-name": f"lxc{name[:8]}",
            "addressing": {"ipv4": ip},
        },
    )


def test_endpoints_identities_policy_on_a_real_api_server(running_agent) -> None:  # type: ignore[no-untyped-def]
    agent, api, dp, client = running_agent
    client.apply(pod("web", app="web"))
    client.apply(pod("client", app="client"))
    web = cni_add(api, "web")
    other = cni_add(api, "client")
    web_id, web_ident = web["id"], web["status"]["identity"]["id"]
    client_ident = other["status"]["identity"]["id"]
    assert web["status"]["state"] == "ready" and web_ident >= 256
    assert (
        web["status"]["networking"]["addressing"][0]["ipv4"] in agent.ipam.status()["allocations"]
    )
    # the identity and the CiliumEndpoint are in the cluster
    stored = client.get("cilium.io/v2", "CiliumIdentity", str(web_ident))
    assert stored["security-labels"]["k8s:app"] == "web"
    assert stored["security-labels"]["k8s:io.cilium.k8s.namespace.labels.team"] == "a"
    cep = wait_for(
        "the CiliumEndpoint",
        lambda: client.get_or_none("cilium.io/v2", "CiliumEndpoint", "web", NS),
    )
    assert cep["status"]["identity"]["id"] == web_ident and cep["status"]["state"] == "ready"
    # a CNP allowing client -> web:http is enforced by regeneration
    client.apply(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "allow-http", "namespace": NS},
            "spec": {
                "endpointSelector": {"matchLabels": {"app": "web"}},
                "ingress": [
                    {
                        "fromEndpoints": [{"matchLabels": {"app": "client"}}],
                        "toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}]}],
                    }
                ],
            },
        }
    )
    policy = wait_for(
        "the policy in the datapath",
        lambda: (
            dp.policies.get(web_id)
            if dp.policies.get(web_id, None) and dp.policies[web_id].ingress_enforced
            else None
        ),
    )
    assert any(
        e.identity == client_ident
        and e.direction is Direction.INGRESS
        and e.protocol is Protocol.TCP
        and e.port == 80
        for e in policy.entries
    )
    wait_for(
        "the CEP to say enforcing",
        lambda: client.get("cilium.io/v2", "CiliumEndpoint", "web", NS)["status"]["policy"][
            "ingress"
        ]["enforcing"],
    )
    # a rejected CNP is reported with the validators' message; the good one still applies
    client.apply(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "bad", "namespace": NS},
            "spec": {
                "endpointSelector": {"matchLabels": {"app": "web"}},
                "ingress": [
                    {"toPorts": [{"ports": [{"port": "80"}]}], "icmps": [{"fields": [{"type": 8}]}]}
                ],
            },
        }
    )
    got = wait_for(
        "the rejection on the endpoint",
        lambda: (e := api.get(f"/v1/endpoint/{web_id}"))["status"]["policy"]["rejected"] and e,
    )
    assert "bad" in got["status"]["policy"]["rejected"][0]
    assert dp.policies[web_id].ingress_enforced
    status = api.get("/v1/healthz")
    assert status["kubernetes"]["state"] == "Ok" and status["policy"]["rejected"]
    # deleting the allowing policy lifts enforcement (the rejected one enforces nothing)
    client.delete("cilium.io/v2", "CiliumNetworkPolicy", "allow-http", NS)
    wait_for("enforcement lifted", lambda: not dp.policies[web_id].ingress_enforced)
    # new labels: a new identity, the CEP follows
    client.patch("v1", "Pod", "web", {"metadata": {"labels": {"version": "2"}}}, NS)
    wait_for(
        "a new identity",
        lambda: (
            client.get("cilium.io/v2", "CiliumEndpoint", "web", NS)["status"]["identity"]["id"]
            != web_ident
        ),
    )
    # the pod goes: its endpoint goes
    client.delete("v1", "Pod", "client", NS)
    wait_for(
        "the endpoint removed", lambda: agent.endpoints.by_pod(NS, "client") is None, timeout=60
    )


def test_build_config_is_what_config_node_effective_prints(
    ag_client: Client, tmp_path: Path
) -> None:
    ag_client.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cilium-config", "namespace": "kube-system"},
            "data": {"enable-policy": "default", "monitor-queue-size": "4096", "debug": "false"},
        }
    )
    ag_client.apply(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNodeConfig",
            "metadata": {"name": "ag-debug", "namespace": "kube-system"},
            "spec": {
                "nodeSelector": {"matchLabels": {"kubernetes.io/hostname": NODE}},
                "defaults": {"debug": "true", "monitor-queue-size": "8192"},
            },
        }
    )
    options = BuildConfigOptions(node=NODE, namespace="kube-system", dest=tmp_path / "config-map")
    effective = compute(ag_client, options)
    write(effective, options.dest)
    config = AgentConfig.load(options.dest)
    expected, _snap = plan.effective(ag_client, "kube-system", NODE)
    for key, value in expected.plain().items():
        assert config.values[key] == value, key
    assert config.flag("debug") and config.get("monitor-queue-size") == "8192"
    other = compute(ag_client, BuildConfigOptions(node="kwok-node-1", namespace="kube-system"))
    assert other.plain()["debug"] == "false"
