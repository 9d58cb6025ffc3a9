"""Real nodes: time for `dev-cluster up --real-nodes 3 --cni bridge` to bring them Ready
(binaries and images cached; target <= 30 s), pod start (created -> Ready) p50/p99 for 30
pods spread over the nodes, and memory per node. Needs root. Prints JSON.

`--warm` first builds the images with an untimed one-node cluster. `--cold` also times a cold
build of the CNI plugins in a scratch cache (minutes of CPU: off by default on shared machines).
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

from ciliumctl.devcluster import DevCluster, realnodes

NODES = 3
PODS = 30


def _pod(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": "realnodes"}},
        "spec": {
            "nodeSelector": {realnodes.REAL_LABEL: "true"},
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": image}],
        },
    }


def wait_schedulable(client: Any, timeout: float = 120) -> None:
    """Until every node is Ready and has no NoSchedule taint (a CNI that is installed but not
    yet ready on a node leaves it NotReady or tainted, and every pod would land elsewhere)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = client.list("v1", "Node")
        waiting = [
            n["metadata"]["name"]
            for n in nodes
            if not any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions") or []
            )
            or any(t.get("effect") == "NoSchedule" for t in n.get("spec", {}).get("taints") or [])
        ]
        if nodes and not waiting:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"nodes not schedulable after {timeout}s: {', '.join(waiting)}")
        time.sleep(0.5)


def pod_start(cluster: DevCluster, image: str) -> dict[str, float]:
    """Create PODS pods at once, once every node takes pods; seconds from each create to its
    Ready, as a client sees it."""
    from concurrent.futures import ThreadPoolExecutor

    client = cluster.client()
    wait_schedulable(client)
    created: dict[str, float] = {}

    def create(i: int) -> None:
        client.create(_pod(f"bench-{i}", image))
        created[f"bench-{i}"] = time.perf_counter()

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(create, range(PODS)))
    ready: dict[str, float] = {}
    nodes: dict[str, str] = {}
    deadline = time.monotonic() + 180
    while len(ready) < PODS and time.monotonic() < deadline:
        for pod in client.list("v1", "Pod", "default", label_selector="bench=realnodes"):
            name = pod["metadata"]["name"]
            conds = pod.get("status", {}).get("conditions") or []
            if name not in ready and any(
                c["type"] == "Ready" and c["status"] == "True" for c in conds
            ):
                ready[name] = time.perf_counter()
                nodes[name] = pod["spec"]["nodeName"]
        time.sleep(0.1)
    lat = sorted(ready[n] - created[n] for n in ready)
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
    return {
        "pods_ready": len(ready),
        "pod_start_p50_s": round(statistics.median(lat), 2) if lat else -1,
        "pod_start_p99_s": round(q[98], 2) if lat else -1,
        "pod_start_max_s": round(lat[-1], 2) if lat else -1,
        "nodes_used": len(set(nodes.values())),
    }


def cold_builds() -> dict[str, float]:
    """Cold build of the CNI plugins and the images in a scratch cache directory."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ciliumctl-cold-") as tmp:
        env = dict(os.environ, CILIUMCTL_CACHE_DIR=tmp)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "ciliumctl", "dev-cluster", "build", "bridge"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        out["cni_plugins_cold_s"] = round(time.perf_counter() - start, 1)
    return out


def main() -> None:
    cold = "--cold" in sys.argv
    with tempfile.TemporaryDirectory(prefix="ciliumctl-bench-rn-") as tmp:
        if "--warm" in sys.argv:  # build and cache the images first (untimed)
            warm = DevCluster("rn-bench", state_dir=Path(tmp) / "warm")
            warm.up(0, real_nodes=1, cni="bridge", timeout=900)
            warm.down()
        cluster = DevCluster("rn-bench", state_dir=Path(tmp) / "state")
        start = time.perf_counter()
        cluster.up(0, real_nodes=NODES, cni="bridge", timeout=300)
        up_s = time.perf_counter() - start
        try:
            before = {r.name: r.rss_bytes for r in cluster.status().real_nodes}
            pods = pod_start(cluster, realnodes.SANDBOX_IMAGE)
            after = {r.name: r.rss_bytes for r in cluster.status().real_nodes}
        finally:
            cluster.down()
    result: dict[str, Any] = {
        "benchmark": "realnodes",
        "real_nodes": NODES,
        "up_ready_s": round(up_s, 2),
        "up_ready_target_s": 30,
        "up_ready_ok": up_s <= 30,
        "pods": PODS,
        **pods,
        "rss_per_node_idle_mib": round(statistics.mean(before.values()) / 2**20, 1),
        "rss_per_node_with_pods_mib": round(statistics.mean(after.values()) / 2**20, 1),
        "rss_per_pod_mib": round(
            (sum(after.values()) - sum(before.values())) / max(pods["pods_ready"], 1) / 2**20, 1
        ),
    }
    if cold:
        result.update(cold_builds())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
