"""cilium-cni against an in-process agent's socket, with netlink calls recorded."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.agent.api import serve_api
from ciliumctl.agent.config import AgentConfig
from ciliumctl.agent.daemon import Agent
from ciliumctl.cni import plugin
from tests.unit.agent.fakes import MemoryIdentityStore, RecordingDatapath


class RecordingNetlink:
    GATEWAY4 = "169.254.1.1"

    def __init__(self) -> None:
        self.links: dict[str, str] = {}
        self.fail = False

    def plumb_endpoint(
        self, host_ifname: str, pod_netns: str, ipv4: str | None = None
    ) -> tuple[str, str]:
        if self.fail:
            raise OSError("netns vanished")
        self.links[host_ifname] = pod_netns
        return "02:00:00:00:00:01", "02:00:00:00:00:02"

    def delete_link(self, name: str, netns: str | None = None) -> None:
        self.links.pop(name, None)

    def ifindex(self, name: str, netns: str | None = None) -> int:
        if name not in self.links:
            raise OSError(f"no link {name}")
        return 7


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Agent, str]]:
    sock = tmp_path / "cilium.sock"
    agent = Agent(
        AgentConfig.load(None, {"socket-path": str(sock), "state-dir": str(tmp_path)}),
        RecordingDatapath(),
        None,
        "n1",
    )
    agent.allocator._client = MemoryIdentityStore()
    agent.ipam.set_cidrs(["10.0.5.0/30"])  # .1 router, .2 the only pod address
    for name in ("a", "b"):
        agent.pods[f"prod/{name}"] = {
            "metadata": {"name": name, "namespace": "prod", "labels": {"app": name}},
            "spec": {},
        }
    server = serve_api(agent, sock)
    try:
        yield agent, str(sock)
    finally:
        server.shutdown()
        server.server_close()


def call(
    sock: str,
    command: str,
    cid: str,
    net: Any,
    pod: str = "a",
    version: str = "1.0.0",
    netns: str = "/var/run/netns/t",
) -> tuple[int, dict[str, Any]]:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME={pod}",
    }
    conf = json.dumps(
        {"cniVersion": version, "name": "cilium", "type": "cilium-cni", "socket-path": sock}
    )
    out = io.StringIO()
    code = plugin.run(env, conf, out, net)
    return code, json.loads(out.getvalue() or "{}")


def test_add_check_del_and_idempotent_del(node: tuple[Agent, str]) -> None:
    agent, sock = node
    net = RecordingNetlink()
    code, result = call(sock, "ADD", "c1", net)
    assert code == 0, result
    assert result["ips"] == [{"address": "10.0.5.2/32", "gateway": "169.254.1.1", "interface": 1}]
    assert result["interfaces"][1] == {
        "name": "eth0",
        "mac": "02:00:00:00:00:01",
        "sandbox": "/var/run/netns/t",
    }
    ep = agent.endpoints.by_container("c1")
    assert ep is not None and ep.ipv4 == "10.0.5.2" and ep.state == "ready"
    assert ep.ifname == plugin.host_ifname("c1") and len(ep.ifname) <= 15
    assert call(sock, "CHECK", "c1", net) == (0, {})
    # a duplicate ADD is refused and leaks nothing
    code, err = call(sock, "ADD", "c1", net)
    assert code == 1 and "already has an endpoint" in err["msg"]
    assert call(sock, "DEL", "c1", net) == (0, {})
    assert agent.endpoints.by_container("c1") is None and net.links == {}
    assert agent.ipam.status()["allocations"] == {}
    assert call(sock, "DEL", "c1", net) == (0, {})  # again: nothing to do, success
    code, err = call(sock, "CHECK", "c1", net)
    assert code == 1 and err["code"] == plugin.E_CONTAINER_UNKNOWN


def test_pool_exhausted_is_a_cni_error(node: tuple[Agent, str]) -> None:
    _agent, sock = node
    net = RecordingNetlink()
    assert call(sock, "ADD", "c1", net)[0] == 0
    code, err = call(sock, "ADD", "c2", net, pod="b")
    assert code == 1 and err["code"] == plugin.E_POOL_EXHAUSTED
    assert "exhausted" in err["msg"] and "clusterPoolIPv4PodCIDRList" in err["details"]
    assert len(net.links) == 1


def test_failed_veth_releases_the_address(node: tuple[Agent, str]) -> None:
    agent, sock = node
    net = RecordingNetlink()
    net.fail = True
    code, err = call(sock, "ADD", "c1", net)
    assert code == 1 and err["code"] == plugin.E_IO and "netns vanished" in err["details"]
    assert agent.ipam.status()["allocations"] == {}


def test_no_agent(tmp_path: Path) -> None:
    net = RecordingNetlink()
    code, err = call(str(tmp_path / "none.sock"), "ADD", "c1", net)
    assert code == 1 and err["code"] == plugin.E_TRY_AGAIN
    assert err["msg"] == "the Cilium agent is not running on this node"
    assert call(str(tmp_path / "none.sock"), "DEL", "c1", net) == (0, {})
    code, err = call(str(tmp_path / "none.sock"), "STATUS", "", net)
    assert code == 1 and err["code"] == plugin.E_NOT_AVAILABLE


def test_version_status_and_bad_input(node: tuple[Agent, str]) -> None:
    _agent, sock = node
    net = RecordingNetlink()
    code, out = call(sock, "VERSION", "", net)
    assert code == 0 and "1.0.0" in out["supportedVersions"]
    assert call(sock, "STATUS", "", net) == (0, {})
    code, err = call(sock, "ADD", "c1", net, version="9.9.9")
    assert code == 1 and err["code"] == plugin.E_INCOMPATIBLE_VERSION
    out = io.StringIO()
    assert plugin.run({"CNI_COMMAND": "ADD"}, "{not json", out, net) == 1
    assert json.loads(out.getvalue())["code"] == plugin.E_DECODE


def test_endpoint_api_by_container_id(node: tuple[Agent, str]) -> None:
    """GET/DELETE /v1/endpoint/container-id:<id>, as upstream's API takes it."""
    from ciliumctl.dbg.client import AgentAPIError, AgentClient

    agent, sock = node
    assert call(sock, "ADD", "c1", RecordingNetlink())[0] == 0
    client = AgentClient(sock)
    ep = client.get("/v1/endpoint/container-id:c1")
    assert ep["status"]["external-identifiers"]["container-id"] == "c1"
    with pytest.raises(AgentAPIError) as missing:
        client.get("/v1/endpoint/container-id:nope")
    assert missing.value.status == 404
    assert client.request("DELETE", "/v1/endpoint/container-id:c1") == {"deleted": ep["id"]}
    assert agent.endpoints.by_container("c1") is None


def test_plugin_falls_back_to_the_list_on_an_older_agent(
    node: tuple[Agent, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent without container-id lookups answers 400; the plugin then finds the endpoint
    in the list (a CNI plugin newer than the agent during an upgrade)."""
    from ciliumctl.agent import api

    def old_lookup(agent: Agent, req: Any) -> Any:
        return agent.endpoints.get(api._endpoint_id(req))  # 400 for "container-id:..."

    monkeypatch.setattr(api, "_lookup", old_lookup)
    agent, sock = node
    net = RecordingNetlink()
    assert call(sock, "ADD", "c1", net)[0] == 0
    code, err = call(sock, "ADD", "c1", net)
    assert code == 1 and "already has an endpoint" in err["msg"]
    assert call(sock, "DEL", "c1", net) == (0, {})
    assert agent.endpoints.by_container("c1") is None


def _no_local() -> Any:
    raise AssertionError("the plugin must not wire (or import netlink) itself here")


class StatNetlink(RecordingNetlink):
    """Records the inode of the netns file the agent was handed (a descriptor's path)."""

    def __init__(self) -> None:
        super().__init__()
        self.inodes: dict[str, int] = {}

    def plumb_endpoint(
        self, host_ifname: str, pod_netns: str, ipv4: str | None = None
    ) -> tuple[str, str]:
        import os

        self.inodes[host_ifname] = os.stat(pod_netns).st_ino
        return super().plumb_endpoint(host_ifname, pod_netns, ipv4)


@pytest.fixture
def wiring(node: tuple[Agent, str]) -> Iterator[StatNetlink]:
    from ciliumctl.agent.api import serve_cni

    agent, sock = node
    agent.plumber = wired = StatNetlink()
    server = serve_cni(agent, Path(sock).with_name(plugin.CNI_SOCKET))
    try:
        yield wired
    finally:
        server.close()


def test_the_agent_wires_the_endpoint_and_the_plugin_imports_no_netlink(
    node: tuple[Agent, str], wiring: StatNetlink, tmp_path: Path
) -> None:
    agent, sock = node
    netns = tmp_path / "cni-1234"  # the runtime's path, which the agent need not see
    netns.touch()
    net = plugin.AgentPlumber(plugin.AgentClient(sock), local=_no_local)
    code, result = call(sock, "ADD", "c1", net, netns=str(netns))
    assert code == 0, result
    ifname = plugin.host_ifname("c1")
    # the agent got the pod's netns as a descriptor of the very same file
    assert wiring.links[ifname].startswith("/proc/self/fd/")
    assert wiring.inodes[ifname] == netns.stat().st_ino
    assert result["interfaces"][0] == {"name": ifname, "mac": "02:00:00:00:00:02"}
    assert result["ips"][0]["gateway"] == "169.254.1.1"
    assert call(sock, "CHECK", "c1", net, netns=str(netns)) == (0, {})
    assert call(sock, "DEL", "c1", net, netns=str(netns)) == (0, {})
    assert wiring.links == {} and agent.endpoints.by_container("c1") is None
    code, err = call(sock, "CHECK", "c1", net, netns=str(netns))
    assert code == 1 and err["code"] == plugin.E_CONTAINER_UNKNOWN


def test_the_agent_refuses_what_is_no_endpoint_veth_and_cleans_a_failed_wiring(
    node: tuple[Agent, str], wiring: StatNetlink, tmp_path: Path
) -> None:
    _agent, sock = node
    client = plugin.AgentClient(sock)
    with pytest.raises(plugin.AgentAPIError) as bad:
        client.request("DELETE", "/v1/cni/link/eth0")
    assert bad.value.status == 400 and "not an endpoint's host interface" in bad.value.message
    net = plugin.AgentPlumber(client, local=_no_local)
    netns = tmp_path / "cni-9"
    netns.touch()
    with pytest.raises(plugin.AgentAPIError, match="not an endpoint's host interface"):
        net.plumb_endpoint("eth0", str(netns), ipv4="10.0.5.2")
    wiring.fail = True
    wiring.links["lxc0123456789a"] = "half made"
    with pytest.raises(plugin.AgentAPIError) as failed:
        net.plumb_endpoint("lxc0123456789a", str(netns), ipv4="10.0.5.2")
    assert failed.value.status == 500 and "netns vanished" in failed.value.message
    assert f"into {netns}" in failed.value.message  # the runtime's path, as the user knows it
    assert wiring.links == {}  # nothing half-made is left
    with pytest.raises(FileNotFoundError):
        net.plumb_endpoint("lxc0123456789a", str(tmp_path / "no-such-netns"), ipv4="10.0.5.2")


def test_without_the_agents_wiring_the_plugin_wires_itself(
    node: tuple[Agent, str], tmp_path: Path
) -> None:
    agent, sock = node
    assert agent.plumber is None  # no wiring socket: an agent that leaves it to the plugin
    local = RecordingNetlink()
    net = plugin.AgentPlumber(plugin.AgentClient(sock), local=lambda: local)
    assert call(sock, "ADD", "c1", net)[0] == 0
    assert local.links == {plugin.host_ifname("c1"): "/var/run/netns/t"}
    assert call(sock, "CHECK", "c1", net) == (0, {})
    assert call(sock, "DEL", "c1", net) == (0, {}) and local.links == {}
    # no agent at all: DEL still removes the veth, here
    local.links["lxc" + "0" * 11] = "x"
    gone = plugin.AgentPlumber(plugin.AgentClient(str(tmp_path / "none.sock")), lambda: local)
    gone.delete_link("lxc" + "0" * 11)
    assert local.links == {}


def call_logged(
    sock: str, command: str, cid: str, net: Any, log_file: Path, pod: str = "a"
) -> tuple[int, dict[str, Any]]:
    """A call whose configuration names a ``log-file``, as the agent's conflist does."""
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": "/var/run/netns/t",
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": f"K8S_POD_NAMESPACE=prod;K8S_POD_NAME={pod}",
    }
    conf = {"cniVersion": "1.0.0", "name": "cilium", "type": "cilium-cni", "socket-path": sock,
            "log-file": str(log_file)}  # fmt: skip
    out = io.StringIO()
    code = plugin.run(env, json.dumps(conf), out, net)
    return code, json.loads(out.getvalue() or "{}")


def _fields(line: str) -> dict[str, str]:
    import shlex

    return dict(part.split("=", 1) for part in shlex.split(line))


def test_each_call_is_logged_with_its_duration_and_steps(
    node: tuple[Agent, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent, sock = node
    net, log_file = RecordingNetlink(), tmp_path / "cilium-cni.log"
    with caplog.at_level("INFO", logger="cilium-agent.api"):
        assert call_logged(sock, "ADD", "c1" * 8, net, log_file)[0] == 0
    # the agent's side of the ADD, step by step (upstream: "Successful endpoint creation")
    created = [r.getMessage() for r in caplog.records if "endpoint creation" in r.getMessage()]
    assert len(created) == 1 and "k8sPodName=prod/a" in created[0], created
    for step in ("pod", "lock", "identity", "policy", "datapath", "regeneration", "duration"):
        assert f" {step}=" in created[0], step
    assert call_logged(sock, "ADD", "c2" * 8, net, log_file, pod="b")[0] == 1  # pool exhausted
    assert call_logged(sock, "DEL", "c1" * 8, net, log_file)[0] == 0
    add, failed, deleted = (_fields(x) for x in log_file.read_text().splitlines())
    assert add["level"] == "info" and add["msg"] == "CNI ADD done"
    assert add["containerID"] == ("c1" * 8)[:12] and add["pod"] == "prod/a"
    assert add["subsys"] == "cilium-cni" and add["time"].endswith("Z")
    for step in ("duration", "lookup", "ipam", "wire", "endpoint"):
        assert add[step].endswith("s") and float(add[step][:-1]) >= 0, step
    total = float(add["duration"][:-1])
    steps = sum(float(add[s][:-1]) for s in ("lookup", "ipam", "wire", "endpoint"))
    assert steps <= total + 0.0005  # each figure is rounded to 0.1 ms
    assert failed["level"] == "error" and failed["code"] == str(plugin.E_POOL_EXHAUSTED)
    assert failed["msg"].startswith("CNI ADD failed: this node's pod address pool is exhausted")
    assert "wire" not in failed  # it failed before wiring
    assert deleted["msg"] == "CNI DEL done" and deleted["containerID"] == ("c1" * 8)[:12]
    # every routed call is in upstream's API timing metric, under its route's template
    samples = {
        (s["labels"]["method"], s["labels"]["path"], s["labels"]["return_code"]): s["value"]
        for s in agent.metrics.samples()
        if s["name"] == "cilium_agent_api_process_time_seconds_count"
    }
    assert samples[("PUT", "/v1/endpoint/{id}", "201")] == 1
    assert samples[("POST", "/v1/ipam", "201")] == 1
    assert samples[("POST", "/v1/ipam", "502")] == 1  # the exhausted pool's answer
    assert samples[("DELETE", "/v1/endpoint/{id}", "200")] == 1


def test_an_unwritable_log_file_costs_the_call_nothing(
    node: tuple[Agent, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _agent, sock = node
    missing = tmp_path / "no-such-dir" / "cilium-cni.log"
    code, result = call_logged(sock, "ADD", "c1", RecordingNetlink(), missing)
    assert code == 0 and result["ips"][0]["address"] == "10.0.5.2/32"
    assert f"cannot write the log file {missing}" in capsys.readouterr().err


def test_the_conflist_carries_the_cni_log_file_option(tmp_path: Path) -> None:
    from ciliumctl.agent import main as agent_main

    assert agent_main.cni_conflist("/var/run/cilium/cilium-cni.log")["plugins"] == [
        {"type": "cilium-cni", "enable-debug": False, "log-file": "/var/run/cilium/cilium-cni.log"}
    ]
    assert "log-file" not in agent_main.cni_conflist("")["plugins"][0]  # cni.logFile: ""
    target = tmp_path / "net.d" / "05-cilium.conflist"
    agent_main.write_cni_conf(str(target), "/tmp/x.log")
    assert json.loads(target.read_text())["plugins"][0]["log-file"] == "/tmp/x.log"
    config = AgentConfig.load(None, {})
    assert config.get("cni-log-file") == "/var/run/cilium/cilium-cni.log"  # upstream default


def test_the_log_is_rotated_with_three_older_files(
    node: tuple[Agent, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log past its size moves to ``.1`` (older ones to ``.2``, ``.3``; the oldest goes):
    a node that starts pods for years does not fill its disk."""
    _agent, sock = node
    monkeypatch.setattr(plugin, "LOG_MAX_BYTES", 10)
    log_file = tmp_path / "cilium-cni.log"
    for n in (1, 2, 3):
        (tmp_path / f"cilium-cni.log.{n}").write_text(f"old {n}\n")
    log_file.write_text("x" * 20 + "\n")  # past the size
    assert call_logged(sock, "DEL", "c9", RecordingNetlink(), log_file)[0] == 0
    assert "CNI DEL done" in log_file.read_text() and "x" * 20 not in log_file.read_text()
    assert (tmp_path / "cilium-cni.log.1").read_text() == "x" * 20 + "\n"
    assert (tmp_path / "cilium-cni.log.2").read_text() == "old 1\n"
    assert (tmp_path / "cilium-cni.log.3").read_text() == "old 2\n"
    assert not (tmp_path / "cilium-cni.log.4").exists()  # "old 3" was the oldest kept: gone
