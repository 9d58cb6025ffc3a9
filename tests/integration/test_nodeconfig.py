"""`cilium config node ...` on a dev cluster of its own: 20 kwok nodes in three pools.

The module brings up a separate cluster (the shared 3-node session cluster is left alone),
installs Cilium with a kube-proxy DaemonSet present, and drives the commands as a user
would: overlapping CiliumNodeConfigs, effective configuration per node, the plan, a batched
rollout, a rollout stopped by a failing batch, and the kube-proxy-replacement migration with
an interruption and a resume. The cluster is brought down at the end even on failure.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.devcluster import DevCluster
from ciliumctl.install.detect import api_server_endpoint
from ciliumctl.k8s import Client

NS = "kube-system"
NODES = 20
POOL_A = [f"kwok-node-{i}" for i in range(0, 7)]
POOL_B = [f"kwok-node-{i}" for i in range(7, 14)]
POOL_C = [f"kwok-node-{i}" for i in range(14, 20)]
XDP = {"kwok-node-0", "kwok-node-1", "kwok-node-7"}
BUSY = {"kwok-node-3", "kwok-node-8", "kwok-node-15"}
MIGRATION_LABEL = "io.cilium.migration/kube-proxy-replacement"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    state = Path(os.environ.get("CILIUMCTL_TEST_STATE_DIR") or tmp_path_factory.mktemp("nc"))
    dev = DevCluster("nodecfg", state_dir=state / "nodecfg")
    try:
        dev.up(NODES, timeout=300)
        yield dev
    finally:
        dev.down()


@pytest.fixture(scope="module")
def client(cluster: DevCluster) -> Client:
    return Client(str(cluster.kubeconfig_path), cluster.context)


def run(cluster: DevCluster, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="250")
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", "--kubeconfig", str(cluster.kubeconfig_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def agent_pods(client: Client) -> dict[str, dict[str, Any]]:
    """node -> live agent pod."""
    out = {}
    for pod in client.list("v1", "Pod", NS, label_selector="k8s-app=cilium"):
        if not pod["metadata"].get("deletionTimestamp") and pod["spec"].get("nodeName"):
            out[pod["spec"]["nodeName"]] = pod
    return out


def uids(client: Client) -> dict[str, str]:
    return {n: p["metadata"]["uid"] for n, p in agent_pods(client).items()}


def wait_agents_ready(client: Client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        pods = agent_pods(client)
        ready = [
            p
            for p in pods.values()
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p.get("status", {}).get("conditions") or []
            )
        ]
        if len(pods) == NODES and len(ready) == NODES:
            return
        assert time.monotonic() < deadline, f"{len(ready)}/{NODES} agents ready"
        time.sleep(1)


def kube_proxy_daemonset() -> dict[str, Any]:
    labels = {"k8s-app": "kube-proxy"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": NS, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": True,
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [
                        {"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.34.4"}
                    ],
                },
            },
        },
    }


def test_missing_crd_is_a_clear_error_before_anything_changes(
    cluster: DevCluster, client: Client
) -> None:
    result = run(cluster, "config", "node", "set", "x", "--all-nodes", "debug=true")
    assert result.returncode == 1
    assert "CiliumNodeConfig CRD" in result.stderr and "not installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_install_with_kube_proxy_and_labelled_pools(cluster: DevCluster, client: Client) -> None:
    for name in POOL_A + POOL_B + POOL_C:
        labels = {"pool": "a" if name in POOL_A else "b" if name in POOL_B else "c"}
        if name in XDP:
            labels["hw"] = "xdp"
        if name in BUSY:
            labels["busy"] = "true"
        client.patch("v1", "Node", name, {"metadata": {"labels": labels}})
    client.create(kube_proxy_daemonset())
    host, port = api_server_endpoint(client) or ("", 0)
    assert host
    result = run(
        cluster,
        "install",
        "--set",
        f"k8sServiceHost={host}",
        "--set",
        f"k8sServicePort={port}",
        "--wait",
        "--wait-duration",
        "4m",
        timeout=400,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    wait_agents_ready(client)
    cm = client.get("v1", "ConfigMap", "cilium-config", NS)["data"]
    assert cm["kube-proxy-replacement"] == "false"


CNCS = [
    ("10-xdp", "hw=xdp", ["bpf-lb-acceleration=native"]),
    (
        "20-new-nodes",
        "pool=c",
        [
            "datapath-mode=netkit",
            "enable-host-legacy-routing=false",
            "enable-ipv4-big-tcp=true",
            "enable-ipv6-big-tcp=true",
        ],
    ),
    ("30-busy", "busy=true", ["hubble-event-queue-size=65536"]),
    ("40-pool-b", "pool in (b)", ["bpf-lb-acceleration=disabled", "monitor-aggregation=maximum"]),
]


def expected_overrides(node: str) -> dict[str, tuple[str, str]]:
    """Written out by hand from the rules: key -> (value, CNC that sets it)."""
    out: dict[str, tuple[str, str]] = {}
    if node in XDP:
        out["bpf-lb-acceleration"] = ("native", "10-xdp")
    if node in POOL_C:
        out["datapath-mode"] = ("netkit", "20-new-nodes")
        out["enable-host-legacy-routing"] = ("false", "20-new-nodes")
        out["enable-ipv4-big-tcp"] = ("true", "20-new-nodes")
        out["enable-ipv6-big-tcp"] = ("true", "20-new-nodes")
    if node in BUSY:
        out["hubble-event-queue-size"] = ("65536", "30-busy")
    if node in POOL_B:
        # 40-pool-b sorts after 10-xdp, so it wins on kwok-node-7.
        out["bpf-lb-acceleration"] = ("disabled", "40-pool-b")
        out["monitor-aggregation"] = ("maximum", "40-pool-b")
    return out


def test_set_list_get_and_bad_input(cluster: DevCluster, client: Client) -> None:
    before = client.list("cilium.io/v2", "CiliumNodeConfig", NS)
    bad = run(cluster, "config", "node", "set", "x", "--selector", "pool in (a", "debug=true")
    assert bad.returncode == 2 and "unbalanced" in bad.stderr
    bad = run(cluster, "config", "node", "set", "x", "--selector", "po ol=a", "debug=true")
    assert bad.returncode == 2 and "invalid" in bad.stderr
    new = run(cluster, "config", "node", "set", "x", "debug=true")
    assert new.returncode == 2 and "--selector" in new.stderr
    key = run(cluster, "config", "node", "set", "x", "--all-nodes", "bad/key=1")
    assert key.returncode == 2 and "invalid key" in key.stderr
    assert client.list("cilium.io/v2", "CiliumNodeConfig", NS) == before

    for name, selector, pairs in CNCS:
        result = run(cluster, "config", "node", "set", name, "--selector", selector, *pairs)
        assert result.returncode == 0, result.stderr
    assert (
        "selects 3 node(s)"
        in run(cluster, "config", "node", "set", "10-xdp", "bpf-lb-acceleration=native").stdout
    )
    typo = run(cluster, "config", "node", "set", "30-busy", "hubble-event-queue-sise=65536")
    assert typo.returncode == 0
    assert "did you mean hubble-event-queue-size" in typo.stderr
    client.patch(
        "cilium.io/v2",
        "CiliumNodeConfig",
        "30-busy",
        [{"op": "remove", "path": "/spec/defaults/hubble-event-queue-sise"}],
        NS,
        patch_type="json",
    )
    listed = json.loads(run(cluster, "config", "node", "list", "-o", "json").stdout)
    assert [r["name"] for r in listed] == [c[0] for c in CNCS]
    assert listed[3]["nodes"] == sorted(POOL_B)
    assert listed[1]["defaults"]["datapath-mode"] == "netkit"
    got = json.loads(run(cluster, "config", "node", "get", "20-new-nodes", "-o", "json").stdout)
    assert got["spec"]["nodeSelector"] == {"matchLabels": {"pool": "c"}}
    assert got["selectedNodes"] == sorted(POOL_C)
    missing = run(cluster, "config", "node", "get", "nope")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_effective_config_of_every_node_matches_the_rules(
    cluster: DevCluster, client: Client
) -> None:
    cm = client.get("v1", "ConfigMap", "cilium-config", NS)["data"]
    for node in POOL_A + POOL_B + POOL_C:
        result = run(cluster, "config", "node", "effective", node, "-o", "json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)["config"]
        overrides = expected_overrides(node)
        for key, value in cm.items():
            if key not in overrides:
                assert data[key] == {
                    "value": value,
                    "source": "config-map:kube-system/cilium-config",
                }, (node, key)
        for key, (value, cnc) in overrides.items():
            assert data[key] == {
                "value": value,
                "source": f"cilium-node-config:kube-system/{cnc}",
            }, (node, key)
        assert set(data) == set(cm) | set(overrides) | {"config-sources"}
    overlap = run(cluster, "config", "node", "effective", "kwok-node-7")
    assert "bpf-lb-acceleration is set by several CiliumNodeConfigs (10-xdp, 40-pool-b)" in (
        overlap.stderr
    )
    assert "* bpf-lb-acceleration" in overlap.stdout
    unknown = run(cluster, "config", "node", "effective", "kwok-node-77")
    assert unknown.returncode == 1 and "kwok-node-7" in unknown.stderr


def test_plan_groups_nodes_and_marks_pending_restarts(cluster: DevCluster, client: Client) -> None:
    cm = client.get("v1", "ConfigMap", "cilium-config", NS)["data"]
    result = run(cluster, "config", "node", "plan", "-o", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    affected = sorted({n for n in POOL_A + POOL_B + POOL_C if expected_overrides(n)})
    assert plan["restartPending"] == affected
    groups = {tuple(g["nodes"]): g for g in plan["groups"]}
    unaffected = tuple(sorted(set(POOL_A) - XDP - BUSY))
    assert groups[unaffected]["differences"] == {}
    assert groups[unaffected]["restartPending"] == []
    for nodes, group in groups.items():
        shapes = {json.dumps(expected_overrides(n), sort_keys=True) for n in nodes}
        assert len(shapes) == 1, nodes  # one effective configuration per group
        wanted = {k for k, (v, _) in expected_overrides(nodes[0]).items() if cm.get(k) != v}
        assert set(group["differences"]) == wanted, nodes
    assert sum(len(n) for n in groups) == NODES
    text = run(cluster, "config", "node", "plan").stdout
    assert f"{len(affected)} agent(s) need a restart" in text


def test_rollout_restarts_only_affected_agents_in_batches(
    cluster: DevCluster, client: Client
) -> None:
    before = uids(client)
    affected = sorted({n for n in before if expected_overrides(n)})
    dry = run(cluster, "config", "node", "rollout", "--dry-run")
    assert f"would restart {len(affected)} agent(s)" in dry.stdout
    assert uids(client) == before
    result = run(cluster, "config", "node", "rollout", "--max-unavailable", "3", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    after = uids(client)
    assert {n for n in after if after[n] != before[n]} == set(affected)
    batches = [line for line in result.stderr.splitlines() if "restarting agents" in line]
    assert len(batches) == math.ceil(len(affected) / 3), result.stderr
    assert batches[0].endswith(f"1-3 of {len(affected)}")
    plan = json.loads(run(cluster, "config", "node", "plan", "-o", "json").stdout)
    assert plan["restartPending"] == []
    again = run(cluster, "config", "node", "rollout")
    assert "every selected agent runs its current configuration" in again.stdout
    assert uids(client) == after


def test_failing_batch_stops_the_rollout(cluster: DevCluster, client: Client) -> None:
    ds = client.get("apps/v1", "DaemonSet", "cilium", NS)
    image = next(
        c["image"]
        for c in ds["spec"]["template"]["spec"]["containers"]
        if c["name"] == "cilium-agent"
    )
    strategy = ds["spec"]["updateStrategy"]
    client.patch(
        "apps/v1",
        "DaemonSet",
        "cilium",
        {
            "spec": {
                "updateStrategy": {"type": "OnDelete", "rollingUpdate": None},
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "cilium-agent", "image": image.split("@")[0] + "-broken"}
                        ]
                    }
                },
            }
        },
        NS,
        patch_type="strategic",
    )
    try:
        changed = run(cluster, "config", "node", "set", "30-busy", "hubble-event-queue-size=131072")
        assert changed.returncode == 0, changed.stderr
        before = uids(client)
        result = run(
            cluster,
            "config",
            "node",
            "rollout",
            "--max-unavailable",
            "1",
            "--wait-duration",
            "90s",
            timeout=300,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "stopped after batch 1 of 3" in result.stderr
        assert "2 agent(s) not restarted" in result.stderr
        after = uids(client)
        restarted = {n for n in after if after[n] != before[n]}
        assert restarted == {"kwok-node-15"}  # first in name order; the others untouched
        plan = json.loads(run(cluster, "config", "node", "plan", "-o", "json").stdout)
        assert {"kwok-node-3", "kwok-node-8"} <= set(plan["restartPending"])
    finally:
        client.patch(
            "apps/v1",
            "DaemonSet",
            "cilium",
            {
                "spec": {
                    "updateStrategy": strategy,
                    "template": {
                        "spec": {"containers": [{"name": "cilium-agent", "image": image}]}
                    },
                }
            },
            NS,
            patch_type="strategic",
        )
    fixed = run(cluster, "config", "node", "rollout", "--max-unavailable", "2", timeout=300)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    wait_agents_ready(client)
    plan = json.loads(run(cluster, "config", "node", "plan", "-o", "json").stdout)
    assert plan["restartPending"] == []


def kube_proxy_nodes(client: Client) -> set[str]:
    return {
        p["spec"].get("nodeName", "")
        for p in client.list("v1", "Pod", NS, label_selector="k8s-app=kube-proxy")
        if not p["metadata"].get("deletionTimestamp")
    }


def migration_state(client: Client) -> dict[str, str]:
    cm = client.get_or_none("v1", "ConfigMap", "cilium-kpr-migration", NS)
    return dict((cm or {}).get("data") or {})


def test_migrate_kpr_dry_run_and_refusals_change_nothing(
    cluster: DevCluster, client: Client
) -> None:
    deadline = time.monotonic() + 120
    while len(kube_proxy_nodes(client)) < NODES:
        assert time.monotonic() < deadline, "kube-proxy pods never ran on every node"
        time.sleep(1)
    dry = run(cluster, "config", "node", "migrate-kpr", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "create CiliumNodeConfig kube-proxy-replacement" in dry.stdout
    assert "migrate kwok-node-0: label" in dry.stdout and "kwok-node-19" in dry.stdout
    early = run(cluster, "config", "node", "migrate-kpr", "--finish")
    assert early.returncode == 1 and "20 node(s) not migrated yet" in early.stderr
    assert (
        client.get_or_none("cilium.io/v2", "CiliumNodeConfig", "kube-proxy-replacement", NS) is None
    )
    assert migration_state(client) == {}
    assert len(kube_proxy_nodes(client)) == NODES


def test_migrate_kpr_interrupted_then_resumed_then_finished(
    cluster: DevCluster, client: Client
) -> None:
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ciliumctl",
            "--kubeconfig",
            str(cluster.kubeconfig_path),
            "config",
            "node",
            "migrate-kpr",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 180
        while not migration_state(client).get("migrated"):
            assert proc.poll() is None, "migrate-kpr ended before migrating a node"
            assert time.monotonic() < deadline, migration_state(client)
            time.sleep(0.1)
    finally:
        proc.kill()  # the interruption: no clean-up, no chance to finish the next node
        proc.wait()
    interrupted = migration_state(client)
    done = interrupted["migrated"].split(",")
    assert interrupted["phase"] == "nodes" and 1 <= len(done) < NODES
    assert done[0] == "kwok-node-0"
    labelled = {
        n["metadata"]["name"]
        for n in client.list("v1", "Node", label_selector=f"{MIGRATION_LABEL}=true")
    }
    assert set(done) <= labelled and len(labelled) < NODES
    effective = json.loads(
        run(cluster, "config", "node", "effective", "kwok-node-0", "-o", "json").stdout
    )
    assert effective["config"]["kube-proxy-replacement"] == {
        "value": "true",
        "source": "cilium-node-config:kube-system/kube-proxy-replacement",
    }
    assert "kwok-node-0" not in kube_proxy_nodes(client)

    before = uids(client)
    resumed = run(cluster, "config", "node", "migrate-kpr", "--drain", timeout=900)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "20 node(s) migrated, 0 to go" in resumed.stdout
    after = uids(client)
    assert all(after[n] == before[n] for n in done)  # migrated nodes were not restarted again
    assert all(after[n] != before[n] for n in after if n not in done)
    assert kube_proxy_nodes(client) == set()
    assert migration_state(client)["phase"] == "nodes-migrated"
    nodes = client.list("v1", "Node")
    assert all(n["metadata"]["labels"].get(MIGRATION_LABEL) == "true" for n in nodes)
    assert not any(n["spec"].get("unschedulable") for n in nodes)  # uncordoned

    again = run(cluster, "config", "node", "migrate-kpr")
    assert again.returncode == 0 and "20 node(s) migrated, 0 to go" in again.stdout
    assert uids(client) == after

    plan = run(cluster, "config", "node", "migrate-kpr", "--finish", "--dry-run")
    assert "delete DaemonSet kube-system/kube-proxy" in plan.stdout
    assert client.get_or_none("apps/v1", "DaemonSet", "kube-proxy", NS) is not None
    finished = run(cluster, "config", "node", "migrate-kpr", "--finish")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert client.get_or_none("apps/v1", "DaemonSet", "kube-proxy", NS) is None
    assert (
        client.get("v1", "ConfigMap", "cilium-config", NS)["data"]["kube-proxy-replacement"]
        == "true"
    )
    assert not any(MIGRATION_LABEL in n["metadata"]["labels"] for n in client.list("v1", "Node"))
    assert (
        client.get_or_none("cilium.io/v2", "CiliumNodeConfig", "kube-proxy-replacement", NS) is None
    )
    assert migration_state(client)["phase"] == "finished"
    state = json.loads(run(cluster, "config", "node", "plan", "-o", "json").stdout)
    assert state["restartPending"] == []  # the agents already run with replacement on
    last = run(cluster, "config", "node", "migrate-kpr", "--finish")
    assert last.returncode == 0 and "nothing to do" in last.stdout
