"""cilium-cni + cilium-agent + the eBPF datapath, for real: a real API server (kwok node), the
kernel's BPF and netlink, pods as network namespaces this test creates (sealed: nothing routes
out of the node namespace). CNI runs as a process inside the node namespace, as containerd
would run it on the node; policy from a CNP is enforced on real packets; monitor sees drops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.agent.api import serve_api
from ciliumctl.agent.config import AgentConfig
from ciliumctl.agent.daemon import Agent
from ciliumctl.cni.plugin import host_ifname
from ciliumctl.datapath import Datapath, netlink
from ciliumctl.dbg.client import AgentClient
from ciliumctl.k8s import Client
from ciliumctl.operator.ipam import ClusterPool, reconcile
from tests.datapath.conftest import Namespaces, _require_root
from tests.datapath.traffic import Server, probe

pytestmark = pytest.mark.datapath
ONLY_80 = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "only-80", "namespace": "ag-cni"},
    "spec": {
        "endpointSelector": {"matchLabels": {"app": "server"}},
        "ingress": [
            {
                "fromEndpoints": [{"matchLabels": {"app": "client"}}],
                "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}],
            }
        ],
    },
}
NODE = "kwok-node-1"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def node(
    ag_cluster, bpffs: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    _require_root()
    ns = "ag-cni-" + ("deny" if "deny" in request.node.name else "add")
    client = Client(str(ag_cluster.kubeconfig_path), ag_cluster.context)
    reconcile(client, ClusterPool(["10.90.0.0/16"], 24))
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for name, app in (("client", "client"), ("server", "server")):
        client.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns,
                      "labels": {"app": app}}, "spec": {"nodeName": NODE,
                      "containers": [{"name": "c", "image": "busybox"}]}})  # fmt: skip
    spaces = Namespaces()
    root = os.path.join(bpffs, "ag-cni")
    os.makedirs(root, exist_ok=True)
    node_ns = spaces.new("node")
    netlink.enable_forwarding(node_ns)
    sock = tmp_path / "cilium.sock"
    config = AgentConfig.load(None, {"socket-path": str(sock), "state-dir": str(tmp_path)})
    running: dict[str, Any] = {}

    def start() -> Agent:
        """One agent process's worth: a datapath on the pinned maps, API, watchers."""
        dp = Datapath(root, netns=node_ns, routing="native")
        agent = Agent(config, dp, client, NODE)
        agent.restore_endpoints()
        running.update(agent=agent, dp=dp, server=serve_api(agent, sock))
        agent.start_watchers()
        threading.Thread(target=agent.pump_events, daemon=True).start()
        assert agent.wait_synced(60)
        wait_for("the pod CIDR", lambda: agent.ipam.cidrs)
        agent.reconcile_restored()
        return agent

    def stop() -> None:
        running["agent"].stop()
        running["server"].shutdown()
        running["server"].server_close()
        running["dp"].close()

    start()
    try:
        yield {
            "running": running,
            "client": client,
            "sock": str(sock),
            "node_ns": node_ns,
            "spaces": spaces,
            "api": AgentClient(str(sock)),
            "start": start,
            "stop": stop,
            "ns": ns,
        }
    finally:
        stop()
        spaces.cleanup()
        client.delete("v1", "Namespace", ns)


def in_ns(policy: dict[str, Any], ns: str) -> dict[str, Any]:
    return {**policy, "metadata": {**policy["metadata"], "namespace": ns}}


def cni(node: dict[str, Any], command: str, pod: str, pod_ns: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "CNI_COMMAND": command, "CNI_CONTAINERID": f"ctr-{pod}",
           "CNI_NETNS": f"/var/run/netns/{pod_ns}", "CNI_IFNAME": "eth0",
           "CNI_ARGS": f"K8S_POD_NAMESPACE={node['ns']};K8S_POD_NAME={pod}"}  # fmt: skip
    conf = json.dumps({"cniVersion": "1.0.0", "name": "cilium", "type": "cilium-cni",
                       "socket-path": node["sock"]})  # fmt: skip
    code = "import sys; from ciliumctl.cni.plugin import main; sys.exit(main())"
    proc = subprocess.run(
        ["ip", "netns", "exec", node["node_ns"], sys.executable, "-c", code],
        input=conf,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout or "{}")


def test_cni_add_traffic_policy_del(node: dict[str, Any]) -> None:
    spaces: Namespaces = node["spaces"]
    pods = {name: spaces.new(name) for name in ("client", "server")}
    results = {}
    for name, pod_ns in pods.items():
        code, result = cni(node, "ADD", name, pod_ns)
        assert code == 0, result
        results[name] = result
    server_ip = results["server"]["ips"][0]["address"].split("/")[0]
    client_ip = results["client"]["ips"][0]["address"].split("/")[0]
    assert server_ip in node["running"]["agent"].ipam.status()["allocations"]
    assert netlink.attached_programs(host_ifname("ctr-server"), node["node_ns"]) == {
        "ingress": "cil_from_container",
        "egress": "cil_to_container",
    }
    # the address is in the pod's namespace
    addrs = subprocess.run(["ip", "-n", pods["server"], "-4", "-o", "addr", "show", "eth0"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert f"{server_ip}/32" in addrs
    srv = Server(pods["server"], "tcp", 80)
    srv81 = Server(pods["server"], "tcp", 81)
    try:
        assert probe(pods["client"], "tcp", server_ip, "80", "before") == (0, "ok before")
        # a CNP allowing client -> server:80 only
        node["client"].apply(in_ns(ONLY_80, node["ns"]))
        ep = node["running"]["agent"].endpoints.by_pod(node["ns"], "server")
        wait_for("enforcement", lambda: ep.result and ep.result.policy.ingress_enforced)
        node["running"]["dp"].ct_flush()
        assert probe(pods["client"], "tcp", server_ip, "80", "allowed") == (0, "ok allowed")
        code, _out = probe(pods["client"], "tcp", server_ip, "81", "refused")
        assert code != 0
        assert not any("refused" in line for line in srv81.received())
        drops = wait_for("a policy drop in the monitor", lambda: [
            e for e in node["api"].get("/v1/monitor?since=0&timeout=1&type=drop")["events"]
            if e.get("reason") == "Policy denied"])  # fmt: skip
        assert drops[0]["dst-label"] == ep.identity
        assert (
            drops[0]["src-label"]
            == node["running"]["agent"].endpoints.by_pod(node["ns"], "client").identity
        )
        assert client_ip in drops[0]["src"]
        # the CNP deleted: traffic flows again
        node["client"].delete("cilium.io/v2", "CiliumNetworkPolicy", "only-80", node["ns"])
        wait_for("enforcement lifted", lambda: not ep.result.policy.ingress_enforced)
        assert probe(pods["client"], "tcp", server_ip, "81", "again") == (0, "ok again")
    finally:
        srv.stop()
        srv81.stop()
    for name, pod_ns in pods.items():
        assert cni(node, "DEL", name, pod_ns) == (0, {})
        assert cni(node, "DEL", name, pod_ns) == (0, {})  # idempotent
    links = subprocess.run(["ip", "-n", node["node_ns"], "-o", "link"], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert host_ifname("ctr-server") not in links
    assert node["running"]["agent"].ipam.status()["allocations"] == {}
    assert node["running"]["agent"].endpoints.list() == []


DENY_81 = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "deny-81", "namespace": "ag-cni"},
    "spec": {
        "endpointSelector": {"matchLabels": {"app": "server"}},
        "ingress": [{"fromEntities": ["cluster"]}],
        "ingressDeny": [
            {
                "fromEndpoints": [{"matchLabels": {"app": "client"}}],
                "toPorts": [{"ports": [{"port": "81", "protocol": "TCP"}]}],
            }
        ],
    },
}


def test_deny_beats_allow_and_a_restart_keeps_a_connection(node: dict[str, Any]) -> None:
    spaces: Namespaces = node["spaces"]
    pods = {name: spaces.new(name) for name in ("client", "server")}
    ips = {}
    for name, pod_ns in pods.items():
        code, result = cni(node, "ADD", name, pod_ns)
        assert code == 0, result
        ips[name] = result["ips"][0]["address"].split("/")[0]
    node["client"].apply(in_ns(DENY_81, node["ns"]))
    ep = node["running"]["agent"].endpoints.by_pod(node["ns"], "server")
    wait_for("the deny rule", lambda: ep.result and any(e.deny for e in ep.result.policy.entries))
    servers = [Server(pods["server"], "tcp", 80), Server(pods["server"], "tcp", 81)]
    hold = subprocess.Popen(
        ["ip", "netns", "exec", pods["client"], sys.executable,
         os.path.join(os.path.dirname(__file__), "..", "..", "datapath", "netprobe.py"),
         "hold", ips["server"], "80"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # the cluster entity allows 80 and 81; the deny rule wins on 81
        assert probe(pods["client"], "tcp", ips["server"], "80", "ok80") == (0, "ok ok80")
        assert probe(pods["client"], "tcp", ips["server"], "81", "denied")[0] != 0
        assert hold.stdin is not None and hold.stdout is not None
        assert hold.stdout.readline().strip() == "connected"

        def roundtrip(msg: str) -> str:
            assert hold.stdin is not None and hold.stdout is not None
            hold.stdin.write(msg + "\n")
            hold.stdin.flush()
            return hold.stdout.readline().strip()

        assert roundtrip("before") == "ok before"
        before = {e.id: (e.identity, e.ipv4) for e in node["running"]["agent"].endpoints.list()}
        node["stop"]()  # the agent goes away; the datapath keeps forwarding
        assert roundtrip("agent-down") == "ok agent-down"
        again = node["start"]()
        after = {e.id: (e.identity, e.ipv4) for e in again.endpoints.list()}
        assert after == before
        assert all(e.state == "ready" for e in again.endpoints.list())
        assert roundtrip("agent-back") == "ok agent-back"
        assert probe(pods["client"], "tcp", ips["server"], "81", "still-denied")[0] != 0
    finally:
        hold.kill()
        hold.wait(5)
        for srv in servers:
            srv.stop()
    for name, pod_ns in pods.items():
        assert cni(node, "DEL", name, pod_ns) == (0, {})
