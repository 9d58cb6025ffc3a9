"""The test catalog as data: cilium-cli's test names in its order, each test's scenarios,
policies, expectations and feature requirements, and the upstream tests not implemented.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ciliumctl.connectivity import model as m

#: Feature names the catalog requires (see :mod:`ciliumctl.connectivity.features`).
POLICY = "policy-enforcement"
ICMP_POLICY = "icmp-policy"
HEALTH = "health-checking"
NODE_WITHOUT_CILIUM = "node-without-cilium"
HOST_PORT = "host-port"
AGENTS = "cilium-agents"
MULTI_NODE = "multi-node"


@dataclass(frozen=True)
class ExternalParams:
    """The external targets expectations compare destinations with."""

    ipv4: str = "1.1.1.1"
    ipv6: str = "2606:4700:4700::1111"
    other_ipv4: str = "1.0.0.1"
    other_ipv6: str = "2606:4700:4700::1001"


ExpectFn = Callable[[m.Peer, m.Peer, m.Family, ExternalParams], m.Expectation]


def _labels(**labels: str) -> Mapping[str, str]:
    return MappingProxyType(labels)


@dataclass(frozen=True)
class ScenarioRef:
    """A scenario of a test, optionally restricted to sources/destinations with labels."""

    name: str
    src: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    dst: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class TestSpec:
    """One named test."""

    name: str
    scenarios: tuple[ScenarioRef, ...]
    policies: tuple[str, ...] = ()  # ids in policies.build_policies
    expect: ExpectFn | None = None  # None: everything succeeds
    requires: tuple[str, ...] = ()
    stage: str = "concurrent"  # concurrent | final

    def expectation(
        self, src: m.Peer, dst: m.Peer, family: m.Family, ext: ExternalParams
    ) -> m.Expectation:
        """The expectation of one action of this test."""
        if self.expect is None:
            return m.Expectation()
        return self.expect(src, dst, family, ext)


def _s(*names: str) -> tuple[ScenarioRef, ...]:
    return tuple(ScenarioRef(n) for n in names)


def _is_external(dst: m.Peer, family: m.Family, *ips: str) -> bool:
    return dst.address(family) in ips


# ----------------------------------------------------------------------- expectations
def _client_ingress(src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams) -> m.Expectation:
    if src.has_label("other", "client"):
        return m.Expectation(m.OK, m.OK)
    return m.Expectation(m.OK, m.DEFAULT_DENY_INGRESS_DROP)


def _all_ingress_deny(src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams) -> m.Expectation:
    if _is_external(dst, f, ext.ipv4, ext.ipv6, ext.other_ipv4, ext.other_ipv6):
        return m.Expectation(m.OK, m.NONE)
    return m.Expectation(m.DROP, m.DEFAULT_DENY_INGRESS_DROP)


def _egress_default_deny(*_: object) -> m.Expectation:
    return m.Expectation(m.DEFAULT_DENY_EGRESS_DROP, m.NONE)


def _egress_policy_deny(*_: object) -> m.Expectation:
    return m.Expectation(m.POLICY_DENY_EGRESS_DROP, m.NONE)


def _ok_none(*_: object) -> m.Expectation:
    return m.Expectation(m.OK, m.NONE)


def _echo_ingress(src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams) -> m.Expectation:
    if dst.has_label("kind", "echo") and not src.has_label("other", "client"):
        return m.Expectation(m.DROP_CURL_TIMEOUT, m.DROP_CURL_TIMEOUT)
    return m.Expectation(m.OK, m.OK)


def _to_echo_sa(src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams) -> m.Expectation:
    if dst.has_label("name", "echo-same-node"):
        return m.Expectation(m.OK, m.OK)
    return m.Expectation(m.DEFAULT_DENY_EGRESS_DROP, m.NONE)


def _to_world_80(src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams) -> m.Expectation:
    if dst.port == 80:
        return m.Expectation(m.OK, m.NONE)
    return m.Expectation(m.DROP_CURL_TIMEOUT, m.NONE)


def _to_cidr_external(src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams) -> m.Expectation:
    if _is_external(dst, f, ext.other_ipv4, ext.other_ipv6):
        return m.Expectation(m.DROP_CURL_TIMEOUT, m.NONE)
    return m.Expectation(m.OK, m.NONE)


def _other_client_deny(src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams) -> m.Expectation:
    if src.has_label("other", "client") and dst.has_label("kind", "echo"):
        return m.Expectation(m.DROP, m.POLICY_DENY_INGRESS_DROP)
    return m.Expectation(m.OK, m.OK)


def _icmp_deny(src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams) -> m.Expectation:
    if src.has_label("other", "client") and dst.has_label("kind", "client"):
        return m.Expectation(m.DROP, m.POLICY_DENY_INGRESS_DROP)
    return m.Expectation(m.OK, m.NONE)


def _egress_to_echo_deny(
    src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams
) -> m.Expectation:
    if src.has_label("kind", "client") and dst.has_label("kind", "echo") and dst.port == 8080:
        return m.Expectation(m.POLICY_DENY_EGRESS_DROP, m.NONE)
    return m.Expectation(m.OK, m.NONE)


def _named_port_deny(src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams) -> m.Expectation:
    if dst.has_label("kind", "echo") and src.has_label("name", "client"):
        return m.Expectation(m.DROP_CURL_TIMEOUT, m.POLICY_DENY_INGRESS_DROP)
    return m.Expectation(m.OK, m.OK)


def _client_to_echo_egress_deny(
    src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams
) -> m.Expectation:
    if dst.has_label("kind", "echo") and src.has_label("name", "client"):
        return m.Expectation(m.POLICY_DENY_EGRESS_DROP, m.NONE)
    return m.Expectation(m.OK, m.OK)


def _to_echo_sa_deny(src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams) -> m.Expectation:
    if dst.has_label("name", "echo-same-node"):
        return m.Expectation(m.POLICY_DENY_EGRESS_DROP, m.NONE)
    return m.Expectation(m.OK, m.OK)


def _cidr_deny(default_deny: bool) -> ExpectFn:
    def expect(src: m.Peer, dst: m.Peer, f: m.Family, ext: ExternalParams) -> m.Expectation:
        if _is_external(dst, f, ext.other_ipv4, ext.other_ipv6):
            return m.Expectation(m.POLICY_DENY_EGRESS_DROP, m.NONE)
        if _is_external(dst, f, ext.ipv4, ext.ipv6):
            if default_deny:
                return m.Expectation(m.DEFAULT_DENY_EGRESS_DROP, m.NONE)
            return m.Expectation(m.OK, m.NONE)
        return m.Expectation(m.DROP, m.DROP)

    return expect


def _all_ok(*_: object) -> m.Expectation:
    return m.Expectation(m.OK, m.OK)


# ----------------------------------------------------------------------- the catalog
CLIENT = _labels(name="client")
CLIENT2 = _labels(name="client2")
ALLOW_ALL = ("allow-all-egress", "allow-all-ingress")


def _build() -> list[TestSpec]:
    t: list[TestSpec] = []
    t.append(
        TestSpec(
            "no-policies",
            _s(
                "pod-to-pod",
                "client-to-client",
                "pod-to-service",
                "pod-to-hostport",
                "pod-to-world",
                "pod-to-host",
                "host-to-pod",
                "pod-to-cidr",
            ),
        )
    )
    t.append(TestSpec("no-policies-extra", _s("pod-to-remote-nodeport", "pod-to-local-nodeport")))
    t.append(
        TestSpec(
            "allow-all-except-world",
            _s("pod-to-pod", "client-to-client", "pod-to-service", "pod-to-host"),
            ("allow-all-except-world",),
            requires=(POLICY,),
        )
    )
    for knp in ("", "-knp"):
        t.append(
            TestSpec(
                "client-ingress" + knp,
                _s("client-to-client"),
                ("client-ingress-from-client2" + knp,),
                _client_ingress,
                (POLICY,),
            )
        )
    for knp in ("", "-knp"):
        t.append(
            TestSpec(
                "all-ingress-deny" + knp,
                _s("pod-to-pod", "pod-to-cidr"),
                ("deny-all-ingress" + knp,),
                _all_ingress_deny,
                (POLICY,),
            )
        )
    for knp in ("", "-knp"):
        t.append(
            TestSpec(
                "all-egress-deny" + knp,
                _s("pod-to-pod", "pod-to-pod-with-endpoints"),
                ("deny-all-egress" + knp,),
                _egress_default_deny,
                (POLICY,),
            )
        )
    t.append(
        TestSpec(
            "all-entities-deny",
            _s("pod-to-pod", "pod-to-cidr"),
            ("deny-all-entities",),
            _egress_policy_deny,
            (POLICY,),
        )
    )
    t.append(
        TestSpec(
            "cluster-entity",
            (ScenarioRef("pod-to-pod", dst=_labels(name="echo-same-node")),),
            ("allow-cluster-entity",),
            _all_ok,
            (POLICY,),
        )
    )
    t.append(
        TestSpec(
            "host-entity-egress",
            _s("pod-to-host"),
            ("allow-host-entity-egress",),
            _ok_none,
            (POLICY,),
        )
    )
    t.append(
        TestSpec(
            "host-entity-ingress",
            _s("host-to-pod"),
            ("allow-host-entity-ingress",),
            None,
            (POLICY,),
        )
    )
    for knp in ("", "-knp"):
        t.append(
            TestSpec(
                "echo-ingress" + knp,
                _s("pod-to-pod"),
                ("echo-ingress-from-other-client" + knp,),
                _echo_ingress,
                (POLICY,),
            )
        )
    t.append(
        TestSpec(
            "client-ingress-icmp",
            _s("client-to-client"),
            ("client-ingress-icmp",),
            _client_ingress,
            (POLICY, ICMP_POLICY),
        )
    )
    for knp in ("", "-knp"):
        t.append(
            TestSpec(
                "client-egress" + knp,
                _s("pod-to-pod"),
                ("client-egress-to-echo" + knp,),
                None,
                (POLICY,),
            )
        )
    for knp in ("", "-knp"):
        for pr in ("", "-port-range"):
            t.append(
                TestSpec(
                    f"client-egress-expression{knp}{pr}",
                    _s("pod-to-pod"),
                    (f"client-egress-to-echo-expression{knp}{pr}",),
                    None,
                    (POLICY,),
                )
            )
    kind_client = (ScenarioRef("pod-to-pod", src=_labels(kind="client")),)
    for pr in ("", "-port-range"):
        t.append(
            TestSpec(
                "client-with-service-account-egress-to-echo" + pr,
                kind_client,
                ("client-sa-egress-to-echo" + pr,),
                None,
                (POLICY,),
            )
        )
    for pr in ("", "-port-range"):
        t.append(
            TestSpec(
                "client-egress-to-echo-service-account" + pr,
                kind_client,
                ("client-egress-to-echo-sa" + pr,),
                _to_echo_sa,
                (POLICY,),
            )
        )
    for pr in ("", "-port-range"):
        t.append(
            TestSpec(
                "to-entities-world" + pr,
                _s("pod-to-world"),
                ("client-egress-to-world-80" + pr,),
                _to_world_80,
                (POLICY,),
            )
        )
    for knp in ("", "-knp"):
        t.append(
            TestSpec(
                "to-cidr-external" + knp,
                _s("pod-to-cidr"),
                ("client-egress-to-cidr-external" + knp,),
                _to_cidr_external,
                (POLICY,),
            )
        )
    t.append(
        TestSpec(
            "from-cidr-host-netns",
            _s("from-cidr-to-pod"),
            ("echo-ingress-from-cidr",),
            _ok_none,
            (POLICY, NODE_WITHOUT_CILIUM),
        )
    )
    t.append(
        TestSpec(
            "echo-ingress-from-other-client-deny",
            (
                ScenarioRef("pod-to-pod", src=CLIENT),
                ScenarioRef("pod-to-pod", src=CLIENT2),
                ScenarioRef("client-to-client"),
            ),
            (*ALLOW_ALL, "echo-ingress-from-other-client-deny"),
            _other_client_deny,
            (POLICY,),
        )
    )
    t.append(
        TestSpec(
            "client-ingress-from-other-client-icmp-deny",
            _s("pod-to-pod", "client-to-client"),
            (*ALLOW_ALL, "client-ingress-icmp-deny"),
            _icmp_deny,
            (POLICY, ICMP_POLICY),
        )
    )
    for pr in ("", "-port-range"):
        t.append(
            TestSpec(
                "client-egress-to-echo-deny" + pr,
                _s("client-to-client", "pod-to-pod"),
                (*ALLOW_ALL, "client-egress-to-echo-deny" + pr),
                _egress_to_echo_deny,
                (POLICY,),
            )
        )
    t.append(
        TestSpec(
            "client-ingress-to-echo-named-port-deny",
            (ScenarioRef("pod-to-pod", src=CLIENT), ScenarioRef("pod-to-pod", src=CLIENT2)),
            (*ALLOW_ALL, "echo-ingress-named-port-deny"),
            _named_port_deny,
            (POLICY,),
        )
    )
    for prefix, policy in (
        ("client-egress-to-echo-expression-deny", "client-egress-to-echo-expression-deny"),
        ("client-with-service-account-egress-to-echo-deny", "client-sa-egress-to-echo-deny"),
    ):
        for pr in ("", "-port-range"):
            t.append(
                TestSpec(
                    prefix + pr,
                    (
                        ScenarioRef("pod-to-pod", src=CLIENT),
                        ScenarioRef("pod-to-pod", src=CLIENT2),
                    ),
                    (*ALLOW_ALL, policy + pr),
                    _client_to_echo_egress_deny,
                    (POLICY,),
                )
            )
    for pr in ("", "-port-range"):
        t.append(
            TestSpec(
                "client-egress-to-echo-service-account-deny" + pr,
                (ScenarioRef("pod-to-pod", src=CLIENT),),
                (*ALLOW_ALL, "client-egress-to-echo-sa-deny" + pr),
                _to_echo_sa_deny,
                (POLICY,),
            )
        )
    t.append(
        TestSpec(
            "client-egress-to-cidr-deny",
            _s("pod-to-cidr"),
            ("allow-all-egress", "client-egress-to-cidr-deny"),
            _cidr_deny(default_deny=False),
            (POLICY,),
        )
    )
    t.append(
        TestSpec(
            "client-egress-to-cidr-deny-default",
            _s("pod-to-cidr"),
            ("client-egress-to-cidr-deny",),
            _cidr_deny(default_deny=True),
            (POLICY,),
        )
    )
    t.append(TestSpec("health", _s("cilium-health"), requires=(AGENTS, HEALTH)))
    t.append(
        TestSpec(
            "no-unexpected-packet-drops",
            _s("no-unexpected-packet-drops"),
            requires=(AGENTS,),
            stage="final",
        )
    )
    t.append(
        TestSpec("check-log-errors", _s("no-errors-in-logs"), requires=(AGENTS,), stage="final")
    )
    return t


IMPLEMENTED: tuple[TestSpec, ...] = tuple(_build())

#: cilium-cli's other tests, listed so that ``--test`` matches them and the run says they are
#: not implemented here (instead of silently ignoring a name a runbook uses).
NOT_IMPLEMENTED: tuple[str, ...] = (
    "no-policies-from-outside",
    "allow-all-with-metrics-check",
    "all-ingress-deny-from-outside",
    "cluster-entity-multi-cluster",
    "echo-ingress-from-outside",
    "client-egress-to-cidrgroup-deny",
    "client-egress-to-cidrgroup-deny-by-label",
    "clustermesh-endpointslice-sync",
    "north-south-loadbalancing",
    "pod-to-pod-encryption",
    "pod-to-pod-with-l7-policy-encryption",
    "pod-to-pod-encryption-v2",
    "pod-to-pod-with-l7-policy-encryption-v2",
    "node-to-node-encryption",
    "egress-gateway",
    "egress-gateway-multigateway",
    "egress-gateway-excluded-cidrs",
    "egress-gateway-with-l7-policy",
    "pod-to-node-cidrpolicy",
    "north-south-loadbalancing-with-l7-policy",
    "north-south-loadbalancing-with-l7-policy-port-range",
    "echo-ingress-l7",
    "echo-ingress-l7-via-hostport",
    "echo-ingress-from-client-tiered-wildcard-pass-l7",
    "echo-ingress-l7-named-port",
    "client-egress-l7-method",
    "client-egress-l7-method-port-range",
    "client-egress-l7",
    "client-egress-l7-port-range",
    "client-egress-l7-named-port",
    "client-egress-tls-sni",
    "client-egress-tls-sni-denied",
    "client-egress-tls-sni-wildcard",
    "client-egress-tls-sni-wildcard-denied",
    "client-egress-l7-tls-sni",
    "client-egress-l7-set-header",
    "client-egress-l7-set-header-port-range",
    "echo-ingress-auth-always-fail",
    "echo-ingress-auth-always-fail-port-range",
    "echo-ingress-mutual-auth-spiffe",
    "echo-ingress-mutual-auth-spiffe-port-range",
    "pod-to-ingress-service",
    "pod-to-ingress-service-allow-ingress-identity",
    "pod-to-ingress-service-deny-all",
    "outside-to-ingress-service",
    "outside-to-ingress-service-deny-all-ingress",
    "outside-to-ingress-service-deny-cidr",
    "pod-to-itself-via-service",
    "l7-lb",
    "dns-only",
    "to-fqdns",
    "to-fqdns-with-proxy",
    "to-fqdns-with-ccec-listener",
    "pod-to-controlplane-host",
    "pod-to-k8s-on-controlplane",
    "pod-to-controlplane-host-cidr",
    "pod-to-k8s-on-controlplane-cidr",
    "policy-local-cluster-egress",
    "local-redirect-policy",
    "local-redirect-policy-with-node-dns",
    "pod-to-pod-no-frag",
    "bgp-control-plane-v1",
    "bgp-control-plane-v2",
    "multicast",
    "strict-mode-encryption",
    "strict-mode-encryption-v2",
    "ipsec-key-derivation-validation",
    "ztunnel-pod-to-pod-encryption",
    "host-firewall-ingress",
    "host-firewall-egress",
    "client-egress-l7-tls-deny-without-headers",
    "client-egress-l7-tls-headers",
    "client-egress-l7-tls-headers-port-range",
    "egress-to-specific-namespace-ccnp",
    "ingress-from-specific-namespace-ccnp",
    "no-interrupted-connections",
    "no-ipsec-xfrm-errors",
)


def by_name() -> dict[str, TestSpec]:
    """The implemented tests by name."""
    return {t.name: t for t in IMPLEMENTED}
