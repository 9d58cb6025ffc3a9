import threading
import time
import xml.etree.ElementTree as ET

import pytest

from ciliumctl.connectivity import report, runner
from ciliumctl.connectivity.params import Params
from ciliumctl.errors import UsageError
from tests.unit.connectivity.fake import Exec, FakeCluster


def run(cluster: FakeCluster, **kw: object) -> tuple[runner.RunResult, list[str]]:
    lines: list[str] = []
    params = Params(**kw)  # type: ignore[arg-type]
    result = runner.Runner(cluster, params, log=lines.append, context="fake").run()
    return result, lines


def test_no_policies_on_a_cluster_without_cilium() -> None:
    cluster = FakeCluster()
    result, lines = run(cluster, tests=["^no-policies", "^client-ingress/", "^health/"])
    (ns,) = result.runs
    by = {t.name: t for t in ns.tests}
    assert not by["no-policies"].failed and by["no-policies"].outcomes
    assert by["client-ingress"].skipped.startswith(
        "requires feature policy-enforcement: no Cilium agent pods"
    )
    assert by["health"].skipped.startswith("requires feature cilium-agents")
    assert by["no-policies-from-outside"].skipped == "not implemented in ciliumctl"
    assert not result.failed
    text = report.render(result)
    actions = sum(len(t.outcomes) for t in ns.tests)
    assert text[-1] == (
        f"✅ [cilium-test-1] All 2 tests ({actions} actions) successful, "
        "3 tests skipped, 1 scenarios skipped."
    )
    assert "🏃[cilium-test-1] Running 5 tests ..." in lines
    assert "[=] [cilium-test-1] Test [no-policies] [1/5]" in lines
    assert any(
        line.startswith(
            "[=] [cilium-test-1] Skipping test [client-ingress] [3/5] (requires feature"
        )
        for line in lines
    )
    assert any("flow validation unavailable" in n for n in result.notes)
    # the workloads cilium-cli deploys, with its labels
    deps = {
        o["metadata"]["name"]: o for o in cluster.list("apps/v1", "Deployment", "cilium-test-1")
    }
    assert set(deps) == {"client", "client2", "client3", "echo-same-node", "echo-other-node"}
    assert deps["client2"]["spec"]["template"]["metadata"]["labels"] == {
        "name": "client2",
        "kind": "client",
        "other": "client",
    }
    assert cluster.get_or_none("apps/v1", "DaemonSet", "host-netns", "cilium-test-1")


def test_failed_actions_are_explained_and_exit_status_reported() -> None:
    def rule(pod: str, cmd: list[str]) -> Exec:
        if cmd[0] == "curl" and cmd[-1].startswith("http://10.") and "echo-other" not in pod:
            target = cmd[-1]
            if target.endswith(":8080") and "client2" not in pod:
                return Exec(b"", b"curl: (28) Connection timed out after 2001 milliseconds", 28)
        return Exec(b"", b"", 0)

    cluster = FakeCluster(rule=rule)
    result, _ = run(cluster, tests=["^no-policies/"], flow_validation="disabled")
    assert result.failed
    text = "\n".join(report.render(result))
    assert "📋 Test Report [cilium-test-1]" in text
    assert "❌ 1/1 tests failed (" in text
    assert "Test [no-policies]:" in text
    assert "expected: success (exit 0)" in text
    assert "seen:     exit 28 (timed out)" in text
    assert "stderr:   curl: (28) Connection timed out" in text
    assert "policies selecting the endpoints: none" in text
    assert "nodes:    source on node-" in text


def test_policies_are_applied_and_removed_when_agents_exist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = FakeCluster()
    seen: list[list[str]] = []

    def rule(pod: str, cmd: list[str]) -> Exec:
        if cmd[0] == "curl":
            names = sorted(
                o["metadata"]["name"]
                for o in cluster.list("cilium.io/v2", "CiliumNetworkPolicy", "cilium-test-1")
            )
            if not names:  # the readiness waits, before the test applies its policy
                return Exec(b"", b"", 0)
            seen.append(names)
            if "client2" in pod:
                return Exec(b"", b"", 0)
            return Exec(b"", b"timeout", 28)
        if cmd[:3] == ["cilium-dbg", "policy", "get"]:
            return Exec(b'{"revision": %d}' % len(cluster.execs), b"", 0)
        return Exec(b"", b"", 0)

    cluster.rule = rule
    for i, node in enumerate(cluster.node_names):
        cluster.objects[("Pod", "kube-system", f"cilium-{i}")] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"cilium-{i}",
                "namespace": "kube-system",
                "labels": {"k8s-app": "cilium"},
            },
            "spec": {"nodeName": node, "containers": [{"name": "cilium-agent"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }
    cluster.objects[("ConfigMap", "kube-system", "cilium-config")] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cilium-config", "namespace": "kube-system"},
        "data": {"enable-policy": "default"},
    }
    result, lines = run(cluster, tests=["^echo-ingress/"], flow_validation="disabled", verbose=True)
    (test,) = result.runs[0].tests
    assert not test.failed, report.render(result)
    assert seen and all(names == ["echo-ingress-from-other-client"] for names in seen)
    assert cluster.list("cilium.io/v2", "CiliumNetworkPolicy", "cilium-test-1") == []
    assert any(
        "📜 Applying CiliumNetworkPolicy 'echo-ingress-from-other-client'" in line for line in lines
    )
    assert any("📜 Deleting CiliumNetworkPolicy" in line for line in lines)


def test_policy_listed_in_failure_explanation() -> None:
    cluster = FakeCluster()
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "cilium-test-1"},
        }
    )
    cluster.create(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "block-echo", "namespace": "cilium-test-1"},
            "spec": {
                "endpointSelector": {"matchLabels": {"k8s:kind": "echo"}},
                "ingressDeny": [{}],
            },
        }
    )
    cluster.rule = lambda pod, cmd: Exec(
        b"", b"", 28 if cmd[0] == "curl" and cmd[-1].startswith("http://10.") else 0
    )
    result, _ = run(cluster, tests=["^no-policies/"], flow_validation="disabled")
    text = "\n".join(report.render(result))
    assert "policies selecting the endpoints: CiliumNetworkPolicy cilium-test-1/block-echo" in text


def test_actions_run_in_parallel_and_the_run_timeout_stops_further_tests() -> None:
    cluster = FakeCluster()
    cluster.exec_delay = 0.2
    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def rule(pod: str, cmd: list[str]) -> Exec:
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.05)
        with lock:
            active["now"] -= 1
        return Exec(b"", b"", 0)

    cluster.rule = rule
    start = time.monotonic()
    result, _ = run(
        cluster, tests=["^no-policies/", "^no-policies-extra/"], timeout=1.0, parallel_actions=8
    )
    elapsed = time.monotonic() - start
    assert active["max"] > 1
    tests = {t.name: t for t in result.runs[0].tests}
    assert tests["no-policies"].outcomes
    assert tests["no-policies-extra"].errors == ["not run: the --timeout of 1s ran out"]
    assert result.failed and result.timed_out
    assert elapsed < 5
    junit = ET.fromstring(report.junit_xml(result, {}, []))
    cases = {c.get("name"): c for c in junit.iter("testcase")}
    assert cases["no-policies-extra"].get("status") == "failed"


def test_single_node_needs_the_flag_and_then_deploys_less() -> None:
    with pytest.raises(runner.ConnectivityError, match="pass --single-node"):
        run(FakeCluster(nodes=1), tests=["^no-policies/"])
    cluster = FakeCluster(nodes=1)
    result, _ = run(cluster, tests=["^no-policies/"], single_node=True)
    deps = {o["metadata"]["name"] for o in cluster.list("apps/v1", "Deployment", "cilium-test-1")}
    assert deps == {"client", "client2", "echo-same-node"}
    assert not result.failed


def test_concurrency_uses_suffixed_namespaces_and_cleanup_removes_them() -> None:
    cluster = FakeCluster()
    result, _ = run(
        cluster,
        tests=["^no-policies/", "^no-policies-extra/"],
        test_concurrency=2,
        test_namespace="ct",
    )
    assert [r.namespace for r in result.runs] == ["ct-1", "ct-2"]
    assert [t.name for t in result.runs[0].tests] == ["no-policies"]
    assert [t.name for t in result.runs[1].tests] == ["no-policies-extra"]
    assert cluster.get_or_none("v1", "Namespace", "ct-2")
    run(cluster, cleanup_only=True, test_concurrency=2, test_namespace="ct")
    assert cluster.get_or_none("v1", "Namespace", "ct-1") is None
    assert cluster.list("apps/v1", "Deployment", "ct-2") == []


def test_existing_objects_are_kept_unless_force_deploy() -> None:
    cluster = FakeCluster()
    run(cluster, tests=["^no-policies/"])
    pod_before = {k for k in cluster.objects if k[0] == "Pod"}
    run(cluster, tests=["^no-policies/"])
    assert {k for k in cluster.objects if k[0] == "Pod"} == pod_before
    cluster._ip = 100
    _, lines = run(cluster, tests=["^no-policies/"], force_deploy=True)
    assert any(
        line.startswith("🔥 [fake] Deleting deployment cilium-test-1/client") for line in lines
    )
    ips = {
        o["status"]["podIP"]
        for o in cluster.list("v1", "Pod", "cilium-test-1", label_selector="kind=client")
    }
    assert all(ip.startswith("10.0.0.1") for ip in ips)


def test_bad_flags_are_refused_before_anything_changes() -> None:
    cluster = FakeCluster()
    for kw in ({"flow_validation": "loud"}, {"test_concurrency": 0}, {"ip_families": ("ipv5",)}):
        with pytest.raises(UsageError):
            run(cluster, **kw)
    with pytest.raises(UsageError, match="strict needs Cilium agent pods"):
        run(cluster, flow_validation="strict")
    assert cluster.list("v1", "Namespace") == []


def test_junit_document() -> None:
    cluster = FakeCluster()
    result, _ = run(cluster, tests=["^no-policies/", "^client-ingress/"])
    root = ET.fromstring(report.junit_xml(result, {"ci": "yes"}, ["connectivity", "test"]))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("disabled")) == ("2", "0", "1")
    suite = root.find("testsuite")
    assert (
        suite is not None
        and suite.get("name") == "connectivity test"
        and suite.get("package") == "cilium"
    )
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"Args": "connectivity|test", "ci": "yes"}
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["no-policies"].get("status") == "passed"
    assert cases["no-policies"].get("classname") == "connectivity test"
    skipped = cases["client-ingress"].find("skipped")
    assert skipped is not None and "requires feature policy-enforcement" in (
        skipped.get("message") or ""
    )


def test_strict_flow_validation_fails_closed_when_the_monitor_breaks() -> None:
    cluster = FakeCluster()
    for i, node in enumerate(cluster.node_names):
        cluster.objects[("Pod", "kube-system", f"cilium-{i}")] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"cilium-{i}",
                "namespace": "kube-system",
                "labels": {"k8s-app": "cilium"},
            },
            "spec": {"nodeName": node, "containers": [{"name": "cilium-agent"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }
    # the fake's exec_stream raises: no monitor events can be read
    result, _ = run(cluster, tests=["^no-policies/"], flow_validation="strict")
    (test,) = result.runs[0].tests
    assert test.failed and all(not o.passed for o in test.outcomes)
    assert "flows unavailable: monitor in kube-system/cilium-0" in test.outcomes[0].failure
    warn, _ = run(cluster, tests=["^no-policies/"], flow_validation="warning")
    (test,) = warn.runs[0].tests
    assert not test.failed and test.outcomes[0].flow_warnings


def test_node_selector_reaches_every_workload_placed_by_it() -> None:
    from ciliumctl.connectivity import deploy

    sel = {"dev-cluster.ciliumctl.io/real": "true"}
    objs = deploy.manifests("cilium-test-1", Params(node_selector=sel))
    placed = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"].get("nodeSelector")
        for o in objs
        if o["kind"] in ("Deployment", "DaemonSet")
    }
    # echo-same-node follows `client` by pod affinity, as in cilium-cli
    assert placed == {
        "echo-same-node": None,
        "client": sel,
        "client2": sel,
        "client3": sel,
        "echo-other-node": sel,
        "host-netns": sel,
    }


def test_agent_check_evaluators() -> None:
    import json

    from ciliumctl.connectivity import model as m

    agent = m.Peer("kube-system/cilium-0", "agent", node="n0", pod="kube-system/cilium-0")

    def outcome(check: str, stdout: str, code: int = 0, agents: int = 0) -> str:
        action = m.Action(
            "t",
            check,
            "n0",
            agent,
            m.Peer("", "none"),
            m.Family.ANY,
            ("x",),
            m.Expectation(),
            check=check,
        )
        return runner._check_output(check, m.ActionOutcome(action, code, stdout), Params(), agents)

    drops = [
        {"name": "cilium_drop_count_total", "labels": {"reason": "Policy denied"}, "value": 4},
        {"name": "cilium_drop_count_total", "labels": {"reason": "Invalid packet"}, "value": 2},
        {"name": "cilium_forward_count_total", "labels": {}, "value": 9},
    ]
    assert (
        outcome("no-unexpected-packet-drops", json.dumps(drops))
        == "unexpected packet drops: Invalid packet: 2"
    )
    assert outcome("no-unexpected-packet-drops", json.dumps(drops[:1])) == ""
    assert outcome("no-unexpected-packet-drops", "", 1).startswith("x exited 1")
    health = {
        "nodes": [
            {"name": "n1", "host": {"primary-address": {"icmp": {"status": "timeout"}, "http": {}}}}
        ]
    }
    assert "icmp: timeout" in outcome("cilium-health", json.dumps(health))
    # as cilium-cli: every agent's node must appear (an agent that knows no node yet fails)
    assert outcome("cilium-health", json.dumps({"nodes": []}), agents=2) == (
        "only 0/2 nodes appeared in cilium-health status"
    )
    ok = {"name": "n1", "host": {"primary-address": {"icmp": {}, "http": {}}}}
    assert outcome("cilium-health", json.dumps({"nodes": [ok, {**ok, "name": "n2"}]}), 0, 2) == ""
    assert outcome("no-errors-in-logs", 'level=info msg="ok"\nlevel=error msg="boom"\n').startswith(
        "1 error lines"
    )
    assert outcome("no-errors-in-logs", "level=info\n") == ""


def test_echo_servers_get_host_port_4000_only_where_cilium_serves_host_ports() -> None:
    from ciliumctl.connectivity import deploy, features

    def echo_ports(host_port: bool) -> dict[str, list[dict[str, object]]]:
        objs = deploy.manifests("cilium-test-1", Params(), host_port=host_port)
        return {
            o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["ports"]
            for o in objs
            if o["kind"] == "Deployment" and o["metadata"]["name"].startswith("echo-")
        }

    with_hp = echo_ports(True)
    assert set(with_hp) == {"echo-same-node", "echo-other-node"}
    assert all(p[0]["hostPort"] == 4000 and p[0]["containerPort"] == 8080 for p in with_hp.values())
    assert all("hostPort" not in p[0] for p in echo_ports(False).values())
    assert features.host_port({"kube-proxy-replacement": "true"}).enabled
    assert not features.host_port({"kube-proxy-replacement": "false"}).enabled
    assert features.host_port(
        {"kube-proxy-replacement": "false", "enable-host-port": "true"}
    ).enabled
    assert not features.host_port(None).enabled


def test_check_log_errors_reads_the_agents_logs_since_the_run_started() -> None:
    """As cilium-cli's check-log-errors: an error logged before the run is not the run's."""
    from ciliumctl.connectivity import model as m

    class Logs(FakeCluster):
        def __init__(self) -> None:
            super().__init__()
            self.asked: list[dict[str, object]] = []

        def pod_logs(self, namespace, pod, container=None, **kwargs) -> bytes:  # type: ignore[no-untyped-def]
            self.asked.append({"pod": f"{namespace}/{pod}", **kwargs})
            return b'level=info msg="ok"\n'

    cluster = Logs()
    r = runner.Runner(cluster, Params(), log=lambda _line: None, context="fake")
    assert r.started_at is None
    r.run()
    assert r.started_at is not None and r.started_at.tzinfo is not None
    agent = m.Peer("kube-system/cilium-0", "agent", node="n0", pod="kube-system/cilium-0")
    action = m.Action(
        "check-log-errors", "no-errors-in-logs", "n0", agent, m.Peer("", "none"),
        m.Family.ANY, (), m.Expectation(), check="no-errors-in-logs",
    )  # fmt: skip
    outcome = r._exec(action)
    assert outcome.exit_code == 0 and outcome.stdout == 'level=info msg="ok"\n'
    assert cluster.asked[-1]["pod"] == "kube-system/cilium-0"
    assert cluster.asked[-1]["since_time"] == r.started_at
