"""Endpoint manager: identity, regeneration on policy / identity change, CiliumEndpoint shape."""

from __future__ import annotations

from typing import Any

from ciliumctl.agent.endpoint import READY, EndpointManager
from ciliumctl.agent.identity import IdentityAllocator
from ciliumctl.agent.ipcache import IPCache
from ciliumctl.agent.policy import PolicyRepository, SelectorCache, reserved_identities
from ciliumctl.datapath.model import Direction, Protocol
from ciliumctl.validators.labels import default_filter
from tests.unit.agent.fakes import MemoryIdentityStore, RecordingDatapath

NS = {"kubernetes.io/metadata.name": "prod"}


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "prod",
            "uid": f"uid-{name}",
            "labels": labels,
            "resourceVersion": "1",
        },
        "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
    }


def manager() -> tuple[EndpointManager, RecordingDatapath, PolicyRepository, list[dict[str, Any]]]:
    dp = RecordingDatapath()
    repo = PolicyRepository(allow_localhost=False)
    cache = SelectorCache()
    cache.set_identities(reserved_identities())
    published: list[dict[str, Any]] = []
    mgr = EndpointManager(
        node="n1",
        cluster="default",
        label_filter=default_filter(),
        repository=repo,
        cache=cache,
        allocator=IdentityAllocator(MemoryIdentityStore()),
        datapath=dp,
        publish=lambda ep: published.append(ep.to_cep()),
    )
    return mgr, dp, repo, published


def test_endpoint_gets_identity_policy_and_cep() -> None:
    mgr, dp, _repo, published = manager()
    web = mgr.add(
        pod("web", app="web", **{"pod-template-hash": "x"}), NS, ifname="lxc1", ipv4="10.0.0.5"
    )
    assert web.state == READY and web.identity is not None and web.identity >= 256
    assert "k8s:pod-template-hash" not in web.security_labels
    assert dp.endpoints[web.id].identity == web.identity
    assert [e["state"] for e in reversed(web.log)] == [
        "waiting-for-identity",
        "regenerating",
        "ready",
    ]
    cep = published[-1]
    assert cep["metadata"] == {
        "name": "web",
        "namespace": "prod",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "uid-web"}],
    }
    assert cep["status"]["identity"]["id"] == web.identity
    assert cep["status"]["networking"] == {"addressing": [{"ipv4": "10.0.0.5"}], "node": "n1"}
    assert cep["status"]["named-ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert cep["status"]["policy"]["ingress"]["enforcing"] is False


def test_policy_change_regenerates_and_named_port_resolves() -> None:
    mgr, dp, repo, published = manager()
    web = mgr.add(pod("web", app="web"), NS, ifname="lxc1")
    client = mgr.add(pod("client", app="client"), NS, ifname="lxc2")
    repo.upsert(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "p", "namespace": "prod"},
            "spec": {
                "endpointSelector": {"matchLabels": {"app": "web"}},
                "ingress": [
                    {
                        "fromEndpoints": [{"matchLabels": {"app": "client"}}],
                        "toPorts": [{"ports": [{"port": "http"}]}],
                    }
                ],
            },
        }
    )
    writes = dp.policy_writes
    assert mgr.regenerate_all("policy added") == 1  # only web's map changed
    assert dp.policy_writes == writes + 1
    policy = dp.policies[web.id]
    assert policy.ingress_enforced
    assert [(e.identity, e.direction, e.protocol, e.port) for e in policy.entries] == [
        (client.identity, Direction.INGRESS, Protocol.TCP, 8080)
    ]
    web_cep = [c for c in published if c["metadata"]["name"] == "web"][-1]
    assert web_cep["status"]["policy"]["ingress"]["enforcing"] is True


def test_label_change_gives_new_identity_and_remove_is_idempotent() -> None:
    mgr, dp, _repo, _published = manager()
    ep = mgr.add(pod("web", app="web"), NS, ifname="lxc1")
    first = ep.identity
    assert mgr.update_pod(pod("web", app="web", version="2"), NS)
    assert ep.identity != first
    assert mgr.remove(ep.id) is ep
    assert mgr.remove(ep.id) is None
    assert ep.id not in dp.endpoints


def test_same_labels_share_an_identity() -> None:
    mgr, _dp, _repo, _pub = manager()
    a = mgr.add(pod("a", app="web"), NS)
    b = mgr.add(pod("b", app="web"), NS)
    assert a.identity == b.identity and a.id != b.id


def test_ipcache_owner_precedence_and_datapath_sync() -> None:
    dp = RecordingDatapath()
    cache = IPCache(dp)
    cache.upsert("cidr", "10.0.0.5", 16777217)
    cache.upsert("endpoint", "10.0.0.5", 300)
    assert dp.ipcache["10.0.0.5/32"].identity == 300
    cache.delete("endpoint", "10.0.0.5")
    assert dp.ipcache["10.0.0.5/32"].identity == 16777217
    cache.delete("cidr", "10.0.0.5/32")
    assert dp.ipcache == {}
    cache.upsert("node", "192.0.2.1", 6, tunnel_endpoint="192.0.2.1")
    assert [(o.owner, o.entry.prefix) for o in cache.entries()] == [("node", "192.0.2.1/32")]


def test_a_slow_datapath_write_holds_up_neither_lookups_nor_other_endpoints() -> None:
    """One endpoint's programs being attached (slow under load) must not queue the CNI
    lookups or the other pods' ADDs behind it: the manager's lock covers in-memory work
    only, each endpoint's own lock its datapath writes."""
    import threading

    mgr, dp, _repo, _published = manager()
    entered, release = threading.Event(), threading.Event()
    plain_create = dp.create_endpoint

    def slow_create(spec: Any, policy: Any = None) -> None:
        if spec.host_ifname == "lxcslow":
            entered.set()
            assert release.wait(10)
        plain_create(spec, policy)

    dp.create_endpoint = slow_create  # type: ignore[method-assign]
    slow = threading.Thread(
        target=mgr.add,
        args=(pod("slow", app="slow"), NS),
        kwargs={"ifname": "lxcslow", "container_id": "c-slow", "ipv4": "10.0.0.7"},
    )
    slow.start()
    try:
        assert entered.wait(10)
        # while "slow" is inside its datapath write:
        assert mgr.by_container("c-slow") is not None  # the lookup answers
        fast = mgr.add(pod("fast", app="fast"), NS, ifname="lxcfast", ipv4="10.0.0.8")
        assert fast.state == READY and fast.id in dp.endpoints  # another pod goes ahead
        assert mgr.by_pod("prod", "slow").state != READY  # type: ignore[union-attr]
    finally:
        release.set()
        slow.join(10)
    assert mgr.by_pod("prod", "slow").state == READY  # type: ignore[union-attr]
    assert {s.host_ifname for s in dp.endpoints.values()} == {"lxcslow", "lxcfast"}


def test_a_regeneration_racing_a_revision_bump_keeps_the_newer_revision() -> None:
    """bump_revision may move an endpoint on while its map is being written; the
    regeneration that finishes after it must not take the realized revision back."""
    import threading

    mgr, dp, repo, _published = manager()
    ep = mgr.add(pod("web", app="web"), NS, ifname="lxc1", ipv4="10.0.0.5")
    assert ep.result is not None
    old = ep.result.revision
    entered, release = threading.Event(), threading.Event()
    plain_replace = dp.replace_policy

    def slow_replace(endpoint_id: int, policy: Any) -> int:
        entered.set()
        assert release.wait(10)
        return plain_replace(endpoint_id, policy)

    repo.upsert(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "p", "namespace": "prod"},
            "spec": {"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]},
        }
    )
    dp.replace_policy = slow_replace  # type: ignore[method-assign]
    worker = threading.Thread(target=mgr.regenerate, args=(ep, "policy changed"))
    worker.start()
    assert entered.wait(10)
    mgr.bump_revision(repo.revision + 5, set())  # another change, not selecting it
    release.set()
    worker.join(10)
    assert ep.result.revision == repo.revision + 5 > old
