"""The agent's speed on real nodes, measured with real packets; prints JSON. Needs root.

Two dev clusters side by side in one run, 2 real nodes each: one with the project's Cilium
(`cilium install`), one with the bridge CNI.

* Pod start (created -> Ready) of 30 pods on each, in 3 rounds alternating between the two
  clusters (the machine's load moves; both sides see it alike): p50 / p99 per round, the
  ratio Cilium / bridge of each round's p50 and their median (goal <= 1.5); CNI ADD p50 / p99
  and per step from cilium-cni's log on the nodes.
* Policy change to enforcement with 100 endpoints and 1,000 rules: 100 pause pods plus an
  echo pod and a prober pod; the prober connects to the echo pod every 20 ms (100 ms connect
  timeout) and logs each change between answered and not answered with the time. A CNP of
  1,000 ingress rules selecting the echo pod, none allowing the probed port, is applied: the
  first unanswered probe after the apply is the first denied packet; deleting the CNP, the
  first answered probe after it is the first allowed one. p50 / p99 over the rounds
  (goal: p99 <= 1 s).
* RSS of the agent process serving 100 endpoints (goal <= 200 MB).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import realnodes as realnodes_bench  # bench/realnodes.py: the same pod-start measure

from ciliumctl.devcluster import DevCluster
from ciliumctl.devcluster import realnodes as rn
from ciliumctl.k8s import Client, ObjectRef

ENDPOINTS = 100
RULES = 1000
ROUNDS = 10
POD_ROUNDS = 3  # pod-start rounds per side; the ratio is their median
NS = "agent-bench"
ECHO_IMAGE = "quay.io/cilium/json-mock:v1.3.8"
PROBER = """
import socket, sys, time
state = None
deadline = time.time() + 900  # bounded: stops by itself
while time.time() < deadline:
    started = time.time()
    try:
        socket.create_connection((sys.argv[1], 8080), timeout=0.1).close()
        now = "ok"
    except OSError:
        now = "fail"
    if now != state:
        print(now, "%.4f" % started, flush=True)
        state = now
    time.sleep(0.02)
"""


def _pod(name: str, node: str, image: str, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": image, **extra}],
        },
    }


def _cnp() -> dict[str, Any]:
    """1,000 ingress rules for the echo pod: ports 20000-20999 from the filler pods."""
    rules = [
        {
            "fromEndpoints": [{"matchLabels": {"filler": str(i % 10)}}],
            "toPorts": [{"ports": [{"port": str(20000 + i), "protocol": "TCP"}]}],
        }
        for i in range(RULES)
    ]
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "bench-1000", "namespace": NS},
        "spec": {"endpointSelector": {"matchLabels": {"app": "echo"}}, "ingress": rules},
    }


def _transitions(client: Client) -> list[tuple[str, float]]:
    out = []
    for line in client.pod_logs(NS, "prober").decode().splitlines():
        state, _, stamp = line.partition(" ")
        if state in ("ok", "fail"):
            out.append((state, float(stamp)))
    return out


def _first_after(client: Client, state: str, since: float, timeout: float = 15.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for seen, stamp in _transitions(client):
            if seen == state and stamp >= since:
                return stamp - since
        time.sleep(0.1)
    raise SystemExit(f"no '{state}' probe within {timeout}s of the policy change")


def _agent_rss_mib(node: str, cluster: str = "ab-cilium") -> float:
    pid = rn.node_process("cilium-agent", node, cluster)
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:"))
    return round(kib / 1024, 1)


def _delete_bench_pods(cluster: DevCluster, timeout: float = 120) -> None:
    """Delete the pod-start pods and wait until they are gone (the next round reuses the
    names), their endpoints with them."""
    client = cluster.client()
    for pod in client.list("v1", "Pod", "default", label_selector="bench=realnodes"):
        client.delete("v1", "Pod", pod["metadata"]["name"], "default")
    deadline = time.monotonic() + timeout
    while client.list("v1", "Pod", "default", label_selector="bench=realnodes"):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench pods still there {timeout}s after their deletion")
        time.sleep(0.5)


def cni_adds(cluster: DevCluster, pod_prefix: str = "default/bench-") -> dict[str, Any]:
    """CNI ADD times from cilium-cni's own log on each node (``cni.logFile``): p50 / p99 of
    the whole call and of each step, for the pods whose name starts with ``pod_prefix``."""
    import shlex

    took: dict[str, list[float]] = {}
    for node_dir in sorted((cluster.state_dir / "nodes").glob("real-node-*")):
        log_file = node_dir / "mounts" / rn.NODE_DIRS["/run/cilium"] / "cilium-cni.log"
        for line in log_file.read_text().splitlines() if log_file.exists() else []:
            fields = dict(x.split("=", 1) for x in shlex.split(line) if "=" in x)
            if fields.get("msg") != "CNI ADD done" or not fields["pod"].startswith(pod_prefix):
                continue
            for key in ("duration", "lookup", "ipam", "wire", "endpoint"):
                took.setdefault(key, []).append(float(fields[key].rstrip("s")))
    if not took:
        return {"adds": 0}
    return {"adds": len(took["duration"])} | {key: _pctl(v) for key, v in took.items()}


def _pctl(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50_s": round(statistics.median(values), 3), "p99_s": round(q[98], 3)}


def enforcement(client: Client) -> dict[str, Any]:
    """The 100 endpoints, then ROUNDS of apply / delete timed by the prober's packets."""
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    nodes = ("real-node-0", "real-node-1")
    fillers = [
        _pod(f"filler-{i}", nodes[i % 2], rn.SANDBOX_IMAGE, {"filler": str(i % 10)})
        for i in range(ENDPOINTS - 2)
    ]
    echo = _pod("echo", nodes[0], ECHO_IMAGE, {"app": "echo"})
    for pod in [*fillers, echo]:
        client.apply(pod)
    client.wait_ready([ObjectRef("v1", "Pod", "echo", NS)], timeout=300)
    ip = client.get("v1", "Pod", "echo", NS)["status"]["podIP"]
    prober = _pod("prober", nodes[1], ECHO_IMAGE, {"app": "prober"},
                  command=["python3", "-c", PROBER, ip])  # fmt: skip
    client.apply(prober)
    refs = [ObjectRef("v1", "Pod", p["metadata"]["name"], NS) for p in [*fillers, prober]]
    client.wait_ready(refs, timeout=600)
    _first_after(client, "ok", 0.0)
    deny, allow = [], []
    for _ in range(ROUNDS):
        t0 = time.time()
        client.apply(_cnp())
        deny.append(_first_after(client, "fail", t0))
        time.sleep(1)
        t1 = time.time()
        client.delete("cilium.io/v2", "CiliumNetworkPolicy", "bench-1000", NS)
        allow.append(_first_after(client, "ok", t1))
        time.sleep(1)
    endpoints = len(client.list("cilium.io/v2", "CiliumEndpoint", NS))
    return {
        "endpoints": endpoints,
        "rules": RULES,
        "rounds": ROUNDS,
        "apply_to_first_denied": _pctl(deny),
        "delete_to_first_allowed": _pctl(allow),
        "goal_p99_s": 1.0,
        "ok": max(_pctl(deny)["p99_s"], _pctl(allow)["p99_s"]) <= 1.0,
        "agent_rss_mib": {n: _agent_rss_mib(n) for n in nodes},
        "agent_rss_goal_mib": 200,
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ciliumctl-bench-agent-") as tmp:
        cilium = DevCluster("ab-cilium", state_dir=Path(tmp) / "cilium")
        bridge = DevCluster("ab-bridge", state_dir=Path(tmp) / "bridge")
        try:
            cilium.up(0, real_nodes=2, timeout=600)
            env = dict(os.environ, KUBECONFIG=str(cilium.kubeconfig_path))
            subprocess.run(
                [sys.executable, "-m", "ciliumctl", "install", "--wait"],
                env=env, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            bridge.up(0, real_nodes=2, cni="bridge", timeout=600)
            rounds: list[tuple[dict[str, float], dict[str, float]]] = []
            for _ in range(POD_ROUNDS):  # interleaved: both sides see the machine's load alike
                with_cilium = realnodes_bench.pod_start(cilium, rn.SANDBOX_IMAGE)
                _delete_bench_pods(cilium)
                with_bridge = realnodes_bench.pod_start(bridge, rn.SANDBOX_IMAGE)
                _delete_bench_pods(bridge)
                rounds.append((with_cilium, with_bridge))
            cni_add = cni_adds(cilium)
            bridge.down()
            client = Client(str(cilium.kubeconfig_path), cilium.context)
            policy = enforcement(client)
        finally:
            for cluster in (cilium, bridge):
                if cluster.exists():
                    cluster.down()
    ratios = sorted(c["pod_start_p50_s"] / max(b["pod_start_p50_s"], 0.01) for c, b in rounds)
    ratio = statistics.median(ratios)
    print(
        json.dumps(
            {
                "benchmark": "agent_realnodes",
                "pods": realnodes_bench.PODS,
                "pod_start_rounds": [{"cilium": c, "bridge": b} for c, b in rounds],
                "pod_start_p50_ratios": [round(r, 2) for r in ratios],
                "pod_start_p50_ratio": round(ratio, 2),
                "pod_start_ratio_goal": 1.5,
                "cni_add_cilium": cni_add,
                "policy_enforcement": policy,
                "load_average": os.getloadavg()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
