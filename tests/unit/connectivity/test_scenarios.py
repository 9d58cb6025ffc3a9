from ciliumctl.connectivity import catalog, scenarios
from ciliumctl.connectivity import model as m
from ciliumctl.connectivity.params import Params

V4 = m.Family.IPV4


def pod(name: str, ip: str, node: str, port: int = 0, **labels: str) -> m.Peer:
    return m.Peer(
        f"cilium-test-1/{name}",
        "pod",
        {V4: ip},
        port,
        "http" if port else "",
        labels={"name": name.rsplit("-", 1)[0], **labels},
        node=node,
        pod=f"cilium-test-1/{name}",
    )


def topo() -> scenarios.Topology:
    clients = [
        pod("client-a", "10.0.0.1", "n0", kind="client"),
        pod("client2-a", "10.0.0.2", "n0", kind="client", other="client"),
        pod("client3-a", "10.0.1.3", "n1", kind="client"),
    ]
    echoes = [
        pod("echo-other-node-a", "10.0.1.5", "n1", 8080, kind="echo"),
        pod("echo-same-node-a", "10.0.0.4", "n0", 8080, kind="echo"),
    ]
    host = [
        m.Peer(
            "cilium-test-1/host-netns-n0",
            "host-netns",
            {V4: "192.0.2.1"},
            node="n0",
            pod="cilium-test-1/host-netns-n0",
        )
    ]
    svc = [
        m.Peer(
            "cilium-test-1/echo-same-node",
            "service",
            {m.Family.ANY: "echo-same-node.cilium-test-1"},
            8080,
            "http",
            labels={"name": "echo-same-node", "kind": "echo"},
        )
    ]
    nodes = [scenarios.Node("n0", {V4: "192.0.2.1"}), scenarios.Node("n1", {V4: "192.0.2.2"})]
    return scenarios.Topology(
        "cilium-test-1", clients, echoes, host, [], svc, {"echo-same-node": 31000}, nodes, [V4]
    )


def build(test: str, params: Params | None = None, host_port: bool = False):
    return scenarios.build_actions(
        catalog.by_name()[test],
        topo(),
        params or Params(),
        host_port=host_port,
        scenario_selected=lambda s: True,
    )


def test_curl_command_is_cilium_clis() -> None:
    echo = topo().echoes[1]
    assert scenarios.curl_command(Params(), echo, V4) == (
        "curl", "--silent", "--fail", "--show-error", "--connect-timeout", "2", "--max-time", "10",
        "-4", "-w", scenarios.CURL_WRITE_OUT, "--output", "/dev/null", "http://10.0.0.4:8080",
    )  # fmt: skip
    world = m.Peer("x", "external", {m.Family.ANY: "one.one.one.one."}, 443, "https", "/index.html")
    cmd = scenarios.curl_command(Params(connect_timeout=1.5), world, V4, ("--retry", "3"))
    assert cmd[4:6] == ("--connect-timeout", "1.5")
    assert cmd[9:11] == ("-H", "Host: one.one.one.one")
    assert cmd[-3:] == ("--retry", "3", "https://one.one.one.one.:443/index.html")
    v6 = m.Peer("e", "pod", {m.Family.IPV6: "fd00::5"}, 8080, "http")
    assert scenarios.curl_command(Params(), v6, m.Family.IPV6)[-1] == "http://[fd00::5]:8080"


def test_ping_command() -> None:
    dst = topo().clients[0]
    assert scenarios.ping_command(Params(), dst, V4) == ("ping", "-c", "1", "-W", "2", "10.0.0.1")


def test_no_policies_actions_names_and_counts() -> None:
    actions, skipped = build("no-policies")
    by_scenario: dict[str, list[m.Action]] = {}
    for a in actions:
        by_scenario.setdefault(a.scenario, []).append(a)
    assert [a.name for a in by_scenario["pod-to-pod"]][:2] == ["curl-ipv4-0", "curl-ipv4-1"]
    assert len(by_scenario["pod-to-pod"]) == 3 * 2
    assert len(by_scenario["client-to-client"]) == 3 * 2  # ordered pairs without self
    assert by_scenario["client-to-client"][0].command[0] == "ping"
    assert len(by_scenario["pod-to-service"]) == 3
    world = [a.name for a in by_scenario["pod-to-world"]]
    assert world[:3] == [
        "http-to-one.one.one.one.-ipv4-0",
        "https-to-one.one.one.one.-ipv4-0",
        "https-to-one.one.one.one.-index-ipv4-0",
    ]
    assert "--retry" in by_scenario["pod-to-world"][0].command
    cidr = [a.name for a in by_scenario["pod-to-cidr"]]
    assert cidr == [f"external-{ip}-{i}" for ip in ("1111", "1001") for i in range(3)]
    assert len(by_scenario["pod-to-host"]) == 3 * 2
    assert len(by_scenario["host-to-pod"]) == 2
    assert skipped == [scenarios.Skip("pod-to-hostport", "requires feature host-port")]
    assert all(a.expectation.success for a in actions)
    assert str(by_scenario["pod-to-pod"][0]) == (
        "no-policies/pod-to-pod/curl-ipv4-0: cilium-test-1/client-a (10.0.0.1) -> "
        "cilium-test-1/echo-other-node-a (10.0.1.5:8080)"
    )


def test_hostport_and_nodeports() -> None:
    actions, skipped = build("no-policies", host_port=True)
    assert not skipped
    hp = [a for a in actions if a.scenario == "pod-to-hostport"]
    assert hp and all(a.command[-1].endswith(":4000") for a in hp)
    extra, _ = build("no-policies-extra")
    remote = [a for a in extra if a.scenario == "pod-to-remote-nodeport"]
    local = [a for a in extra if a.scenario == "pod-to-local-nodeport"]
    assert {a.command[-1] for a in remote if a.src.node == "n0"} == {"http://192.0.2.2:31000"}
    assert {a.command[-1] for a in local if a.src.node == "n0"} == {"http://192.0.2.1:31000"}


def test_label_filters_and_expectations_flow_into_actions() -> None:
    actions, _ = build("echo-ingress-from-other-client-deny")
    client2_to_echo = [
        a
        for a in actions
        if a.src.labels.get("other") == "client" and a.dst.labels.get("kind") == "echo"
    ]
    assert client2_to_echo and all(not a.expectation.success for a in client2_to_echo)
    first = next(a for a in actions if a.scenario == "pod-to-pod")
    assert first.src.labels["name"] == "client"
    cluster, _ = build("cluster-entity")
    assert {a.dst.labels["name"] for a in cluster} == {"echo-same-node"}


def test_drops_never_retry() -> None:
    actions, _ = build("to-cidr-external")
    dropped = [a for a in actions if "1.0.0.1" in a.command[-1]]
    allowed = [a for a in actions if "1.1.1.1" in a.command[-1]]
    assert dropped and all("--retry" not in a.command for a in dropped)
    assert allowed and all("--retry" in a.command for a in allowed)


def test_unselected_scenarios_are_reported_skipped() -> None:
    actions, skipped = scenarios.build_actions(
        catalog.by_name()["no-policies"],
        topo(),
        Params(),
        host_port=False,
        scenario_selected=lambda s: s == "pod-to-pod",
    )
    assert {a.scenario for a in actions} == {"pod-to-pod"}
    assert scenarios.Skip("pod-to-world", "skipped by user") in skipped
