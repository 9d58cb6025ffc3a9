import json

from ciliumctl.connectivity import catalog, flows
from ciliumctl.connectivity import model as m

V4 = m.Family.IPV4
SRC = m.Peer(
    "ns/client", "pod", {V4: "10.0.0.1"}, node="n0", pod="ns/client", labels={"kind": "client"}
)
DST = m.Peer(
    "ns/echo",
    "pod",
    {V4: "10.0.1.5"},
    8080,
    "http",
    node="n1",
    pod="ns/echo",
    labels={"kind": "echo"},
)


def drop(reason: str, src: str, dst: str, port: int, dst_id: int = 0) -> str:
    return json.dumps(
        {
            "cpu": "CPU 01:",
            "type": "drop",
            "mark": "0x0",
            "reason": reason,
            "source": 123,
            "bytes": 74,
            "srcLabel": 1000,
            "dstLabel": 2000,
            "dstID": dst_id,
            "summary": {"l3": {"src": src, "dst": dst}, "l4": {"src": "41000", "dst": str(port)}},
        }
    )


def action(expect: m.Expectation) -> m.Action:
    return m.Action("t", "pod-to-pod", "curl-ipv4-0", SRC, DST, V4, ("curl",), expect)


def test_parse_drop_events_and_directions() -> None:
    e = flows.parse_event(
        drop("Policy denied", "10.0.0.1", "10.0.1.5", 8080, 77),
        node="n1",
        agent="kube-system/cilium-x",
    )
    assert e is not None
    assert (e.kind, e.reason, e.direction, e.dst_port, e.node) == (
        "drop",
        "Policy denied",
        "ingress",
        8080,
        "n1",
    )
    egress = flows.parse_event(
        drop("Policy denied by denylist", "10.0.0.1", "1.0.0.1", 443), node="n0", agent="a"
    )
    assert egress is not None and egress.direction == "egress"
    verdict = flows.parse_event(
        json.dumps({"type": "policy-verdict", "action": "deny", "ingress": True, "summary": {}}),
        node="n",
        agent="a",
    )
    assert (
        verdict is not None and verdict.direction == "ingress" and verdict.kind == "policy-verdict"
    )
    assert flows.parse_event("Listening for events on 2 CPUs", node="n", agent="a") is None
    assert flows.parse_event('{"type": "trace"}', node="n", agent="a") is None
    assert flows.parse_event("{not json", node="n", agent="a") is None


def test_expected_ingress_drop_must_be_seen_on_destination_node() -> None:
    want = m.Expectation(m.OK, m.DEFAULT_DENY_INGRESS_DROP)
    on_dst = flows.parse_event(
        drop("Policy denied", "10.0.0.1", "10.0.1.5", 8080, 9), node="n1", agent="a1"
    )
    on_src = flows.parse_event(
        drop("Policy denied", "10.0.0.1", "10.0.1.5", 8080, 9), node="n0", agent="a0"
    )
    assert on_dst and on_src
    problems, drops = flows.validate(action(want), [on_dst])
    assert problems == [] and drops == [on_dst]
    problems, _ = flows.validate(action(want), [on_src])
    assert problems and "expected a ingress drop 'Policy denied' on node n1" in problems[0]
    problems, _ = flows.validate(action(want), [])
    assert "no drop events" in problems[0]


def test_wrong_reason_is_a_problem() -> None:
    want = m.Expectation(m.POLICY_DENY_EGRESS_DROP, m.NONE)
    ev = flows.parse_event(
        drop("Policy denied", "10.0.0.1", "10.0.1.5", 8080), node="n0", agent="a0"
    )
    assert ev
    problems, _ = flows.validate(action(want), [ev])
    assert (
        "Policy denied by denylist" in problems[0]
        and "saw: drop egress 'Policy denied'" in problems[0]
    )


def test_allowed_connection_must_show_no_drop_and_unrelated_drops_are_ignored() -> None:
    ok = m.Expectation()
    mine = flows.parse_event(
        drop("Stale or unroutable IP", "10.0.0.1", "10.0.1.5", 8080), node="n0", agent="a"
    )
    other = flows.parse_event(
        drop("Policy denied", "10.0.0.9", "10.0.1.5", 8080), node="n0", agent="a"
    )
    other_port = flows.parse_event(
        drop("Policy denied", "10.0.0.1", "10.0.1.5", 9090), node="n0", agent="a"
    )
    assert mine and other and other_port
    problems, drops = flows.validate(action(ok), [other, other_port])
    assert problems == [] and drops == []
    problems, _ = flows.validate(action(ok), [mine, other])
    assert problems == [
        "unexpected drop egress 'Stale or unroutable IP' 10.0.0.1 -> 10.0.1.5:8080 "
        "on node n0 (agent a)"
    ]


def test_drop_without_a_reason_to_check_accepts_any_drop() -> None:
    spec = catalog.by_name()["echo-ingress"]
    expect = spec.expectation(SRC, DST, V4, catalog.ExternalParams())
    assert expect.exit_code == m.EXIT_CURL_TIMEOUT
    assert flows.validate(action(expect), []) == ([], [])


def test_parse_the_project_agents_event_shape() -> None:
    line = json.dumps(
        {
            "type": "drop",
            "reason": "Policy denied",
            "direction": "INGRESS",
            "src": "10.0.0.1:41000",
            "dst": "10.0.1.5:8080",
            "proto": "TCP",
            "verdict": "DENIED",
        }
    )
    e = flows.parse_event(line, node="n1", agent="kube-system/cilium-b")
    assert e is not None
    assert (e.src_ip, e.dst_ip, e.dst_port, e.direction) == (
        "10.0.0.1",
        "10.0.1.5",
        8080,
        "ingress",
    )
    v6 = flows.parse_event(
        json.dumps({"type": "policy-verdict", "verdict": "DENIED", "direction": "EGRESS",
                    "src": "[fd00::1]:5000", "dst": "[fd00::2]:80"}),
        node="n0",
        agent="a",
    )  # fmt: skip
    assert v6 is not None and (v6.dst_ip, v6.dst_port, v6.direction) == ("fd00::2", 80, "egress")
    allowed = json.dumps({"type": "policy-verdict", "verdict": "ALLOWED", "src": "1.2.3.4:1"})
    assert flows.parse_event(allowed, node="n", agent="a") is None
