"""Real nodes end to end: kubelet + containerd per node in namespaces of their own, the
bridge CNI, kube-proxy, cluster DNS, images from the cluster's registry, the sealed network,
and a ``down`` that leaves nothing behind. Tests run in file order; the last one brings the
cluster down and checks the host."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.devcluster import DevCluster, netns, network, realnodes
from ciliumctl.k8s import Client, KubeError, ObjectRef

NS = "rn-test"
CLIENT_IMAGE = "quay.io/cilium/alpine-curl:v1.10.0"
ECHO_IMAGE = "quay.io/cilium/json-mock:v1.3.8"
PAUSE_IMAGE = realnodes.SANDBOX_IMAGE


def _state(cluster: DevCluster) -> dict[str, Any]:
    return dict(json.loads(cluster.state_file.read_text()))


def _nodes(cluster: DevCluster) -> list[realnodes.RealNode]:
    return [realnodes.node_from_dict(n) for n in _state(cluster)["real_nodes"]]


def _in_node(node: realnodes.RealNode, argv: list[str], timeout: float = 10) -> str:
    """Run ``argv`` in the node's namespaces (as a hostNetwork pod would see the node)."""
    return subprocess.run(
        ["nsenter", "-t", str(node.holder_pid), "--mount", "--uts", "--net", "--", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    ).stdout


def _curl_code(node: realnodes.RealNode, url: str) -> int:
    """curl's exit code from the node towards ``url`` (bounded: 2 s)."""
    return subprocess.run(
        [
            "nsenter",
            f"--net={node.netns_path}",
            "--",
            "curl",
            "-sk",
            "-o",
            "/dev/null",
            "--connect-timeout",
            "2",
            "-m",
            "3",
            url,
        ],
        capture_output=True,
        timeout=10,
        check=False,
    ).returncode


@pytest.fixture(scope="module")
def workload(real_cluster: DevCluster, real_client: Client) -> dict[str, Any]:
    """An echo Deployment spread over both nodes, its Service and a client pod per node."""
    c = real_client
    c.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    labels = {"app": "echo"}
    c.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "echo", "namespace": NS},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": {realnodes.REAL_LABEL: "true"},
                        "terminationGracePeriodSeconds": 1,
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "DoNotSchedule",
                                "labelSelector": {"matchLabels": labels},
                            }
                        ],
                        "containers": [
                            {
                                "name": "echo",
                                "image": ECHO_IMAGE,
                                "ports": [{"containerPort": 8080}],
                                "readinessProbe": {"tcpSocket": {"port": 8080}},
                            }
                        ],
                    },
                },
            },
        }
    )
    c.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo", "namespace": NS},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    for node in ("real-node-0", "real-node-1"):
        c.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"client-{node}", "namespace": NS},
                "spec": {
                    "nodeName": node,
                    "containers": [{"name": "client", "image": CLIENT_IMAGE}],
                    "terminationGracePeriodSeconds": 1,
                },
            }
        )
    refs = [
        ObjectRef("apps/v1", "Deployment", "echo", NS),
        ObjectRef("v1", "Pod", "client-real-node-0", NS),
        ObjectRef("v1", "Pod", "client-real-node-1", NS),
    ]
    c.wait_ready(refs, timeout=180)
    echo = {
        p["spec"]["nodeName"]: p["status"]["podIP"]
        for p in c.list("v1", "Pod", NS, label_selector="app=echo")
    }
    return {"echo": echo}


def _exec(client: Client, pod: str, command: list[str]) -> tuple[int, str]:
    result = client.exec(NS, pod, command, timeout=30)
    return result.exit_code, result.stdout.decode() + result.stderr.decode()


def test_real_nodes_ready_labelled_and_in_status(
    real_cluster: DevCluster, real_client: Client
) -> None:
    nodes = {
        n["metadata"]["name"]: n
        for n in real_client.list("v1", "Node", label_selector=f"{realnodes.REAL_LABEL}=true")
    }
    assert sorted(nodes) == ["real-node-0", "real-node-1"]
    for node in nodes.values():
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready[0]["status"] == "True"
        assert node["spec"]["podCIDR"]
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == node["metadata"]["name"]
        assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.34.4"
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    status = real_cluster.status()
    assert status.healthy
    assert [r.name for r in status.real_nodes] == ["real-node-0", "real-node-1"]
    for r in status.real_nodes:
        assert r.kubelet_healthy and r.containerd_healthy and r.holder_running
        assert r.pod_cidr == nodes[r.name]["spec"]["podCIDR"]
        assert r.rss_bytes > 10 * 2**20
    assert status.registry.startswith("127.0.0.1:")
    assert status.network["world_ipv4"] == ["1.1.1.1", "1.0.0.1"]


def test_each_node_has_its_own_namespaces_and_paths(real_cluster: DevCluster) -> None:
    first, second = _nodes(real_cluster)
    for node in (first, second):
        assert _in_node(node, ["hostname"]).strip() == node.name
        ifaces = set(_in_node(node, ["ls", "/sys/class/net"]).split())
        assert "eth0" in ifaces
        host_only = {"ifb0", "ifb1", *(p.name for p in Path("/sys/class/net").iterdir())} - {
            "lo",
            "eth0",
        }
        assert not ifaces & host_only  # the host's interfaces are not visible
        mounts = _in_node(node, ["cat", "/proc/self/mountinfo"])
        bpf = [line for line in mounts.splitlines() if " /sys/fs/bpf " in line]
        assert bpf and "shared:" in bpf[-1] and " bpf " in bpf[-1]
        # containerd's image store is in the node's memory, not on the host's disk
        store = [line for line in mounts.splitlines() if " /var/lib/containerd " in line]
        assert store and " - tmpfs " in store[-1]
    # the router's bridge keeps its own MAC whatever ports join (a changing gateway MAC
    # black-holes the traffic of nodes that joined earlier until their ARP entry expires)
    addr = network.Addressing(real_cluster.name, int(_state(real_cluster)["network"]["slot"]))
    link = subprocess.run(
        ["ip", "-n", addr.router_ns, "-d", "link", "show", "br0"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"link/ether {addr.gateway_mac} " in link
    poke = f"import socket; socket.socket(2, 2).sendto(b'arp', ({addr.gateway!r}, 9))"
    for node in (first, second):
        deadline = time.monotonic() + 10
        neigh = ""
        while addr.gateway_mac not in neigh and time.monotonic() < deadline:
            _in_node(node, ["python3", "-c", poke])  # resolves the gateway's MAC
            time.sleep(0.2)
            neigh = _in_node(node, ["ip", "neigh", "show", addr.gateway])
        assert addr.gateway_mac in neigh, neigh
    assert _in_node(first, ["cat", "/etc/machine-id"]) != _in_node(
        second, ["cat", "/etc/machine-id"]
    )
    # a file written under a node path is seen by that node only
    _in_node(first, ["touch", "/etc/cni/net.d/only-on-0"])
    assert "only-on-0" not in _in_node(second, ["ls", "/etc/cni/net.d"])
    _in_node(first, ["rm", "/etc/cni/net.d/only-on-0"])


def test_pods_talk_within_and_across_nodes_and_through_the_service(
    real_client: Client, workload: dict[str, Any]
) -> None:
    echo = workload["echo"]
    assert sorted(echo) == ["real-node-0", "real-node-1"]
    code, out = _exec(real_client, "client-real-node-0", ["ip", "-4", "-o", "addr", "show"])
    client_ip = next(line.split()[3].split("/")[0] for line in out.splitlines() if "eth0" in line)
    for where in ("real-node-0", "real-node-1"):  # same node, other node
        code, out = _exec(
            real_client,
            "client-real-node-0",
            ["curl", "-s", "--connect-timeout", "3", f"http://{echo[where]}:8080/hello"],
        )
        assert code == 0, out
        seen = json.loads(out)
        assert seen["path"] == "/hello"
        assert client_ip in json.dumps(seen)  # the source address is preserved
    code, out = _exec(
        real_client,
        "client-real-node-1",
        ["curl", "-s", "--connect-timeout", "3", f"http://echo.{NS}.svc.cluster.local/svc"],
    )
    assert code == 0, out
    assert json.loads(out)["path"] == "/svc"


def test_kubectl_logs(real_client: Client, workload: dict[str, Any]) -> None:
    del workload
    pod = real_client.list("v1", "Pod", NS, label_selector="app=echo")[0]["metadata"]["name"]
    deadline = time.monotonic() + 20
    while not real_client.pod_logs(NS, pod):
        assert time.monotonic() < deadline, "the echo pod never logged anything"
        time.sleep(0.5)


def test_dns_of_cluster_and_world_names(real_client: Client, workload: dict[str, Any]) -> None:
    del workload
    code, out = _exec(
        real_client, "client-real-node-0", ["nslookup", "kubernetes.default.svc.cluster.local"]
    )
    assert code == 0 and "10.96.0.1" in out, out
    code, out = _exec(real_client, "client-real-node-0", ["nslookup", "one.one.one.one"])
    assert code == 0 and "1.1.1.1" in out, out
    code, out = _exec(
        real_client,
        "client-real-node-1",
        ["curl", "-s", "--connect-timeout", "3", "https://one.one.one.one/"],
    )
    assert code == 0, out  # the world's HTTPS certificate is trusted by the client image


def test_network_is_sealed_from_nodes_and_pods(
    real_cluster: DevCluster, real_client: Client, workload: dict[str, Any]
) -> None:
    del workload
    status = real_cluster.status(with_nodes=False)
    info = status.network
    api_port = int(status.server.rsplit(":", 1)[1])
    reg_port = int(status.registry.rsplit(":", 1)[1])
    node = _nodes(real_cluster)[0]
    host = info["host_ip"]
    # allowed: the world, the API server and the registry through the host link
    assert _curl_code(node, "http://1.1.1.1/") == 0
    assert _curl_code(node, f"https://{host}:{api_port}/readyz") == 0
    assert _curl_code(node, f"http://{host}:{reg_port}/v2/") == 0
    # everything else: the host's own addresses (its uplink included), other host ports,
    # the router's own addresses, the host's uplink gateway
    uplink = network.netns.run(["ip", "-j", "-4", "addr", "show", "scope", "global"])
    uplink_ips = [
        a["local"]
        for i in json.loads(uplink)
        for a in i.get("addr_info", [])
        if i["ifname"] != info["host_if"]
    ]
    denied = [f"http://{ip}:22/" for ip in uplink_ips] + [
        "http://192.0.2.1/",
        f"http://{host}:22/",
        f"http://{host}:10250/",
        f"http://{info['gateway']}:22/",
    ]
    for url in denied:
        assert _curl_code(node, url) != 0, url
    # the router routes nothing but the underlay, the world and the host link
    routes = netns.ip("-4", "route", "show", ns=info["router_ns"])
    assert "default" not in routes
    # from a pod: same answers
    allowed = ["http://1.1.1.1/", f"https://{host}:{api_port}/readyz"]
    for url, ok in [(u, True) for u in allowed] + [(u, False) for u in denied]:
        code, out = _exec(
            real_client,
            "client-real-node-0",
            ["curl", "-sk", "-o", "/dev/null", "--connect-timeout", "2", "-m", "3", url],
        )
        assert (code == 0) is ok, f"{url}: {code} {out}"


def test_kubelet_restart_keeps_pods_running(
    real_cluster: DevCluster, real_client: Client, workload: dict[str, Any]
) -> None:
    del workload
    before = {
        p["metadata"]["name"]: p["status"]["containerStatuses"][0]["containerID"]
        for p in real_client.list("v1", "Pod", NS)
    }
    node = _nodes(real_cluster)[0]
    realnodes.stop_pid(node.kubelet_pid, "kubelet")
    assert not real_cluster.status(with_nodes=False).healthy  # status shows the dead kubelet
    real_cluster.up(0, timeout=120)  # restarts it
    after_nodes = _nodes(real_cluster)
    assert after_nodes[0].kubelet_pid != node.kubelet_pid
    assert after_nodes[0].holder_pid == node.holder_pid
    assert real_cluster.status(with_nodes=False).healthy
    deadline = time.monotonic() + 60
    while True:  # the new kubelet serves exec once it has synced its pods
        try:
            code, out = _exec(real_client, "client-real-node-0", ["true"])
            break
        except KubeError:
            assert time.monotonic() < deadline, "exec never worked after the kubelet restart"
            time.sleep(1)
    assert code == 0, out
    after = {
        p["metadata"]["name"]: p["status"]["containerStatuses"][0]["containerID"]
        for p in real_client.list("v1", "Pod", NS)
    }
    assert after == before  # same containers, not restarted


def test_down_leaves_nothing_behind(real_cluster: DevCluster) -> None:
    state = _state(real_cluster)
    addr = network.Addressing(real_cluster.name, state["network"]["slot"])
    nodes = _nodes(real_cluster)
    pids = [n.holder_pid for n in nodes] + [n.containerd_pid for n in nodes]
    real_cluster.down()
    assert not netns.exists(addr.router_ns) and not netns.exists(addr.world_ns)
    assert not any(netns.exists(n.netns) for n in nodes)
    assert not netns.link_exists(addr.host_if)
    tables = netns.run(["nft", "list", "tables"])
    assert addr.nft_table not in tables
    assert str(addr.underlay) not in netns.ip("-4", "route", "show")
    for mount in realnodes.cgroup_mounts():
        assert not any((mount / n.cgroup).exists() for n in nodes), mount
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert real_cluster.name not in mountinfo
    assert not any(realnodes.pid_alive(p, "") for p in pids)
    assert not (network.SLOT_DIR / f"{addr.slot}.json").exists()
    assert not real_cluster.state_dir.exists()
