"""The agent's speed targets; prints JSON.

* Policy change to enforcement with 100 endpoints and 1,000 rules: a CNP applied (and then
  deleted) to the moment the agent hands the target endpoint's new policy map to the
  datapath; p50 / p99 over the runs (goal: p99 <= 1 s). The datapath here records the call
  (no kernel): this is the agent's share of the path; the kernel's map swap is timed by the
  datapath's own benchmark.
* Agent RSS with 100 endpoints (goal <= 200 MB).
* CNI ADD p50 through the agent's unix socket (netlink recorded).
* Identity allocation rate against a real API server (``--cluster``: a dev cluster
  ``ag-bench`` with kwok nodes is started and removed).
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ciliumctl.agent.api import serve_api
from ciliumctl.agent.config import AgentConfig
from ciliumctl.agent.daemon import Agent
from ciliumctl.cni import plugin
from ciliumctl.datapath.model import EndpointPolicy, EndpointSpec, Protocol

ENDPOINTS = 100
RULES = 1000


class TimingDatapath:
    """Records when each endpoint's policy map was handed over (the bench's instrument)."""

    def __init__(self) -> None:
        self.written: dict[int, tuple[float, EndpointPolicy]] = {}

    def create_endpoint(self, spec: EndpointSpec, policy: EndpointPolicy | None = None) -> None:
        pass

    def delete_endpoint(self, spec: EndpointSpec) -> None:
        pass

    def replace_policy(self, endpoint_id: int, policy: EndpointPolicy) -> int:
        self.written[endpoint_id] = (time.perf_counter(), policy)
        return len(policy.entries)

    def upsert_ipcache(self, entry: Any) -> None:
        pass

    def delete_ipcache(self, prefix: str) -> bool:
        return True

    def upsert_service(self, svc: Any) -> int:
        return 0

    def delete_service(self, address: str, port: int, protocol: Protocol = Protocol.TCP) -> bool:
        return True

    def map_names(self) -> list[str]:
        return []

    def map_list(self) -> list[dict[str, Any]]:
        return []

    def dump_map(self, name: str) -> list[dict[str, Any]]:
        return []

    def events(self) -> Any:
        raise NotImplementedError("no events in this benchmark")

    def ct_gc(self, now: float | None = None) -> int:
        return 0


class _Identities:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        from ciliumctl.k8s.errors import ConflictError

        if obj["metadata"]["name"] in self.objects:
            raise ConflictError("exists")
        self.objects[obj["metadata"]["name"]] = obj
        return obj

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Any:
        return self.objects.get(name)


def _pod(i: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"app-{i}", "namespace": f"ns-{i % 10}", "uid": str(i),
                     "labels": {"app": f"app-{i % 50}", "tier": f"t{i % 5}"}},
        "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
    }  # fmt: skip


def _cnp(i: int, target: str = "") -> dict[str, Any]:
    app = target or f"app-{i % 50}"
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": f"rule-{i}", "namespace": f"ns-{i % 10}"},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": app}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"tier": f"t{i % 5}"}}],
                         "toPorts": [{"ports": [{"port": str(1000 + i), "protocol": "TCP"}]}]}],
        },
    }  # fmt: skip


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def policy_to_enforcement(runs: int) -> dict[str, Any]:
    state = tempfile.mkdtemp(prefix="ag-bench-")
    dp = TimingDatapath()
    agent = Agent(AgentConfig.load(None, {"state-dir": state}), dp, None, "bench-node")
    agent.allocator._client = _Identities()
    for i in range(ENDPOINTS):
        agent.endpoints.add(_pod(i), {"kubernetes.io/metadata.name": f"ns-{i % 10}"})
    for i in range(RULES):
        agent.policy_event("ADDED", _cnp(i), None)
    target = agent.endpoints.by_pod("ns-7", "app-7")
    assert target is not None
    applied, deleted = [], []
    for run in range(runs):
        obj = _cnp(RULES + run * 10 + 7, target="app-7")
        obj["metadata"]["name"] = f"bench-{run}"
        start = time.perf_counter()
        agent.policy_event("ADDED", obj, None)
        applied.append(dp.written[target.id][0] - start)
        start = time.perf_counter()
        agent.policy_event("DELETED", obj, None)
        deleted.append(dp.written[target.id][0] - start)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "endpoints": ENDPOINTS,
        "rules": RULES,
        "runs": runs,
        "apply_p50_s": round(statistics.median(applied), 4),
        "apply_p99_s": round(_pct(applied, 0.99), 4),
        "delete_p50_s": round(statistics.median(deleted), 4),
        "delete_p99_s": round(_pct(deleted, 0.99), 4),
        "goal_p99_s": 1.0,
        "rss_mb_with_100_endpoints": round(rss_mb, 1),
        "goal_rss_mb": 200,
    }


class _Netlink:
    GATEWAY4 = "169.254.1.1"

    def plumb_endpoint(
        self, host_ifname: str, pod_netns: str, ipv4: str | None = None
    ) -> tuple[str, str]:
        return "02:00:00:00:00:01", "02:00:00:00:00:02"

    def delete_link(self, name: str, netns: str | None = None) -> None:
        pass

    def ifindex(self, name: str, netns: str | None = None) -> int:
        return 1


def cni_add(count: int) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="ag-bench-"))
    sock = state / "cilium.sock"
    agent = Agent(AgentConfig.load(None, {"state-dir": str(state), "socket-path": str(sock)}),
                  TimingDatapath(), None, "bench-node")  # fmt: skip
    agent.allocator._client = _Identities()
    agent.ipam.set_cidrs(["10.0.0.0/16"])
    server = serve_api(agent, sock)
    times = []
    try:
        for i in range(count):
            agent.pods[f"ns-{i % 10}/app-{i}"] = _pod(i)
            env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": f"c{i}", "CNI_NETNS": "/proc/1/ns/net",
                   "CNI_ARGS": f"K8S_POD_NAMESPACE=ns-{i % 10};K8S_POD_NAME=app-{i}"}  # fmt: skip
            conf = json.dumps({"cniVersion": "1.0.0", "socket-path": str(sock)})
            start = time.perf_counter()
            code = plugin.run(env, conf, io.StringIO(), _Netlink())
            times.append(time.perf_counter() - start)
            assert code == 0
    finally:
        server.shutdown()
        server.server_close()
    return {"cni_adds": count, "cni_add_p50_s": round(statistics.median(times), 4),
            "cni_add_p99_s": round(_pct(times, 0.99), 4), "netlink": "recorded"}  # fmt: skip


def identity_rate(count: int) -> dict[str, Any]:
    from ciliumctl.agent.identity import IdentityAllocator
    from ciliumctl.devcluster import DevCluster
    from ciliumctl.operator.crds import register_missing

    cluster = DevCluster("ag-bench", state_dir=Path(tempfile.mkdtemp(prefix="ag-bench-")))
    cluster.up(1, timeout=240)
    try:
        client = cluster.client()
        register_missing(client)
        time.sleep(2)
        alloc = IdentityAllocator(client)
        start = time.perf_counter()
        for i in range(count):
            alloc.allocate({"k8s:app": f"bench-{i}", "k8s:io.kubernetes.pod.namespace": "b"})
        elapsed = time.perf_counter() - start
    finally:
        cluster.down()
    return {"identities": count, "identity_allocations_per_s": round(count / elapsed, 1)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--cluster", action="store_true", help="also time identity allocation")
    args = parser.parse_args()
    out: dict[str, Any] = {"policy_to_enforcement": policy_to_enforcement(args.runs)}
    out["cni"] = cni_add(100)
    if args.cluster:
        out["identity"] = identity_rate(200)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
