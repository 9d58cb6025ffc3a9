"""Task planning and node selection, without a cluster."""

from __future__ import annotations

from typing import Any

from ciliumctl.sysdump.plan import (
    AGENT_COMMANDS,
    Inventory,
    Options,
    PodRef,
    cilium_resources,
    large_cluster,
    plan,
    select_nodes,
)


def node(name: str, ip: str, external: str | None = None) -> dict[str, Any]:
    addresses = [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]
    if external:
        addresses.append({"type": "ExternalIP", "address": external})
    return {"metadata": {"name": name}, "status": {"addresses": addresses}}


NODES = [node("n1", "10.0.0.1"), node("n2", "10.0.0.2", "203.0.113.2"), node("n3", "10.0.0.3")]


def agent(name: str, node_name: str, *, ready: bool = True, restarted: bool = False) -> PodRef:
    return PodRef(
        "kube-system",
        name,
        node_name,
        "cilium",
        ("cilium-agent",),
        (),
        ready,
        frozenset({"cilium-agent"}) if restarted else frozenset(),
    )


def inventory() -> Inventory:
    return Inventory(
        NODES,
        {
            "cilium": [
                agent("cilium-a", "n1"),
                agent("cilium-b", "n2", restarted=True),
                agent("cilium-c", "n3"),
            ],
            "cilium-operator": [
                PodRef("kube-system", "op-1", "n3", "cilium-operator", ("cilium-operator",))
            ],
        },
        [
            crd("ciliumnodeconfigs", "CiliumNodeConfig", [("v2alpha1", False), ("v2", True)]),
            crd("ciliumnetworkpolicies", "CiliumNetworkPolicy", [("v2", True)]),
            {"spec": {"group": "example.com", "names": {"kind": "X", "plural": "xs"}}},
        ],
    )


def crd(plural: str, kind: str, versions: list[tuple[str, bool]]) -> dict[str, Any]:
    return {
        "spec": {
            "group": "cilium.io",
            "names": {"kind": kind, "plural": plural},
            "versions": [{"name": v, "served": True, "storage": s} for v, s in versions],
        }
    }


def test_select_nodes_by_name_internal_and_external_ip() -> None:
    assert select_nodes(NODES, "").names == ["n1", "n2", "n3"]
    chosen = select_nodes(NODES, "n1, 203.0.113.2,10.0.0.9")
    assert chosen.names == ["n1", "n2"]
    assert chosen.unmatched == ["10.0.0.9"]
    assert select_nodes(NODES, "10.0.0.3").names == ["n3"]
    assert select_nodes(NODES, ",").names == ["n1", "n2", "n3"]


def test_plan_covers_every_agent_and_runs_long_tasks_first() -> None:
    tasks = plan(inventory(), Options())
    names = [t.name for t in tasks]
    assert len(names) == len(set(names))
    for pod in ("cilium-a", "cilium-b", "cilium-c"):
        assert f"cilium-bugtool in {pod}" in names
        batch = next(t for t in tasks if t.name == f"cilium-dbg commands in {pod}")
        assert [c["argv"] for c in batch.args["commands"]] == [a for _s, a, _q in AGENT_COMMANDS]
        assert batch.weight == len(AGENT_COMMANDS)
        assert f"logs {pod}/cilium-agent" in names
    # A previous instance only for a restarted container (cilium-b's agent).
    assert "logs cilium-b/cilium-agent (previous)" in names
    assert "logs cilium-a/cilium-agent (previous)" not in names
    assert "logs op-1/cilium-operator" in names
    assert tasks[0].action == "bugtool"
    priorities = [t.priority for t in tasks]
    assert priorities == sorted(priorities)
    lists = {t.args["kind"]: t.args for t in tasks if t.action == "list"}
    assert lists["CiliumNodeConfig"]["api_version"] == "cilium.io/v2"
    assert lists["CiliumNetworkPolicy"]["file"] == "ciliumnetworkpolicies-<ts>.yaml"
    assert "X" not in lists and {"Node", "Event", "Lease", "EndpointSlice"} <= set(lists)
    files = [t.args.get("file", "") for t in tasks]
    assert "logs-cilium-b-cilium-agent-<ts>-prev.log" in files
    batch_files = [
        c["file"] for t in tasks if t.action == "agent-commands" for c in t.args["commands"]
    ]
    assert "cilium-dbg-endpoint-list-cilium-a-<ts>.json" in batch_files
    assert "cilium-dbg-debuginfo-cilium-a-<ts>.md" in batch_files


def test_node_list_limits_agents_but_unready_agents_still_give_logs() -> None:
    inv = inventory()
    inv.pods["cilium"][2] = agent("cilium-c", "n3", ready=False)
    tasks = plan(inv, Options(node_list="n1"))
    names = {t.name for t in tasks}
    assert "cilium-bugtool in cilium-a" in names
    assert "cilium-bugtool in cilium-b" not in names
    assert not any(n.endswith("in cilium-c") for n in names)
    assert "cilium-dbg commands in cilium-b" not in names
    assert "logs cilium-c/cilium-agent" in names  # unready: logs whatever the filter
    assert "logs cilium-b/cilium-agent" not in names
    assert "logs op-1/cilium-operator" in names  # the operator is not node-local


def test_quick_plans_objects_and_status_only() -> None:
    tasks = plan(inventory(), Options(quick=True))
    actions = {t.action for t in tasks}
    assert "logs" not in actions and "bugtool" not in actions
    commands = {
        c["name"] for t in tasks if t.action == "agent-commands" for c in t.args["commands"]
    }
    assert commands == {
        "cilium-dbg status --verbose in cilium-a",
        "cilium-dbg status --verbose in cilium-b",
        "cilium-dbg status --verbose in cilium-c",
    }
    assert {"health", "list", "get", "helm", "version"} <= actions


def test_init_containers_only_when_they_did_not_simply_complete() -> None:
    pod = {
        "metadata": {"name": "cilium-x", "namespace": "kube-system"},
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "cilium-agent"}],
            "initContainers": [{"name": "config"}, {"name": "mount-cgroup"}, {"name": "new"}],
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}],
            "initContainerStatuses": [
                {"name": "config", "state": {"terminated": {"exitCode": 0}}},
                {"name": "mount-cgroup", "state": {"terminated": {"exitCode": 1}}},
            ],
        },
    }
    pod["status"]["containerStatuses"] = [{"name": "cilium-agent", "restartCount": 2}]
    ref = PodRef.of(pod, "cilium")
    assert ref.init_containers == ("mount-cgroup", "new")
    assert ref.restarted == frozenset({"cilium-agent"})
    assert ref.ready is False and ref.node == "n1"


def test_large_cluster_guard() -> None:
    assert not large_cluster(20, Options())
    assert large_cluster(21, Options())
    assert not large_cluster(100, Options(node_list="n1"))
    assert not large_cluster(100, Options(logs_limit_bytes=1 << 20))
    assert not large_cluster(100, Options(logs_since=3600))


def test_cilium_resources_skips_unserved() -> None:
    crds = [
        {
            "spec": {
                "group": "cilium.io",
                "names": {"kind": "Old", "plural": "olds"},
                "versions": [{"name": "v1", "served": False, "storage": True}],
            }
        }
    ]
    assert cilium_resources(crds) == []
