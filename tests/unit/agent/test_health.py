"""cilium-health: the /hello responder, ICMP and HTTP probes on loopback, upstream's status
model, and the ``cilium-health`` client against an in-process agent's API."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciliumctl.agent.api import serve_api
from ciliumctl.agent.config import AgentConfig
from ciliumctl.agent.daemon import Agent
from ciliumctl.agent.health import NodeHealth, icmp_probe, serve_responder
from ciliumctl.dbg import health as cli
from tests.unit.agent.fakes import MemoryIdentityStore, RecordingDatapath

ROOT = os.geteuid() == 0


@pytest.fixture
def responder() -> Iterator[int]:
    server = serve_responder(0, "127.0.0.1")
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_icmp_echo_to_loopback_is_answered() -> None:
    status, latency = icmp_probe("127.0.0.1", 2.0, 0x4242, 1)
    if ROOT:
        assert (status, latency > 0) == ("", True)
    else:
        assert status == "ICMP needs CAP_NET_RAW (raw socket refused)"


def test_probes_report_upstreams_model_and_name_what_fails(responder: int) -> None:
    health = NodeHealth("node-a", port=responder, timeout=2.0)
    health.set_node("node-a", "127.0.0.1")
    health.set_node("node-b", "127.0.0.2")  # answers ICMP; nothing listens there on the port
    assert health.summary() == {"state": "Warning", "msg": "no probe has completed yet"}
    health.probe()
    doc = health.status()
    assert doc["local"] == {"name": "node-a"} and doc["timestamp"]
    by_name = {n["name"]: n["host"]["primary-address"] for n in doc["nodes"]}
    assert sorted(by_name) == ["node-a", "node-b"]
    assert by_name["node-a"]["ip"] == "127.0.0.1"
    assert "status" not in by_name["node-a"]["http"] and by_name["node-a"]["http"]["latency"] > 0
    assert by_name["node-b"]["http"]["status"].startswith(
        f"HTTP GET http://127.0.0.2:{responder}/hello: "
    )
    if ROOT:
        assert "status" not in by_name["node-a"]["icmp"]
        assert "status" not in by_name["node-b"]["icmp"]
    assert health.summary() == {
        "state": "Warning",
        "msg": "1/2 reachable (unreachable: node-b)",
    }
    health.set_node("node-b", None)  # the Node was deleted
    assert [n["name"] for n in health.status()["nodes"]] == ["node-a"]
    if ROOT:
        assert health.summary() == {"state": "Ok", "msg": "1/1 reachable"}


def test_responder_answers_only_hello(responder: int) -> None:
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{responder}/hello", timeout=5) as resp:
        assert resp.status == 200
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{responder}/other", timeout=5)
    assert err.value.code == 404


def _agent(tmp_path: Path, enabled: bool, port: int) -> Agent:
    config = AgentConfig.load(
        None,
        {
            "socket-path": str(tmp_path / "cilium.sock"),
            "state-dir": str(tmp_path),
            "enable-health-checking": str(enabled).lower(),
            "cluster-health-port": str(port),
        },
    )
    agent = Agent(config, RecordingDatapath(), None, "node-a")
    agent.allocator._client = MemoryIdentityStore()
    return agent


def test_cilium_health_status_probe_json_and_text(
    tmp_path: Path, responder: int, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = _agent(tmp_path, True, responder)
    node = {
        "metadata": {"name": "node-a"},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]},
    }
    agent.node_event("ADDED", node, None)  # the agent learns nodes from its Node watcher
    sock = tmp_path / "health.sock"
    server = serve_api(agent, sock)
    try:
        host = f"unix://{sock}"
        assert cli.main(["-H", host, "status", "-o", "json"]) == 0
        assert json.loads(capsys.readouterr().out)["nodes"] == []  # nothing probed yet
        assert cli.main(["-H", host, "status", "--probe", "-o=json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert [n["name"] for n in doc["nodes"]] == ["node-a"]
        assert "status" not in doc["nodes"][0]["host"]["primary-address"]["http"]
        assert cli.main(["-H", host, "status"]) == 0
        text = capsys.readouterr().out
        assert "  node-a (localhost):\n    Host connectivity to 127.0.0.1:\n" in text
        assert "      HTTP to agent:   OK, RTT=" in text
        assert cli.main(["-H", host, "ping"]) == 0 and capsys.readouterr().out == "OK\n"
        cluster = agent.status()["cluster"]["ciliumHealth"]
        assert cluster["state"] == ("Ok" if ROOT else "Warning")
        agent.node_event("DELETED", node, None)
        assert agent.health is not None and agent.health.status()["nodes"] == []
    finally:
        server.shutdown()
        server.server_close()


def test_disabled_health_checking_is_said_by_api_and_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = _agent(tmp_path, False, 4240)
    assert agent.health is None
    assert agent.status()["cluster"]["ciliumHealth"] == {
        "state": "Disabled",
        "msg": "enable-health-checking=false",
    }
    sock = tmp_path / "health.sock"
    server = serve_api(agent, sock)
    try:
        assert cli.main(["-H", f"unix://{sock}", "status", "--probe"]) == 1
        err = capsys.readouterr().err
        assert "health checking is disabled" in err
    finally:
        server.shutdown()
        server.server_close()


def test_no_agent_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-H", f"unix://{tmp_path}/none.sock", "status"]) == 1
    assert "cannot reach the agent" in capsys.readouterr().err


def test_runtime_config_names_what_this_agent_does(tmp_path: Path) -> None:
    """state/agent-runtime-config.json with the DaemonConfig fields cilium-cli reads."""
    agent = _agent(tmp_path, True, 4240)
    path = agent.write_runtime_config()
    assert path == tmp_path / "state" / "agent-runtime-config.json"
    doc = json.loads(path.read_text())
    assert doc["EnableHealthChecking"] is True
    assert doc["EnableEndpointHealthChecking"] is False
    assert doc["EnableICMPRules"] is True and doc["EnableK8sNetworkPolicy"] is True
    assert doc["MonitorAggregation"] == "medium" and doc["EnableL7Proxy"] is False
    assert agent.restore_endpoints() == []  # the file is no endpoint state
    off = _agent(tmp_path / "off", False, 4240)
    assert json.loads(off.write_runtime_config().read_text())["EnableHealthChecking"] is False
