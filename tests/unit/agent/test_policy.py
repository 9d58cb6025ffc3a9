"""Policy translation: CNP / CCNP / NetworkPolicy objects -> an endpoint's policy map entries."""

from __future__ import annotations

from typing import Any

import pytest

from ciliumctl.agent import labels as lbl
from ciliumctl.agent.policy import (
    EndpointContext,
    PolicyKey,
    PolicyRepository,
    SelectorCache,
    reserved_identities,
)
from ciliumctl.datapath.model import (
    ANY_IDENTITY,
    Direction,
    Enforcement,
    PolicyEntry,
    Protocol,
    ReservedIdentity,
)

IN, OUT = Direction.INGRESS, Direction.EGRESS
HOST = int(ReservedIdentity.HOST)
WORLD = int(ReservedIdentity.WORLD)
W4 = int(ReservedIdentity.WORLD_IPV4)
W6 = int(ReservedIdentity.WORLD_IPV6)


def pod_labels(
    ns: str, sa: str = "default", ns_labels: dict[str, str] | None = None, **labels: str
) -> dict[str, str]:
    pod = {
        "metadata": {"namespace": ns, "labels": labels},
        "spec": {"serviceAccountName": sa},
    }
    ns_labels = {"kubernetes.io/metadata.name": ns, **(ns_labels or {})}
    return lbl.endpoint_labels(pod, ns_labels, "default")


WEB = pod_labels("prod", app="web")
DB = pod_labels("prod", sa="db-sa", app="db", tier="backend")
OTHER_NS_WEB = pod_labels("dev", ns_labels={"team": "a"}, app="web")
CIDR_10 = 16777217
CIDR_10_1 = 16777218
IDS = {1000: WEB, 1001: DB, 1002: OTHER_NS_WEB}


def make_cache(extra: dict[int, dict[str, str]] | None = None) -> SelectorCache:
    cache = SelectorCache()
    cache.set_identities(
        {
            **reserved_identities(),
            **IDS,
            CIDR_10: lbl.cidr_labels("10.0.0.0/8"),
            CIDR_10_1: lbl.cidr_labels("10.1.0.0/16"),
            **(extra or {}),
        }
    )
    return cache


def cnp(
    spec: dict[str, Any], name: str = "p", ns: str = "prod", kind: str = "CiliumNetworkPolicy"
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if kind != "CiliumClusterwideNetworkPolicy":
        meta["namespace"] = ns
    return {"apiVersion": "cilium.io/v2", "kind": kind, "metadata": meta, "spec": spec}


def compute(
    repo: PolicyRepository,
    labels: dict[str, str],
    cache: SelectorCache | None = None,
    **ports: tuple[tuple[Protocol, int], ...],
):  # type: ignore[no-untyped-def]
    return repo.compute(EndpointContext(labels, ports), cache or make_cache())


def allow(
    ident: int, d: Direction, proto: Protocol = Protocol.ANY, port: int = 0, end: int | None = None
) -> PolicyEntry:
    return PolicyEntry(ident, d, proto, port, port if end is None else end)


def deny(
    ident: int, d: Direction, proto: Protocol = Protocol.ANY, port: int = 0, end: int | None = None
) -> PolicyEntry:
    return PolicyEntry(ident, d, proto, port, port if end is None else end, deny=True)


def test_no_policy_enforces_nothing() -> None:
    result = compute(PolicyRepository(), WEB)
    assert result.policy.entries == ()
    assert not result.policy.ingress_enforced and not result.policy.egress_enforced


def test_from_endpoints_match_labels_is_namespace_scoped() -> None:
    repo = PolicyRepository()
    repo.upsert(
        cnp(
            {
                "endpointSelector": {"matchLabels": {"app": "db"}},
                "ingress": [
                    {
                        "fromEndpoints": [{"matchLabels": {"app": "web"}}],
                        "toPorts": [{"ports": [{"port": "5432", "protocol": "TCP"}]}],
                    }
                ],
            }
        )
    )
    result = compute(repo, DB)
    assert result.policy.ingress_enforced and not result.policy.egress_enforced
    # web in prod only (1002 is web in dev), plus the host (allow-localhost)
    assert set(result.policy.entries) == {allow(1000, IN, Protocol.TCP, 5432), allow(HOST, IN)}
    assert result.policies == ("CiliumNetworkPolicy prod/p",)
    # the policy does not select web
    assert compute(repo, WEB).policy.entries == ()


def test_match_expressions_and_explicit_namespace() -> None:
    repo = PolicyRepository()
    repo.upsert(
        cnp(
            {
                "endpointSelector": {
                    "matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "x"]}]
                },
                "ingress": [
                    {
                        "fromEndpoints": [
                            {
                                "matchLabels": {"k8s:io.kubernetes.pod.namespace": "dev"},
                                "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}],
                            }
                        ]
                    }
                ],
            }
        )
    )
    entries = set(compute(repo, DB).policy.entries)
    assert entries == {allow(1002, IN), allow(HOST, IN)}


def test_empty_from_endpoints_selects_own_namespace_in_cnp_and_all_in_ccnp() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(cnp({"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]}))
    assert {e.identity for e in compute(repo, DB).policy.entries} == {1000, 1001}
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]},
            kind="CiliumClusterwideNetworkPolicy",
        )
    )
    idents = {e.identity for e in compute(repo, DB).policy.entries}
    assert {1000, 1001, 1002} <= idents


def test_label_source_prefix_restricts_source() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {"matchLabels": {"k8s:app": "db"}},
                "ingress": [{"fromEndpoints": [{"matchLabels": {"container:app": "web"}}]}],
            }
        )
    )
    result = compute(repo, DB)
    assert result.policy.ingress_enforced
    assert result.policy.entries == ()


def test_entities() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"fromEntities": ["world", "kube-apiserver"]}],
                "egress": [{"toEntities": ["cluster"]}, {"toEntities": ["health", "remote-node"]}],
            }
        )
    )
    entries = set(compute(repo, DB).policy.entries)
    ingress = {e.identity for e in entries if e.direction is IN}
    egress = {e.identity for e in entries if e.direction is OUT}
    assert ingress == {WORLD, W4, W6, CIDR_10, CIDR_10_1, int(ReservedIdentity.KUBE_APISERVER)}
    assert egress == {
        1000,
        1001,
        1002,
        HOST,
        int(ReservedIdentity.REMOTE_NODE),
        int(ReservedIdentity.INIT),
        int(ReservedIdentity.HEALTH),
        int(ReservedIdentity.UNMANAGED),
        int(ReservedIdentity.KUBE_APISERVER),
    }


def test_entity_all_is_the_wildcard_identity() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {},
                "egress": [
                    {
                        "toEntities": ["all"],
                        "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}]}],
                    }
                ],
            }
        )
    )
    assert compute(repo, WEB).policy.entries == (allow(ANY_IDENTITY, OUT, Protocol.UDP, 53),)


def test_cidr_with_except() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {},
                "egress": [
                    {"toCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}]},
                    {
                        "toCIDR": ["0.0.0.0/0"],
                        "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
                    },
                ],
            }
        )
    )
    entries = set(compute(repo, WEB).policy.entries)
    assert allow(CIDR_10, OUT) in entries
    assert not any(e.identity == CIDR_10_1 and e.protocol is Protocol.ANY for e in entries)
    # 0.0.0.0/0 covers every IPv4 CIDR identity and world / world-ipv4, not world-ipv6
    https = {e.identity for e in entries if e.port == 443}
    assert https == {WORLD, W4, CIDR_10, CIDR_10_1}
    assert repo.cidr_prefixes() == {"10.0.0.0/8", "10.1.0.0/16", "0.0.0.0/0"}


def test_port_ranges_protocols_and_any() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {},
                "ingress": [
                    {
                        "toPorts": [
                            {
                                "ports": [
                                    {"port": "8000", "endPort": 8100, "protocol": "TCP"},
                                    {"port": "53"},
                                    {"port": "0", "protocol": "UDP"},
                                ]
                            }
                        ]
                    }
                ],
            }
        )
    )
    entries = set(compute(repo, WEB).policy.entries)
    assert entries == {
        allow(ANY_IDENTITY, IN, Protocol.TCP, 8000, 8100),
        allow(ANY_IDENTITY, IN, Protocol.TCP, 53),
        allow(ANY_IDENTITY, IN, Protocol.UDP, 53),
        allow(ANY_IDENTITY, IN, Protocol.SCTP, 53),
        allow(ANY_IDENTITY, IN, Protocol.UDP, 0),
    }


def test_icmp_types_by_number_and_name() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {},
                "egress": [
                    {
                        "toEndpoints": [{"matchLabels": {"app": "db"}}],
                        "icmps": [
                            {"fields": [{"type": 8}, {"type": "EchoRequest", "family": "IPv6"}]}
                        ],
                    }
                ],
            }
        )
    )
    entries = set(compute(repo, WEB).policy.entries)
    assert entries == {allow(1001, OUT, Protocol.ICMP, 8), allow(1001, OUT, Protocol.ICMPV6, 128)}


def test_deny_rules_and_deny_only_policy_enforces() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {"matchLabels": {"app": "db"}},
                "ingressDeny": [
                    {
                        "fromEndpoints": [{"matchLabels": {"app": "web"}}],
                        "toPorts": [{"ports": [{"port": "22", "protocol": "TCP"}]}],
                    }
                ],
            }
        )
    )
    repo.upsert(
        cnp(
            {
                "endpointSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"fromEntities": ["cluster"]}],
            },
            name="allow",
        )
    )
    result = compute(repo, DB)
    assert result.policy.ingress_enforced
    assert deny(1000, IN, Protocol.TCP, 22) in result.policy.entries
    assert allow(1000, IN) in result.policy.entries
    assert result.policies == ("CiliumNetworkPolicy prod/allow", "CiliumNetworkPolicy prod/p")


def test_enable_default_deny_false_and_empty_rule() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {},
                "enableDefaultDeny": {"ingress": False},
                "ingress": [{"fromEntities": ["world"]}],
            }
        )
    )
    assert not compute(repo, WEB).policy.ingress_enforced
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(cnp({"endpointSelector": {}, "egress": [{}]}))
    result = compute(repo, WEB)
    assert result.policy.egress_enforced and result.policy.entries == ()


def test_named_ports_ingress_uses_own_ports_egress_uses_cluster() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {},
                "ingress": [{"toPorts": [{"ports": [{"port": "http"}]}]}],
                "egress": [{"toPorts": [{"ports": [{"port": "pg", "protocol": "TCP"}]}]}],
            }
        )
    )
    cluster_ports = {"pg": ((Protocol.TCP, 5432), (Protocol.UDP, 5433))}
    result = repo.compute(
        EndpointContext(WEB, {"http": ((Protocol.TCP, 8080),)}),
        make_cache(),
        lambda name: cluster_ports.get(name, ()),
    )
    assert set(result.policy.entries) == {
        allow(ANY_IDENTITY, IN, Protocol.TCP, 8080),
        allow(ANY_IDENTITY, OUT, Protocol.TCP, 5432),
    }
    result = repo.compute(EndpointContext(DB), make_cache())
    assert any("named port 'http' is not defined" in n for n in result.not_enforced)


def test_service_account_selection() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {
                    "matchLabels": {"io.cilium.k8s.policy.serviceaccount": "db-sa"}
                },
                "ingress": [{"fromEntities": ["host"]}],
            }
        )
    )
    assert compute(repo, DB).policy.entries == (allow(HOST, IN),)
    assert not compute(repo, WEB).policy.ingress_enforced


def test_l7_and_fqdn_are_reported_and_never_allowed() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {},
                "egress": [
                    {
                        "toEndpoints": [{}],
                        "toPorts": [
                            {
                                "ports": [{"port": "80", "protocol": "TCP"}],
                                "rules": {"http": [{"method": "GET"}]},
                            },
                            {"ports": [{"port": "81", "protocol": "TCP"}]},
                        ],
                    },
                    {
                        "toFQDNs": [{"matchName": "example.com"}],
                        "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
                    },
                    {
                        "toEndpoints": [{"matchLabels": {"k8s-app": "kube-dns"}}],
                        "toPorts": [
                            {
                                "ports": [{"port": "53", "protocol": "ANY"}],
                                "rules": {"dns": [{"matchPattern": "*"}]},
                            }
                        ],
                    },
                ],
            }
        )
    )
    result = compute(repo, WEB)
    assert result.policy.egress_enforced
    ports = {e.port for e in result.policy.entries}
    assert ports == {81}  # 80 (HTTP rules), 443 (toFQDNs) and 53 (DNS rules) are not allowed
    text = " ".join(result.not_enforced)
    assert "L7 rules on port(s) 80/TCP are not enforced" in text
    assert "toFQDNs (DNS-based policy) is not enforced" in text


def test_rejected_policy_reported_with_validator_message_rest_applies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"fromEntities": ["world"]}],
            },
            name="good",
        )
    )
    bad = repo.upsert(
        cnp(
            {
                "endpointSelector": {"matchLabels": {"app": "db"}},
                "ingress": [
                    {
                        "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}],
                        "icmps": [{"fields": [{"type": 8}]}],
                    }
                ],
            },
            name="bad",
        )
    )
    assert bad.errors
    result = compute(repo, DB)
    assert result.policies == ("CiliumNetworkPolicy prod/good",)
    assert result.rejected and result.rejected[0].startswith("CiliumNetworkPolicy prod/bad: ")
    assert bad.errors[0] in result.rejected[0]
    assert {e.identity for e in result.policy.entries} == {WORLD, W4, W6, CIDR_10, CIDR_10_1}
    assert any("rejected" in r.message and "prod/bad" in r.message for r in caplog.records)
    # an endpoint the bad policy was not meant for hears nothing about it
    assert compute(repo, WEB).rejected == ()


def test_invalid_port_is_rejected_by_validators() -> None:
    repo = PolicyRepository()
    parsed = repo.upsert(
        cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "99999"}]}]}]})
    )
    assert parsed.errors and "ingress" in parsed.errors[0]


def test_delete_and_revision() -> None:
    repo = PolicyRepository()
    first = repo.revision
    parsed = repo.upsert(cnp({"endpointSelector": {}, "ingress": [{}]}))
    assert repo.revision == first + 1
    assert repo.delete(parsed.key)
    assert not repo.delete(PolicyKey("CiliumNetworkPolicy", "prod", "nope"))
    assert not compute(repo, WEB).policy.ingress_enforced


def test_enforcement_modes() -> None:
    repo = PolicyRepository(enforcement=Enforcement.ALWAYS, allow_localhost=False)
    result = compute(repo, WEB)
    assert (
        result.policy.ingress_enforced
        and result.policy.egress_enforced
        and not result.policy.entries
    )
    repo = PolicyRepository(enforcement=Enforcement.NEVER)
    repo.upsert(cnp({"endpointSelector": {}, "ingress": [{}]}))
    result = compute(repo, WEB)
    assert not result.policy.ingress_enforced and not result.policy.entries


def test_specs_list_and_ccnp_namespace_ignored() -> None:
    repo = PolicyRepository(allow_localhost=False)
    obj = cnp({}, kind="CiliumClusterwideNetworkPolicy")
    del obj["spec"]
    obj["specs"] = [
        {
            "endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"fromEntities": ["host"]}],
        },
        {
            "endpointSelector": {"matchLabels": {"app": "web"}},
            "egress": [{"toEntities": ["world"]}],
        },
    ]
    repo.upsert(obj)
    for labels in (WEB, OTHER_NS_WEB):
        result = compute(repo, labels)
        assert result.policy.ingress_enforced and result.policy.egress_enforced


def test_knp_pod_namespace_and_ipblock_peers() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "k", "namespace": "prod"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [
                    {
                        "from": [
                            {"podSelector": {"matchLabels": {"app": "web"}}},
                            {"namespaceSelector": {"matchLabels": {"team": "a"}}},
                            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
                        ],
                        "ports": [
                            {"port": 5432},
                            {"port": 6000, "endPort": 6010, "protocol": "UDP"},
                        ],
                    }
                ],
            },
        }
    )
    result = compute(repo, DB)
    assert result.policy.ingress_enforced and not result.policy.egress_enforced
    idents = {e.identity for e in result.policy.entries}
    assert idents == {1000, 1002, CIDR_10}
    assert {(e.protocol, e.port, e.port_end) for e in result.policy.entries} == {
        (Protocol.TCP, 5432, 5432),
        (Protocol.UDP, 6000, 6010),
    }


def test_knp_semantics_of_empty_rules_and_policy_types() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        {
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-all", "namespace": "prod"},
            "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress", "Egress"]},
        }
    )
    result = compute(repo, WEB)
    assert result.policy.ingress_enforced and result.policy.egress_enforced
    assert result.policy.entries == (allow(ANY_IDENTITY, IN),)
    assert not compute(repo, OTHER_NS_WEB).policy.ingress_enforced


def test_selector_cache_follows_identity_changes() -> None:
    repo = PolicyRepository(allow_localhost=False)
    repo.upsert(
        cnp(
            {
                "endpointSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "web"}}]}],
            }
        )
    )
    cache = make_cache()
    assert {e.identity for e in compute(repo, DB, cache).policy.entries} == {1000}
    cache.upsert(1003, pod_labels("prod", app="web", version="2"))
    assert {e.identity for e in compute(repo, DB, cache).policy.entries} == {1000, 1003}
    cache.remove(1000)
    assert {e.identity for e in compute(repo, DB, cache).policy.entries} == {1003}
    assert any(ids == {1003} for ids in cache.selectors().values())
