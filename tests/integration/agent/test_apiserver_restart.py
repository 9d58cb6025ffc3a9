"""The agent across an API server restart (a dev cluster of its own, ``ag-restart``): it says
so in status while the API server is gone, reconnects, and picks up what changed."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from ciliumctl.agent.config import AgentConfig
from ciliumctl.agent.daemon import Agent
from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client, KubeError, ObjectRef
from ciliumctl.operator.crds import register_missing
from tests.integration.agent.helpers import wait_for
from tests.unit.agent.fakes import RecordingDatapath

CNP = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "after-restart", "namespace": "default"},
    "spec": {"endpointSelector": {}, "ingress": [{"fromEntities": ["cluster"]}]},
}


def test_watchers_reconnect_after_an_api_server_restart(
    tmp_path: Path, ag_cluster: DevCluster
) -> None:
    # ag_cluster only orders this after the shared cluster (binaries built); own cluster here
    cluster = DevCluster("ag-restart", tmp_path / "ag-restart")
    restarted: subprocess.Popen[bytes] | None = None
    try:
        cluster.up(1, timeout=240)
        client = Client(str(cluster.kubeconfig_path), cluster.context)
        crds = register_missing(client)
        client.wait_ready(
            [ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", n) for n in crds],
            timeout=60,
        )
        config = AgentConfig.load(None, {"state-dir": str(tmp_path / "state")})
        agent = Agent(config, RecordingDatapath(), client, "kwok-node-0")
        agent.start_watchers()
        for informer in agent.informers.values():
            informer.watch_timeout = 5  # short watches: the restart is noticed quickly
        assert agent.wait_synced(60)
        assert agent.k8s_status()["state"] == "Ok"
        apiserver = next(c for c in cluster.components() if c.name == "kube-apiserver")
        os.kill(apiserver.pid, signal.SIGKILL)  # the API server dies
        status = wait_for("the outage in status", lambda: (s := agent.k8s_status())["state"]
                          in ("Warning", "Failure") and s, timeout=60)  # fmt: skip
        assert "datapath keeps its current state" in status["msg"]
        assert agent.status()["cilium"]["state"] in ("Ok", "Warning")  # still serving
        # ... and comes back on the same address, as a real control plane's does
        with open(apiserver.log, "ab") as log:
            restarted = subprocess.Popen(
                apiserver.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for("the API server back, serving CNPs", lambda: _apply(client), timeout=120)
        wait_for("the CNP made after the restart", lambda: any(
            str(p.key) == "CiliumNetworkPolicy default/after-restart"
            for p in agent.repository.policies()), timeout=90)  # fmt: skip
        wait_for("status Ok again", lambda: agent.k8s_status()["state"] == "Ok", timeout=60)
        agent.stop()
    finally:
        if restarted is not None:
            restarted.kill()
            restarted.wait(10)
        cluster.down()


def _apply(client: Client) -> bool:
    try:
        client.apply(CNP)
    except KubeError:
        return False
    return True
