from ciliumctl.connectivity import catalog, policies
from ciliumctl.connectivity import model as m

EXT = catalog.ExternalParams()


def peer(
    peer_name: str, peer_kind: str = "pod", ip: str = "10.0.0.1", port: int = 0, **labels: str
) -> m.Peer:
    return m.Peer(peer_name, peer_kind, {m.Family.IPV4: ip}, port, labels=labels)


CLIENT = peer("client", name="client", kind="client")
CLIENT2 = peer("client2", name="client2", kind="client", other="client")
ECHO_SAME = peer("echo-same-node", port=8080, name="echo-same-node", kind="echo")
ECHO_OTHER = peer("echo-other-node", port=8080, name="echo-other-node", kind="echo")


def expect(test: str, src: m.Peer, dst: m.Peer) -> m.Expectation:
    return catalog.by_name()[test].expectation(src, dst, m.Family.IPV4, EXT)


def test_the_issue_lists_every_test_as_implemented() -> None:
    wanted = [
        "no-policies",
        "no-policies-extra",
        "allow-all-except-world",
        "client-ingress",
        "client-ingress-knp",
        "all-ingress-deny",
        "all-ingress-deny-knp",
        "all-egress-deny",
        "all-egress-deny-knp",
        "all-entities-deny",
        "cluster-entity",
        "host-entity-egress",
        "host-entity-ingress",
        "echo-ingress",
        "echo-ingress-knp",
        "client-ingress-icmp",
        "client-egress",
        "client-egress-knp",
        "client-egress-expression",
        "client-egress-expression-knp",
        "client-with-service-account-egress-to-echo",
        "client-egress-to-echo-service-account",
        "to-entities-world",
        "to-cidr-external",
        "to-cidr-external-knp",
        "from-cidr-host-netns",
        "echo-ingress-from-other-client-deny",
        "client-ingress-from-other-client-icmp-deny",
        "client-egress-to-echo-deny",
        "client-ingress-to-echo-named-port-deny",
        "client-egress-to-echo-expression-deny",
        "client-with-service-account-egress-to-echo-deny",
        "client-egress-to-echo-service-account-deny",
        "client-egress-to-cidr-deny",
        "client-egress-to-cidr-deny-default",
        "health",
        "no-unexpected-packet-drops",
        "check-log-errors",
    ]
    have = catalog.by_name()
    assert [n for n in wanted if n not in have] == []
    assert not set(have) & set(catalog.NOT_IMPLEMENTED)
    assert len(catalog.NOT_IMPLEMENTED) == len(set(catalog.NOT_IMPLEMENTED))


def test_every_policy_id_exists_and_builds_in_the_namespace() -> None:
    built = policies.build_policies(policies.PolicyParams())
    for spec in catalog.IMPLEMENTED:
        for pid in spec.policies:
            obj = built[pid]("cilium-test-7")
            assert obj["metadata"]["namespace"] == "cilium-test-7"
            assert obj["kind"] in ("CiliumNetworkPolicy", "NetworkPolicy")


def test_policies_are_valid_for_the_project_validator() -> None:
    import json

    from ciliumctl.validators import cnp

    built = policies.build_policies(policies.PolicyParams())
    texts = [
        (pid, json.dumps(make("cilium-test-1")))
        for pid, make in built.items()
        if make("x")["kind"] == "CiliumNetworkPolicy"
    ]
    report = cnp.validate_texts(texts)
    assert report.policies == len(texts)
    assert not report.failed(), [str(f) for f in report.findings]


def test_policy_tests_need_enforcement_and_no_policy_tests_do_not() -> None:
    for spec in catalog.IMPLEMENTED:
        if spec.policies:
            assert catalog.POLICY in spec.requires, spec.name
    assert catalog.by_name()["no-policies"].requires == ()


def test_client_ingress_expectations() -> None:
    assert expect("client-ingress", CLIENT2, CLIENT) == m.Expectation(m.OK, m.OK)
    e = expect("client-ingress", CLIENT, CLIENT2)
    assert e.ingress is m.DEFAULT_DENY_INGRESS_DROP and not e.success
    assert e.describe() == "ingress drop (any non-zero exit, reason Policy denied)"


def test_echo_ingress_expects_curl_timeouts_from_other_clients() -> None:
    e = expect("echo-ingress", CLIENT, ECHO_SAME)
    assert e.exit_code == m.EXIT_CURL_TIMEOUT
    assert e.accepts(28) and not e.accepts(7) and not e.accepts(0)
    assert expect("echo-ingress", CLIENT2, ECHO_SAME).success


def test_all_ingress_deny_lets_world_through() -> None:
    world = peer("external-1111", "external", ip="1.1.1.1", port=443)
    assert expect("all-ingress-deny", CLIENT, world) == m.Expectation(m.OK, m.NONE)
    e = expect("all-ingress-deny", CLIENT, ECHO_SAME)
    assert e.egress is m.DROP and e.ingress is m.DEFAULT_DENY_INGRESS_DROP
    assert e.accepts(28) and e.accepts(7) and not e.accepts(0)


def test_cidr_expectations() -> None:
    one = peer("external-1111", "external", ip="1.1.1.1", port=443)
    other = peer("external-1001", "external", ip="1.0.0.1", port=443)
    assert expect("to-cidr-external", CLIENT, one).success
    assert expect("to-cidr-external", CLIENT, other).exit_code == m.EXIT_CURL_TIMEOUT
    deny = expect("client-egress-to-cidr-deny", CLIENT, other)
    assert deny.egress is m.POLICY_DENY_EGRESS_DROP
    assert expect("client-egress-to-cidr-deny", CLIENT, one).success
    assert (
        expect("client-egress-to-cidr-deny-default", CLIENT, one).egress
        is m.DEFAULT_DENY_EGRESS_DROP
    )


def test_service_account_and_named_port_expectations() -> None:
    assert expect("client-egress-to-echo-service-account", CLIENT, ECHO_SAME).success
    other = expect("client-egress-to-echo-service-account", CLIENT, ECHO_OTHER)
    assert other.egress is m.DEFAULT_DENY_EGRESS_DROP
    named = expect("client-ingress-to-echo-named-port-deny", CLIENT, ECHO_SAME)
    assert named.exit_code == m.EXIT_CURL_TIMEOUT and named.ingress is m.POLICY_DENY_INGRESS_DROP
    assert expect("client-ingress-to-echo-named-port-deny", CLIENT2, ECHO_SAME).success


def test_to_entities_world_allows_port_80_only() -> None:
    http = m.Peer("one-http", "external", {m.Family.ANY: "one.one.one.one."}, 80, "http")
    https = m.Peer("one-https", "external", {m.Family.ANY: "one.one.one.one."}, 443, "https")
    assert expect("to-entities-world", CLIENT, http).success
    assert expect("to-entities-world-port-range", CLIENT, https).exit_code == m.EXIT_CURL_TIMEOUT
