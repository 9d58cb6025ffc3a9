"""`cilium connectivity test`'s deployment against the real API server and scheduler of the
dev cluster (kwok nodes: pods are scheduled and reported Running, nothing executes)."""

from __future__ import annotations

import re

import pytest

from ciliumctl.cli.app import main
from ciliumctl.connectivity import deploy
from ciliumctl.connectivity.params import Params
from ciliumctl.connectivity.runner import Runner
from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client


def _pods(client: Client, ns: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {
        p["metadata"]["labels"]["name"]
        + (
            "@" + p["spec"]["nodeName"] if p["metadata"]["labels"]["kind"] == "host-netns" else ""
        ): p
        for p in client.list("v1", "Pod", ns)
        if not p["metadata"].get("deletionTimestamp")
    }


def _deploy(client: Client, params: Params) -> list[str]:
    lines: list[str] = []
    runner = Runner(client, params, log=lines.append, context="it")
    deploy.deploy(client, params, non_cilium_nodes=False, log=lines.append, context="it")
    for ns in params.namespaces():
        runner._wait_ready(ns, False)
    return lines


def test_deploys_cilium_clis_workloads_and_cleans_up(
    client: Client, dev_cluster: DevCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    params = Params(test_namespace="ct-deploy", curl_image="registry.invalid/curl:1")
    ns = "ct-deploy-1"
    lines = _deploy(client, params)
    assert f"✨ [it] Creating namespace {ns} for connectivity check..." in lines
    assert "✨ [it] Deploying client2 deployment..." in lines
    waits = [line for line in lines if line.startswith("⌛")]
    pattern = rf"⌛ \[it\] Waiting for (deployment|daemonset) {ns}/[a-z0-9-]+ to become ready\.\.\."
    assert all(re.fullmatch(pattern, line) for line in waits), waits

    deps = {d["metadata"]["name"]: d for d in client.list("apps/v1", "Deployment", ns)}
    assert set(deps) == {"client", "client2", "client3", "echo-same-node", "echo-other-node"}
    for name, dep in deps.items():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert labels["name"] == name
        assert labels["kind"] == ("echo" if name.startswith("echo") else "client")
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == name
    assert deps["client2"]["spec"]["template"]["metadata"]["labels"]["other"] == "client"
    assert deps["echo-same-node"]["spec"]["template"]["metadata"]["labels"]["other"] == "echo"
    echo = deps["echo-same-node"]["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in echo] == ["echo-same-node", "dns-test-server"]
    assert (
        deps["client"]["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.invalid/curl:1"
    )
    svcs = {s["metadata"]["name"]: s for s in client.list("v1", "Service", ns)}
    assert set(svcs) == {"echo-same-node", "echo-other-node"}
    assert svcs["echo-same-node"]["spec"]["type"] == "NodePort"
    assert svcs["echo-same-node"]["spec"]["selector"] == {"name": "echo-same-node"}
    nsobj = client.get("v1", "Namespace", ns)
    assert nsobj["metadata"]["labels"]["app.kubernetes.io/name"] == "cilium-cli"

    # the real scheduler honours the affinities: same node / other node as `client`
    pods = _pods(client, ns)
    node = pods["client"]["spec"]["nodeName"]
    assert pods["client2"]["spec"]["nodeName"] == node
    assert pods["echo-same-node"]["spec"]["nodeName"] == node
    assert pods["echo-other-node"]["spec"]["nodeName"] != node
    assert pods["client3"]["spec"]["nodeName"] != node
    host_netns = [p for p in pods.values() if p["metadata"]["labels"]["kind"] == "host-netns"]
    assert len(host_netns) == len(client.list("v1", "Node"))
    assert all(p["spec"]["hostNetwork"] for p in host_netns)

    # a second deployment keeps what exists; --force-deploy recreates the workloads
    uid = deps["client"]["metadata"]["uid"]
    lines = _deploy(client, params)
    assert not any("Deploying" in line for line in lines)
    assert client.get("apps/v1", "Deployment", "client", ns)["metadata"]["uid"] == uid
    params.force_deploy = True
    lines = _deploy(client, params)
    assert f"🔥 [it] Deleting deployment {ns}/client..." in lines
    assert client.get("apps/v1", "Deployment", "client", ns)["metadata"]["uid"] != uid

    # `cilium connectivity test --cleanup` removes the namespace
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "--kubeconfig",
                str(dev_cluster.kubeconfig_path),
                "connectivity",
                "test",
                "--cleanup",
                "--test-namespace",
                "ct-deploy",
            ]
        )
    assert exit_info.value.code in (0, None)
    assert "Deleting namespace ct-deploy-1" in capsys.readouterr().out
    gone = client.get_or_none("v1", "Namespace", ns)
    assert gone is None or gone["metadata"].get("deletionTimestamp")


def test_node_selector_and_single_node(client: Client) -> None:
    node = client.list("v1", "Node")[0]["metadata"]["name"]
    params = Params(
        test_namespace="ct-single",
        single_node=True,
        node_selector={"kubernetes.io/hostname": node},
    )
    try:
        _deploy(client, params)
        deps = {d["metadata"]["name"] for d in client.list("apps/v1", "Deployment", "ct-single-1")}
        assert deps == {"client", "client2", "echo-same-node"}
        assert client.list("apps/v1", "DaemonSet", "ct-single-1") == []
        pods = _pods(client, "ct-single-1")
        assert {p["spec"]["nodeName"] for p in pods.values()} == {node}
    finally:
        client.delete("v1", "Namespace", "ct-single-1")
