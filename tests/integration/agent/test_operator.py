"""cilium-operator against a real API server: leader election, cluster-pool IPAM, GC."""

from __future__ import annotations

import threading
import time

from ciliumctl.agent import identity as ident
from ciliumctl.k8s import Client
from ciliumctl.operator import gc
from ciliumctl.operator.ipam import ClusterPool, reconcile
from ciliumctl.operator.leader import LEASE_API, LeaderElector


def test_one_leader_at_a_time_and_handover(ag_client: Client, ag_cluster) -> None:  # type: ignore[no-untyped-def]
    clients = [Client(str(ag_cluster.kubeconfig_path), ag_cluster.context) for _ in range(2)]
    electors = [
        LeaderElector(
            c,
            f"op-{i}",
            "kube-system",
            name="ag-test-lock",
            lease_duration=3,
            renew_deadline=2,
            retry_period=0.3,
        )
        for i, c in enumerate(clients)
    ]
    barrier = threading.Barrier(2)
    wins: list[bool] = [False, False]

    def campaign(i: int) -> None:
        barrier.wait(timeout=10)
        wins[i] = electors[i].try_acquire_or_renew()

    threads = [threading.Thread(target=campaign, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(wins) == [False, True], wins
    leader, standby = (electors[0], electors[1]) if wins[0] else (electors[1], electors[0])
    leader.is_leader = True
    # the standby cannot take a live lease; the holder renews it
    assert not standby.try_acquire_or_renew()
    assert leader.try_acquire_or_renew()
    leader.release()
    lease = ag_client.get(LEASE_API, "Lease", "ag-test-lock", "kube-system")
    assert not lease["spec"].get("holderIdentity")
    assert standby.try_acquire_or_renew()
    lease = ag_client.get(LEASE_API, "Lease", "ag-test-lock", "kube-system")
    assert lease["spec"]["holderIdentity"] == standby.identity
    assert lease["spec"]["leaseTransitions"] == 1
    # an expired lease is taken over
    time.sleep(3.5)
    assert leader.try_acquire_or_renew()


def test_cluster_pool_gives_each_node_its_own_cidr(ag_client: Client) -> None:
    pool = ClusterPool(["10.90.0.0/16"], 24)
    first = reconcile(ag_client, pool)
    nodes = {n["metadata"]["name"] for n in ag_client.list("v1", "Node")}
    cns = {c["metadata"]["name"]: c for c in ag_client.list("cilium.io/v2", "CiliumNode")}
    assert nodes <= set(cns)
    cidrs = [cns[n]["spec"]["ipam"]["podCIDRs"][0] for n in nodes]
    assert len(set(cidrs)) == len(cidrs)
    assert all(c.startswith("10.90.") and c.endswith("/24") for c in cidrs)
    assert set(first) <= nodes
    # a restarted operator (fresh pool state) allocates nothing new
    assert reconcile(ag_client, ClusterPool(["10.90.0.0/16"], 24)) == {}
    owner = cns[sorted(nodes)[0]]["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Node"


def test_identity_gc_marks_then_deletes_unused_only(ag_client: Client) -> None:
    unused = ident.identity_object(61001, {"k8s:app": "gc-unused"})
    used = ident.identity_object(61002, {"k8s:app": "gc-used"})
    ag_client.create(unused)
    ag_client.create(used)
    ag_client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ag-gc"}})
    ag_client.apply(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumEndpoint",
            "metadata": {"name": "gc-used-pod", "namespace": "ag-gc"},
            "status": {"identity": {"id": 61002, "labels": ["k8s:app=gc-used"]}},
        }
    )
    now = time.time()
    first = gc.identities(ag_client, heartbeat_timeout=60, now=now)
    assert "61001" in first.marked and "61002" not in first.marked
    mark = ag_client.get("cilium.io/v2", "CiliumIdentity", "61001")["metadata"]["annotations"]
    assert gc.HEARTBEAT in mark
    again = gc.identities(ag_client, heartbeat_timeout=60, now=now + 30)
    assert "61001" not in again.deleted
    late = gc.identities(ag_client, heartbeat_timeout=60, now=now + 61)
    assert "61001" in late.deleted and "61002" not in late.deleted
    assert ag_client.get_or_none("cilium.io/v2", "CiliumIdentity", "61001") is None
    assert ag_client.get_or_none("cilium.io/v2", "CiliumIdentity", "61002") is not None
    # the CEP has no pod: the endpoint GC removes it, then the identity is collectable
    assert "ag-gc/gc-used-pod" in gc.endpoints(ag_client).deleted


def test_ciliumnode_gc_removes_nodes_that_are_gone(ag_client: Client) -> None:
    ag_client.create(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNode",
            "metadata": {"name": "ag-ghost-node"},
            "spec": {},
        }
    )
    result = gc.nodes(ag_client)
    assert "ag-ghost-node" in result.deleted
    assert result.alive >= 2
