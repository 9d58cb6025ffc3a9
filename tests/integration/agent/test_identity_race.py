"""Two allocators (two agents' worth of connections) racing for the same labels agree."""

from __future__ import annotations

import threading
from typing import Any

from ciliumctl.agent import identity as ident
from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client


def _race(clients: list[Client], label_sets: list[dict[str, str]]) -> list[list[ident.Allocation]]:
    allocators = [ident.IdentityAllocator(c) for c in clients]
    results: list[list[ident.Allocation]] = [[] for _ in clients]
    barrier = threading.Barrier(len(clients))
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            for labels in label_sets:
                barrier.wait(timeout=30)
                results[index].append(allocators[index].allocate(labels))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def _clients(cluster: DevCluster, n: int) -> list[Client]:
    return [Client(str(cluster.kubeconfig_path), cluster.context) for _ in range(n)]


def _identities(client: Client) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in client.list("cilium.io/v2", "CiliumIdentity")}


def test_two_agents_racing_get_one_identity_per_label_set(
    ag_cluster: DevCluster, ag_client: Client
) -> None:
    label_sets = [
        {
            "k8s:app": f"race-{i}",
            "k8s:io.kubernetes.pod.namespace": "race",
            "k8s:io.cilium.k8s.policy.cluster": "default",
        }
        for i in range(15)
    ]
    first, second = _race(_clients(ag_cluster, 2), label_sets)
    assert [a.identity for a in first] == [a.identity for a in second]
    # exactly one of the two created each object
    assert all(a.created != b.created for a, b in zip(first, second, strict=True))
    stored = _identities(ag_client)
    for labels, alloc in zip(label_sets, first, strict=True):
        obj = stored[str(alloc.identity)]
        assert ident.labels_of(obj) == labels
        assert obj["metadata"]["labels"]["app"] == labels["k8s:app"]
        assert alloc.identity >= 256
    by_labels = [ident.labels_key(ident.labels_of(o)) for o in stored.values()]
    assert len(by_labels) == len(set(by_labels)), "a label set got two identities"


def test_taken_number_is_skipped_the_same_way_by_both(
    ag_cluster: DevCluster, ag_client: Client
) -> None:
    wanted = {"k8s:app": "collide", "k8s:io.kubernetes.pod.namespace": "race"}
    squatter = {"k8s:app": "squatter", "k8s:io.kubernetes.pod.namespace": "race"}
    start = ident.first_candidate(wanted)
    ag_client.create(ident.identity_object(start, squatter))
    first, second = _race(_clients(ag_cluster, 2), [wanted])
    assert first[0].identity == second[0].identity != start
    assert (
        ident.labels_of(ag_client.get("cilium.io/v2", "CiliumIdentity", str(first[0].identity)))
        == wanted
    )
    # a third agent that already watches the identities reuses the number without creating
    third = ident.IdentityAllocator(ag_client)
    for obj in _identities(ag_client).values():
        third.observe(obj)
    assert third.allocate(wanted) == ident.Allocation(first[0].identity, False)
