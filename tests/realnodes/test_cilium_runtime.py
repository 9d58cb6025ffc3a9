"""The project's own Cilium runtime on 2 real nodes, installed by ``cilium install``: agent
and operator images from the cluster's registry, agents Ready, the CNI config written, pods
addressed by Cilium from their node's podCIDR and reaching each other across nodes, a CNP
allowing one port (the other dropped, "Policy denied" in ``cilium-dbg monitor``), and
``cilium status --wait`` green. Tests run in file order on one cluster of their own."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.devcluster import DevCluster, realnodes
from ciliumctl.k8s import Client, ObjectRef

NS = "cilium-rt"
CLIENT_IMAGE = "quay.io/cilium/alpine-curl:v1.10.0"
ECHO_IMAGE = "quay.io/cilium/json-mock:v1.3.8"
NODES = ("real-node-0", "real-node-1")


def _cilium(
    cluster: DevCluster, *args: str, timeout: float = 420
) -> subprocess.CompletedProcess[str]:
    """The ``cilium`` CLI against the cluster (as a user runs it)."""
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig_path))
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """2 real nodes without a CNI, then ``cilium install``; removed afterwards."""
    state = Path(os.environ.get("CILIUMCTL_TEST_STATE_DIR") or tmp_path_factory.mktemp("crt"))
    name = os.environ.get("CILIUMCTL_TEST_CILIUM_CLUSTER", "rn-cilium")
    dev = DevCluster(name, state_dir=state / name)
    try:
        dev.up(0, real_nodes=len(NODES), timeout=600)
        # identity GC quick enough to watch (upstream's 15m interval / 30m timeout)
        gc = (
            "--set",
            "operator.identityGCInterval=5s",
            "--set",
            "operator.identityHeartbeatTimeout=10s",
        )
        installed = _cilium(dev, "install", *gc)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        yield dev
    finally:
        if dev.exists():
            dev.down()


@pytest.fixture(scope="module")
def client(cluster: DevCluster) -> Client:
    return Client(str(cluster.kubeconfig_path), cluster.context)


def _agents(client: Client) -> dict[str, dict[str, Any]]:
    pods = client.list("v1", "Pod", "kube-system", label_selector="k8s-app=cilium")
    return {p["spec"]["nodeName"]: p for p in pods}


def _exec(
    client: Client, ns: str, pod: str, argv: list[str], container: str | None = None
) -> tuple[int, str]:
    result = client.exec(ns, pod, argv, container, timeout=40)
    return result.exit_code, result.stdout.decode() + result.stderr.decode()


def _curl(client: Client, url: str) -> tuple[int, str]:
    """curl from the client pod on real-node-1 (bounded: 3 s connect, 5 s total)."""
    return _exec(
        client,
        NS,
        "client",
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--connect-timeout",
            "3",
            "-m",
            "5",
            url,
        ],
    )


def test_agents_run_the_local_images_and_write_the_cni_config(
    cluster: DevCluster, client: Client
) -> None:
    ds = ObjectRef("apps/v1", "DaemonSet", "cilium", "kube-system")
    op = ObjectRef("apps/v1", "Deployment", "cilium-operator", "kube-system")
    client.wait_ready([ds, op], timeout=300)
    agents = _agents(client)
    assert sorted(agents) == list(NODES)
    for pod in agents.values():
        image = pod["spec"]["containers"][0]["image"]
        assert image == f"{realnodes.REGISTRY_NAME}/ciliumctl/cilium:0.1.0", image
    state = json.loads(cluster.state_file.read_text())
    for node in state["real_nodes"]:
        conf = Path(node["dir"]) / "mounts" / realnodes.NODE_DIRS["/etc/cni/net.d"]
        path = conf / "05-cilium.conflist"
        deadline = time.monotonic() + 90  # the agent writes it once its watchers synced
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(1)
        conflist = json.loads(path.read_text())
        assert conflist["plugins"][0]["type"] == "cilium-cni"


@pytest.fixture(scope="module")
def workload(client: Client) -> dict[str, str]:
    """An echo pod on real-node-0 (HTTP on 8080 and 9090), a client pod on real-node-1."""
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    echo = [
        {"name": f"echo-{port}", "image": ECHO_IMAGE, "env": [{"name": "PORT", "value": str(port)}]}
        for port in (8080, 9090)
    ]
    pods = {
        "echo": (NODES[0], {"app": "echo"}, echo),
        "client": (NODES[1], {"app": "client"}, [{"name": "client", "image": CLIENT_IMAGE}]),
    }
    for name, (node, labels, containers) in pods.items():
        client.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": NS, "labels": labels},
                "spec": {
                    "nodeName": node,
                    "terminationGracePeriodSeconds": 1,
                    "containers": containers,
                },
            }
        )
    client.wait_ready([ObjectRef("v1", "Pod", n, NS) for n in pods], timeout=240)
    return {n: client.get("v1", "Pod", n, NS)["status"]["podIP"] for n in pods}


def test_pods_get_addresses_from_their_nodes_pod_cidr_and_reach_each_other(
    client: Client, workload: dict[str, str]
) -> None:
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in client.list("v1", "Node")}
    assert ipaddress.ip_address(workload["echo"]) in ipaddress.ip_network(cidrs[NODES[0]])
    assert ipaddress.ip_address(workload["client"]) in ipaddress.ip_network(cidrs[NODES[1]])
    ceps = {c["metadata"]["name"]: c for c in client.list("cilium.io/v2", "CiliumEndpoint", NS)}
    assert set(ceps) == {"echo", "client"}
    assert all(c["status"]["identity"]["id"] >= 256 for c in ceps.values())
    for port in (8080, 9090):
        code, out = _curl(client, f"http://{workload['echo']}:{port}/")
        assert (code, out) == (0, "200")


def test_a_cnp_allows_one_port_and_the_other_is_dropped_as_policy_denied(
    client: Client, workload: dict[str, str]
) -> None:
    client.apply(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "echo-8080", "namespace": NS},
            "spec": {
                "endpointSelector": {"matchLabels": {"app": "echo"}},
                "ingress": [
                    {
                        "fromEndpoints": [{"matchLabels": {"app": "client"}}],
                        "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
                    }
                ],
            },
        }
    )
    agent = _agents(client)[NODES[0]]["metadata"]["name"]
    allowed = (0, "")
    for _ in range(20):  # the policy is enforced once the echo endpoint regenerated
        code, _out = _curl(client, f"http://{workload['echo']}:9090/")
        if code != 0:
            break
    monitor: dict[str, tuple[int, str]] = {}

    def watch() -> None:
        monitor["out"] = _exec(
            client,
            "kube-system",
            agent,
            ["timeout", "10", "cilium-dbg", "monitor", "--type", "drop"],
            "cilium-agent",
        )

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        threading.Event().wait(3)
        allowed = _curl(client, f"http://{workload['echo']}:8080/")
        denied = _curl(client, f"http://{workload['echo']}:9090/")
    finally:
        thread.join(timeout=30)
    assert allowed == (0, "200")
    assert denied[0] != 0, denied
    drops = monitor["out"][1]
    assert "Policy denied" in drops and f"{workload['echo']}:9090" in drops, drops


def test_a_policy_the_validators_reject_is_reported_on_the_endpoint_and_the_rest_applies(
    client: Client, workload: dict[str, str]
) -> None:
    """A CNP the agent's sanitizer rejects (ports and ICMP in one rule) selecting the echo
    pod: the endpoint and the agent log name it with the validators' message, and the
    policy already in force (echo-8080) still allows 8080 and denies 9090."""
    bad = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "bad", "namespace": NS},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "echo"}},
            "ingress": [
                {
                    "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}],
                    "icmps": [{"fields": [{"type": 8}]}],
                }
            ],
        },
    }
    client.apply(bad)
    agent = _agents(client)[NODES[0]]["metadata"]["name"]
    try:

        def rejected() -> list[str]:
            code, out = _exec(
                client, "kube-system", agent, ["cilium-dbg", "endpoint", "list", "-o", "json"],
                "cilium-agent",
            )  # fmt: skip
            assert code == 0, out
            for ep in json.loads(out):
                ids = ep["status"]["external-identifiers"]
                if ids["pod-name"] == f"{NS}/echo":
                    return list(ep["status"]["policy"]["rejected"])
            return []

        found = _until(rejected)
        assert found and found[0].startswith(f"CiliumNetworkPolicy {NS}/bad: "), found
        logs = client.pod_logs("kube-system", agent, container="cilium-agent").decode()
        assert any("rejected" in line and f"{NS}/bad" in line for line in logs.splitlines())
        code, status = _exec(
            client, "kube-system", agent, ["cilium-dbg", "status", "-o", "json"], "cilium-agent"
        )
        assert code == 0, status
        assert any(f"{NS}/bad" in r for r in json.loads(status)["policy"]["rejected"])
        assert _curl(client, f"http://{workload['echo']}:8080/") == (0, "200")
        assert _curl(client, f"http://{workload['echo']}:9090/")[0] != 0
    finally:
        client.delete("cilium.io/v2", "CiliumNetworkPolicy", "bad", NS)


def _cnp(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"endpointSelector": {"matchLabels": {"app": "echo"}}, **spec},
    }


def _until(check: Any, tries: int = 20) -> Any:
    """The first truthy result of ``check()`` (about 1 s apart), else the last one."""
    result = None
    for _ in range(tries):
        result = check()
        if result:
            return result
        time.sleep(1)
    return result


def test_deleting_the_cnp_lets_the_denied_port_through_again(
    client: Client, workload: dict[str, str]
) -> None:
    client.delete("cilium.io/v2", "CiliumNetworkPolicy", "echo-8080", NS)
    url = f"http://{workload['echo']}:9090/"
    assert _until(lambda: _curl(client, url) == (0, "200")), _curl(client, url)


def test_a_deny_rule_beats_an_allow_for_the_same_traffic(
    client: Client, workload: dict[str, str]
) -> None:
    peer = [{"matchLabels": {"app": "client"}}]
    client.apply(
        _cnp(
            "allow-all-deny-8080",
            {
                "ingress": [{"fromEndpoints": peer}],
                "ingressDeny": [
                    {"fromEndpoints": peer, "toPorts": [{"ports": [{"port": "8080"}]}]}
                ],
            },
        )
    )
    try:
        denied = _until(lambda: _curl(client, f"http://{workload['echo']}:8080/")[0] != 0)
        assert denied, "8080 stayed open although a deny rule covers it"
        assert _curl(client, f"http://{workload['echo']}:9090/") == (0, "200")
    finally:
        client.delete("cilium.io/v2", "CiliumNetworkPolicy", "allow-all-deny-8080", NS)
    assert _until(lambda: _curl(client, f"http://{workload['echo']}:8080/") == (0, "200"))


def _dbg(client: Client, agent: str, *args: str) -> tuple[int, str]:
    return _exec(client, "kube-system", agent, ["cilium-dbg", *args], "cilium-agent")


def _echo_json(client: Client, url: str) -> dict[str, Any]:
    code, out = _exec(
        client, NS, "client", ["curl", "-s", "--connect-timeout", "3", "-m", "5", url]
    )
    assert code == 0, out
    return dict(json.loads(out))


def test_traffic_to_the_world_is_masqueraded_and_pod_to_pod_keeps_its_source(
    client: Client, workload: dict[str, str]
) -> None:
    """The chart's default enable-ipv4-masquerade=true: the world (1.1.1.1, outside the
    cluster) sees the client's node address, while a pod on the other node sees the pod."""
    node = client.get("v1", "Node", NODES[1])
    node_ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert _echo_json(client, "http://1.1.1.1/")["client"]["address"] == node_ip
    seen = _echo_json(client, f"http://{workload['echo']}:8080/")["client"]["address"]
    assert seen == workload["client"]
    agent = _agents(client)[NODES[1]]["metadata"]["name"]
    code, out = _dbg(client, agent, "status")
    assert code == 0 and "IPTables [IPv4: Enabled, IPv6: Disabled]" in out, out


def test_bpf_lb_list_and_map_list_show_the_services_and_map_sizes(client: Client) -> None:
    agent = _agents(client)[NODES[0]]["metadata"]["name"]
    code, out = _exec(
        client, "kube-system", agent, ["cilium-dbg", "bpf", "lb", "list"], "cilium-agent"
    )
    assert code == 0 and "null" not in out, out
    api = client.list("discovery.k8s.io/v1", "EndpointSlice", "default")[0]
    api_backend = f"{api['endpoints'][0]['addresses'][0]}:{api['ports'][0]['port']}"
    lines = out.splitlines()
    assert lines[0].split("   ")[0] == "SERVICE ADDRESS"
    front = next(i for i, line in enumerate(lines) if line.startswith("10.96.0.1:443"))
    assert lines[front + 1].split()[0] == api_backend, out
    code, out = _dbg(client, agent, "map", "list")
    rows = {r.split()[0]: r.split()[1:] for r in out.splitlines()[1:]}
    assert int(rows["cilium_lb4_services_v2"][0]) >= 2, out  # entries, then the size
    assert int(rows["cilium_ipcache"][1]) > 0, out


def test_a_sysdump_holds_each_agents_real_cilium_dbg_output(
    cluster: DevCluster, client: Client, workload: dict[str, str], tmp_path: Path
) -> None:
    import zipfile

    archive = tmp_path / "sysdump.zip"
    run = _cilium(cluster, "sysdump", "--output-filename", str(tmp_path / "sysdump"))
    assert run.returncode == 0, run.stdout + run.stderr
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        for node, pod in _agents(client).items():
            agent = pod["metadata"]["name"]

            def read(stem: str, agent: str = agent) -> str:
                name = next(n for n in names if f"/{stem}-{agent}-" in n)
                return zf.read(name).decode()

            assert "KubeProxyReplacement:" in read("cilium-dbg-status-verbose"), node
            assert "SERVICE ADDRESS" in read("cilium-dbg-bpf-lb-list"), node
            endpoints = json.loads(read("cilium-dbg-endpoint-list"))
            mine = NODES.index(node)
            pod_name = ("echo", "client")[mine]
            ips = [
                a.get("ipv4")
                for ep in endpoints
                for a in ((ep.get("status") or {}).get("networking") or {}).get("addressing") or []
            ]
            assert workload[pod_name] in ips, (node, ips)


def test_the_operator_collects_an_identity_once_its_pods_are_gone(client: Client) -> None:
    """A pod with labels of its own gets a new CiliumIdentity; once the pod is deleted the
    operator marks the unused identity and deletes it a heartbeat timeout later (10 s)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "lonely", "namespace": NS, "labels": {"app": "lonely"}},
        "spec": {
            "nodeName": NODES[0],
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": CLIENT_IMAGE}],
        },
    }
    client.apply(pod)
    client.wait_ready([ObjectRef("v1", "Pod", "lonely", NS)], timeout=120)

    def identity() -> int | None:
        cep = client.get_or_none("cilium.io/v2", "CiliumEndpoint", "lonely", NS)
        found = ((cep or {}).get("status") or {}).get("identity") or {}
        return found.get("id")

    ident = _until(identity, tries=30)
    assert ident is not None and ident >= 256
    labels = client.get("cilium.io/v2", "CiliumIdentity", str(ident))["security-labels"]
    assert labels["k8s:app"] == "lonely"
    client.delete("v1", "Pod", "lonely", NS)
    gone = _until(
        lambda: client.get_or_none("cilium.io/v2", "CiliumIdentity", str(ident)) is None, tries=90
    )
    assert gone, f"CiliumIdentity {ident} still there 90 s after its only pod went"
    for name in ("echo", "client"):  # identities still in use stay
        cep = client.get("cilium.io/v2", "CiliumEndpoint", name, NS)
        kept = str(cep["status"]["identity"]["id"])
        assert client.get_or_none("cilium.io/v2", "CiliumIdentity", kept) is not None


def test_cilium_status_wait_is_green(cluster: DevCluster) -> None:
    status = _cilium(cluster, "status", "--wait", "--wait-duration", "3m")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "cilium:                 OK" in status.stdout
    assert f"{realnodes.REGISTRY_NAME}/ciliumctl/cilium:0.1.0: 2" in status.stdout


def test_one_unhealthy_agent_shows_in_cilium_status_by_pod(
    cluster: DevCluster, client: Client
) -> None:
    """The agent on real-node-1 stopped (SIGSTOP: its API no longer answers) while its pod
    still looks Running and Ready: `cilium status` asks each agent, as cilium-cli does, and
    reports that pod, and only it; once it runs again the status is green."""
    import signal

    sick = _agents(client)[NODES[1]]["metadata"]["name"]
    well = _agents(client)[NODES[0]]["metadata"]["name"]
    pid = realnodes.node_process("cilium-agent", NODES[1], cluster.name)
    os.kill(pid, signal.SIGSTOP)
    try:
        run = _cilium(cluster, "status", "-o", "json")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert run.returncode == 1, run.stdout + run.stderr
    errors = json.loads(run.stdout)["errors"]
    assert any(
        e.startswith(f"cilium: pod {sick}: unable to retrieve cilium status") for e in errors
    )
    assert not any(well in e for e in errors), errors
    again = _cilium(cluster, "status", "--wait", "--wait-duration", "1m")
    assert again.returncode == 0, again.stdout + again.stderr


#: the policy tests that must run (not skip) and pass against the project's agent
POLICY_TESTS = (
    "allow-all-except-world",
    "client-ingress",
    "client-ingress-knp",
    "all-ingress-deny",
    "all-egress-deny",
    "all-entities-deny",
    "cluster-entity",
    "echo-ingress",
    "client-egress",
    "to-entities-world",
)


def test_connectivity_test_passes_against_the_projects_agent(
    cluster: DevCluster, tmp_path: Path
) -> None:
    """``cilium connectivity test`` on the real nodes with the project's own agent: the whole
    implemented suite passes: the no-policy paths (pod, service, NodePort and hostPort from
    either node, DNS, world, host), the policy tests, cilium-health's probes between the
    nodes, no unexpected packet drops and no errors in the agents' logs."""
    junit = tmp_path / "junit.xml"
    run = _cilium(
        cluster,
        "connectivity",
        "test",
        "--timeout", "12m",
        "--junit-file", str(junit),
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    import xml.etree.ElementTree as ET

    cases = {c.get("name"): c.get("status") for c in ET.parse(junit).iter("testcase")}
    for name in ("no-policies", "no-policies-extra", "health", "no-unexpected-packet-drops"):
        assert cases[name] == "passed", (name, cases)
    assert {name: cases.get(name) for name in POLICY_TESTS} == dict.fromkeys(
        POLICY_TESTS, "passed"
    ), cases
    assert "failed" not in cases.values()
    assert "no-policies/pod-to-remote-nodeport" not in run.stdout  # not skipped, not failed


def test_a_policy_applied_behind_the_tests_back_fails_the_right_tests_with_the_drop(
    cluster: DevCluster, client: Client
) -> None:
    """A CNP that denies the echo port to everyone, applied behind the suite's back, fails
    the no-policy tests that reach the echo pods, and the report says why: the drop reason,
    the node and agent that dropped, and the policy selecting the endpoint."""
    broken = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "block-echo", "namespace": "cilium-test-1"},
        "spec": {
            "endpointSelector": {"matchLabels": {"kind": "echo"}},
            "ingressDeny": [
                {
                    "fromEntities": ["all"],
                    "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
                }
            ],
        },
    }
    client.create(broken)
    try:
        run = _cilium(
            cluster,
            "connectivity",
            "test",
            "--test", "^no-policies/pod-to-pod$",
            "--test", "^no-policies/pod-to-service$",
            "--flow-validation", "strict",
            "--request-timeout", "3s",
            timeout=600,
        )  # fmt: skip
    finally:
        client.delete("cilium.io/v2", "CiliumNetworkPolicy", "block-echo", "cilium-test-1")
    out = run.stdout
    assert run.returncode == 1, out[-6000:] + run.stderr[-3000:]
    assert "❌ 1/1 tests failed" in out, out[-4000:]
    assert "Test [no-policies]:" in out
    assert "expected: success (exit 0)" in out
    assert "dropped:  drop ingress 'Policy denied by denylist'" in out, out[-6000:]
    assert "on node real-node-" in out and "(agent kube-system/cilium-" in out
    assert "policies selecting the endpoints: CiliumNetworkPolicy cilium-test-1/block-echo" in out


#: a TCP echo server, and a client that sends a line every 0.5 s on one connection and
#: stops at the first wrong or missing answer (bounded: 600 rounds, about 5 minutes)
_LINE_SERVER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 7000))
s.listen(4)
while True:
    c, _ = s.accept()
    for line in c.makefile("rb"):
        c.sendall(line)
    c.close()
"""
_LINE_CLIENT = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], 7000), timeout=5)
for i in range(600):
    c.sendall(b"%d\\n" % i)
    got = c.recv(64)
    if got != b"%d\\n" % i:
        print("broken", i, got, flush=True)
        sys.exit(1)
    print("round", i, flush=True)
    time.sleep(0.5)
"""


def _rounds(client: Client, pod: str) -> int:
    logs = client.pod_logs(NS, pod).decode()
    assert "broken" not in logs and "Traceback" not in logs, logs
    return sum(1 for line in logs.splitlines() if line.startswith("round "))


def test_a_restarted_agent_runs_its_cnc_config_and_keeps_an_established_connection(
    cluster: DevCluster, client: Client, workload: dict[str, str]
) -> None:
    """A CiliumNodeConfig for real-node-0, then that node's agent restarted (its pod
    deleted): the agent runs exactly what `cilium config node effective` printed, and a TCP
    connection from a pod on that node, opened before the restart, keeps working."""
    for name, node, argv in (
        ("line-server", NODES[1], ["python3", "-c", _LINE_SERVER]),
        ("line-client", NODES[0], None),
    ):
        if argv is None:
            server_ip = client.get("v1", "Pod", "line-server", NS)["status"]["podIP"]
            argv = ["python3", "-c", _LINE_CLIENT, server_ip]
        client.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": NS},
                "spec": {
                    "nodeName": node,
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "c", "image": ECHO_IMAGE, "command": argv}],
                },
            }
        )
        client.wait_ready([ObjectRef("v1", "Pod", name, NS)], timeout=120)
    assert _until(lambda: _rounds(client, "line-client") >= 3)
    client.apply(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNodeConfig",
            "metadata": {"name": "node-0-heartbeat", "namespace": "kube-system"},
            "spec": {
                "nodeSelector": {"matchLabels": {"kubernetes.io/hostname": NODES[0]}},
                "defaults": {"identity-heartbeat-timeout": "45m0s"},
            },
        }
    )
    old = _agents(client)[NODES[0]]["metadata"]["name"]
    client.delete("v1", "Pod", old, "kube-system")
    ds = ObjectRef("apps/v1", "DaemonSet", "cilium", "kube-system")

    def restarted() -> str | None:
        pod = _agents(client).get(NODES[0])
        if pod is None or pod["metadata"]["name"] == old:
            return None
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        )
        return str(pod["metadata"]["name"]) if ready else None

    new = _until(restarted, tries=180)
    assert new, "the agent on real-node-0 did not come back Ready"
    client.wait_ready([ds], timeout=120)
    before = _rounds(client, "line-client")
    assert _until(lambda: _rounds(client, "line-client") >= before + 6)
    phase = client.get("v1", "Pod", "line-client", NS)["status"]["phase"]
    assert phase == "Running", client.pod_logs(NS, "line-client").decode()

    effective = _cilium(cluster, "config", "node", "effective", NODES[0], "-o", "json")
    assert effective.returncode == 0, effective.stderr
    wanted = {k: v["value"] for k, v in json.loads(effective.stdout)["config"].items()}
    assert wanted["identity-heartbeat-timeout"] == "45m0s"
    code, out = _exec(
        client, "kube-system", new, ["cilium-dbg", "config", "-o", "json"], "cilium-agent"
    )
    assert code == 0, out
    running = json.loads(out)["status"]["daemonConfigurationMap"]
    assert {k: running.get(k) for k in wanted} == wanted


def test_a_restored_endpoint_enforces_a_policy_applied_after_the_restart(
    client: Client, workload: dict[str, str]
) -> None:
    """The echo endpoint on real-node-0 was restored by the restarted agent (programs
    rebuilt): a CNP applied now still takes effect on it, and deleting it reopens the port."""
    spec = {
        "ingress": [
            {
                "fromEndpoints": [{"matchLabels": {"app": "client"}}],
                "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
            }
        ]
    }
    client.apply(_cnp("after-restart", spec))
    try:
        url = f"http://{workload['echo']}:9090/"
        assert _until(lambda: _curl(client, url)[0] != 0), "9090 stayed open after the restart"
        assert _curl(client, f"http://{workload['echo']}:8080/") == (0, "200")
    finally:
        client.delete("cilium.io/v2", "CiliumNetworkPolicy", "after-restart", NS)
    assert _until(lambda: _curl(client, url) == (0, "200"))
