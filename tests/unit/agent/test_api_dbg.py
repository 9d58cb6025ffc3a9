"""The agent's unix-socket API and cilium-dbg / cilium-bugtool against an in-process agent."""

from __future__ import annotations

import json
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.agent.api import serve_api, serve_health
from ciliumctl.agent.config import AgentConfig
from ciliumctl.agent.daemon import Agent
from ciliumctl.dbg import bugtool
from ciliumctl.dbg import main as dbg
from tests.unit.agent.fakes import MemoryIdentityStore, RecordingDatapath


def _pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "prod", "uid": name, "labels": labels},
        "spec": {},
    }


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[Agent, str]]:
    sock = tmp_path / "cilium.sock"
    config = AgentConfig.load(
        None, {"socket-path": str(sock), "ipam": "cluster-pool", "state-dir": str(tmp_path)}
    )
    a = Agent(config, RecordingDatapath(), None, "node-a")
    a.allocator._client = MemoryIdentityStore()  # no API server in a unit test
    a.ipam.set_cidrs(["10.0.1.0/29"])
    server = serve_api(a, sock)
    try:
        yield a, str(sock)
    finally:
        server.shutdown()
        server.server_close()


def run_dbg(sock: str, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = dbg.main(["-H", f"unix://{sock}", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_sections_and_json(
    agent: tuple[Agent, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _a, sock = agent
    code, out, _ = run_dbg(sock, "status", "--verbose", capsys=capsys)
    assert code == 0
    for section in (
        "Kubernetes:",
        "KubeProxyReplacement:",
        "Routing:",
        "Masquerading:",
        "Controller Status:",
        "Proxy Status:",
        "Hubble:",
        "Cluster health:",
        "IPAM:",
        "Encryption:",
    ):
        assert section in out
    assert "IPv4: 0/5 allocated from 10.0.1.0/29" in out
    code, out, _ = run_dbg(sock, "status", "-o", "json", capsys=capsys)
    data = json.loads(out)
    assert data["kubernetes"]["state"] == "Disabled"
    assert "L7 rules and toFQDNs are not enforced" in data["proxy"]["msg"]
    code, out, _ = run_dbg(sock, "status", "--brief", capsys=capsys)
    assert (code, out) == (1, "kubernetes: Disabled: no Kubernetes client\n") or out == "OK\n"


def test_endpoints_identities_policy(
    agent: tuple[Agent, str], capsys: pytest.CaptureFixture[str]
) -> None:
    a, sock = agent
    a.policy_event(
        "ADDED",
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "p", "namespace": "prod"},
            "spec": {
                "endpointSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"fromCIDRSet": [{"cidr": "192.0.2.0/24"}]}],
                "egress": [{"toFQDNs": [{"matchName": "x.example"}]}],
            },
        },
        None,
    )
    web = a.endpoints.add(_pod("web", app="web"), {}, ifname="lxc1", ipv4="10.0.1.2")
    code, out, _ = run_dbg(sock, "endpoint", "list", capsys=capsys)
    assert code == 0 and "ENDPOINT" in out and "10.0.1.2" in out and "ready" in out
    code, out, _ = run_dbg(sock, "endpoint", "get", str(web.id), capsys=capsys)
    got = json.loads(out)[0]
    assert got["status"]["identity"]["id"] == web.identity
    assert got["status"]["policy"]["realized"]["policy-enabled"] == "both"
    assert any("toFQDNs" in n for n in got["status"]["policy"]["not-enforced"])
    code, out, _ = run_dbg(sock, "identity", "list", "-o", "json", capsys=capsys)
    ids = {i["id"]: i["labels"] for i in json.loads(out)}
    assert ids[1] == ["reserved:host"] and web.identity in ids
    assert any("cidr:192.0.2.0/24" in labels for labels in ids.values())  # the CIDR identity
    code, out, _ = run_dbg(sock, "identity", "get", "world", capsys=capsys)
    assert "reserved:world" in out
    code, out, _ = run_dbg(sock, "policy", "get", capsys=capsys)
    assert "CiliumNetworkPolicy prod/p" in out and "Revision:" in out
    code, out, _ = run_dbg(sock, "policy", "selectors", "-o", "json", capsys=capsys)
    assert any(s["selector"].startswith("cidr:192.0.2.0/24") for s in json.loads(out))
    code, out, _ = run_dbg(sock, "bpf", "ipcache", "list", "-o", "json", capsys=capsys)
    assert code == 0 and {"prefix": "10.0.1.2/32", "identity": web.identity} in json.loads(out)
    code, out, _ = run_dbg(sock, "bpf", "ipcache", "list", capsys=capsys)
    header, *rows = out.splitlines()
    assert header.split() == ["PREFIX", "IDENTITY"] and "null" not in out
    assert any(r.split() == ["10.0.1.2/32", str(web.identity)] for r in rows), out
    code, out, _ = run_dbg(sock, "map", "list", capsys=capsys)
    assert out.splitlines()[1].split() == ["cilium_ipcache", str(len(a.datapath.ipcache)), "512000"]  # type: ignore[attr-defined]
    code, out, _ = run_dbg(sock, "ip", "list", capsys=capsys)
    assert "10.0.1.2/32" in out and "192.0.2.0/24" in out
    code, out, _ = run_dbg(sock, "status", capsys=capsys)
    assert "not enforced" in out


def test_errors_name_the_problem(
    agent: tuple[Agent, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _a, sock = agent
    code, _out, err = run_dbg(sock, "endpoint", "get", "999", capsys=capsys)
    assert code == 1 and "endpoint 999 not found" in err
    code, _out, err = run_dbg(str(tmp_path / "nope.sock"), "status", capsys=capsys)
    assert code == 1 and "is the agent running?" in err


def test_ipam_over_the_api_until_exhausted(agent: tuple[Agent, str]) -> None:
    from ciliumctl.dbg.client import AgentAPIError, AgentClient

    _a, sock = agent
    client = AgentClient(sock)
    got = [client.request("POST", f"/v1/ipam?owner=c{i}")["address"]["ipv4"] for i in range(5)]
    assert got == ["10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5", "10.0.1.6"]  # .1 is the router
    with pytest.raises(AgentAPIError) as info:
        client.request("POST", "/v1/ipam?owner=c9")
    assert "exhausted" in info.value.message
    assert client.request("DELETE", "/v1/ipam/10.0.1.4") == {"released": True}
    assert client.request("POST", "/v1/ipam?owner=c9")["address"]["ipv4"] == "10.0.1.4"


def test_monitor_events_and_drop_metric(
    agent: tuple[Agent, str], capsys: pytest.CaptureFixture[str]
) -> None:
    a, sock = agent
    a._record_event(
        {
            "type": "drop",
            "reason": "Policy denied",
            "direction": "ingress",
            "src-label": 300,
            "dst-label": 301,
            "src": "10.0.1.2:4000",
            "dst": "10.0.1.3:80",
            "proto": "tcp",
        }
    )
    a._record_event({"type": "trace", "direction": "egress", "src-label": 300, "dst-label": 301})
    from ciliumctl.dbg.client import AgentClient

    answer = AgentClient(sock).get("/v1/monitor?since=0&timeout=0&type=drop")
    assert [e["reason"] for e in answer["events"]] == ["Policy denied"]
    from ciliumctl.dbg.render import event

    assert "xx drop (Policy denied)" in event(answer["events"][0]) and "identity 300->301" in event(
        answer["events"][0]
    )
    text = a.metrics.text().decode()
    assert 'cilium_drop_count_total{direction="INGRESS",reason="Policy denied"} 1.0' in text
    assert 'cilium_forward_count_total{direction="EGRESS"} 1.0' in text


def test_metrics_list_as_upstream_with_pattern_and_json(
    agent: tuple[Agent, str], capsys: pytest.CaptureFixture[str]
) -> None:
    a, sock = agent
    a._record_event({"type": "drop", "reason": "Policy denied", "direction": "egress"})
    a._record_event({"type": "drop", "reason": "Policy denied", "direction": "egress"})
    code, out, _ = run_dbg(sock, "metrics", "list", "-p", "drop_count", "-o", "json", capsys=capsys)
    assert code == 0
    assert json.loads(out) == [
        {
            "name": "cilium_drop_count_total",
            "labels": {"reason": "Policy denied", "direction": "EGRESS"},
            "value": 2.0,
        }
    ]
    code, out, _ = run_dbg(sock, "metrics", "list", capsys=capsys)
    lines = out.splitlines()
    assert lines[0].split() == ["Metric", "Labels", "Value"]
    assert any(
        line.split() == ["cilium_drop_count_total", 'direction="EGRESS"', 'reason="Policy',
                         'denied"', "2.000000"]
        for line in lines
    )  # fmt: skip
    assert not any("_created" in line for line in lines)
    code, _out, err = run_dbg(sock, "metrics", "list", "-p", "(", capsys=capsys)
    assert code == 2 and "--match-pattern '('" in err


def test_health_endpoint(agent: tuple[Agent, str]) -> None:
    a, _sock = agent
    server = serve_health(a, 0)
    try:
        port = server.server_address[1]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"brief": "true"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200 and resp.read() == b"OK"
    finally:
        server.shutdown()
        server.server_close()


def test_bugtool_archive_has_real_dbg_output(
    agent: tuple[Agent, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _a, sock = agent
    assert (
        bugtool.main(
            ["--archiveType=gz", "--tmp", str(tmp_path), "-H", sock, "--config-dir", str(tmp_path)]
        )
        == 0
    )
    line = capsys.readouterr().out.strip()
    assert line.startswith("GZIP at ")
    with tarfile.open(line.removeprefix("GZIP at "), "r:gz") as tar:
        names = {Path(m.name).name: m for m in tar.getmembers()}
        status = tar.extractfile(names["cilium-dbg-status---verbose.md"])
        assert status is not None and b"Controller Status:" in status.read()
        assert "cilium-dbg-endpoint-list--o-json.md" in names


def test_restart_restores_endpoints_without_touching_the_datapath(tmp_path: Path) -> None:
    config = AgentConfig.load(
        None, {"state-dir": str(tmp_path), "socket-path": str(tmp_path / "s")}
    )
    store = MemoryIdentityStore()
    first = Agent(config, RecordingDatapath(), None, "node-a")
    first.allocator._client = store
    first.ipam.set_cidrs(["10.0.1.0/24"])
    pod = _pod("web", app="web")
    ns = {"kubernetes.io/metadata.name": "prod"}
    ep = first.endpoints.add(pod, ns, ifname="lxc1", ipv4="10.0.1.7", container_id="c1")
    gone = first.endpoints.add(_pod("gone", app="gone"), {}, ifname="lxc2", ipv4="10.0.1.8")
    # a new agent process: fresh memory, same state directory and pinned datapath
    dp = RecordingDatapath()
    second = Agent(config, dp, None, "node-a")
    second.allocator._client = store
    restored = second.restore_endpoints()
    assert {e.id for e in restored} == {ep.id, gone.id}
    assert dp.endpoints == {}  # programs stay attached: nothing re-created
    second.pods["prod/web"] = pod  # the watchers' view after sync: "gone" was deleted meanwhile
    second.ipam.set_cidrs(["10.0.1.0/24"])
    second.reconcile_restored()
    again = second.endpoints.get(ep.id)
    assert again is not None and again.state == "ready" and again.identity == ep.identity
    assert again.ipv4 == "10.0.1.7" and "10.0.1.7" in second.ipam.status()["allocations"]
    assert second.endpoints.get(gone.id) is None
    assert not (tmp_path / "state" / str(gone.id)).exists()
    assert dp.policies[ep.id] == again.result.policy  # type: ignore[union-attr]
    # the survivor's programs are rebuilt by the new agent (its code, its identity)
    assert set(dp.endpoints) == {ep.id} and dp.endpoints[ep.id].identity == ep.identity


def test_bpf_lb_list_text_joins_frontends_with_their_backends() -> None:
    """``bpf lb list`` prints each frontend (slot 0) then its backends' addresses with the
    reverse-NAT index and slot, as upstream does; a backend id missing from the backends map
    is named, never printed as null."""
    from ciliumctl.dbg.main import _lb_text

    entries = [  # decoded as ciliumctl.datapath.maps decodes the two LB maps
        {"frontend": "10.96.0.1:443", "proto": 6, "slot": 1, "backend_id": 1, "count": 0,
         "rev_nat_index": 1},
        {"frontend": "10.96.0.1:443", "proto": 6, "slot": 0, "backend_id": 0, "count": 2,
         "rev_nat_index": 1},
        {"frontend": "10.96.0.1:443", "proto": 6, "slot": 2, "backend_id": 9, "count": 0,
         "rev_nat_index": 1},
        {"id": 1, "address": "198.18.0.1:6443"},
    ]  # fmt: skip
    lines = _lb_text(entries).splitlines()
    assert lines[0].split("   ")[0] == "SERVICE ADDRESS"
    assert lines[1].split() == ["10.96.0.1:443", "0.0.0.0:0", "(1)", "(0)", "[2", "backends]"]
    assert lines[2].split() == ["198.18.0.1:6443", "(1)", "(1)"]
    assert lines[3].split() == ["<backend", "9", "missing>", "(1)", "(2)"]
    assert _lb_text([]) == "No entries found.\n"


def test_jsonpath_output_as_cilium_cli_asks_for_the_policy_revision(
    agent: tuple[Agent, str], capsys: pytest.CaptureFixture[str]
) -> None:
    a, sock = agent
    code, out, _ = run_dbg(sock, "policy", "get", "-o", "jsonpath='{.revision}'", capsys=capsys)
    assert (code, out) == (0, f"'{a.repository.revision}'")
    code, out, _ = run_dbg(sock, "status", "-o=jsonpath={.cluster.nodes[0].name}", capsys=capsys)
    assert (code, out) == (0, "node-a")
    code, _out, err = run_dbg(sock, "policy", "get", "-o", "jsonpath={.nope}", capsys=capsys)
    assert code == 1 and "jsonpath {.nope}: no field 'nope'" in err
    with pytest.raises(SystemExit) as usage:
        dbg.main(["-H", f"unix://{sock}", "status", "-o", "yaml"])
    assert usage.value.code == 2
    assert "use json or jsonpath=" in capsys.readouterr().err


def test_version_as_cilium_cli_reads_it(
    agent: tuple[Agent, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ciliumctl.versions import RUNTIME_VERSION

    _a, sock = agent
    code, out, _ = run_dbg(sock, "version", "-o", "jsonpath={$.Daemon.Version}", capsys=capsys)
    assert (code, out) == (0, RUNTIME_VERSION)
    code, out, _ = run_dbg(sock, "version", capsys=capsys)
    assert code == 0 and out.startswith(f"Client: {RUNTIME_VERSION} ")
    assert f"\nDaemon: {RUNTIME_VERSION} " in out
    code, out, err = run_dbg(str(tmp_path / "none.sock"), "version", capsys=capsys)
    assert code == 1 and out.startswith("Client: ") and "Daemon" not in out
    assert "cannot reach the agent" in err


def test_every_endpoint_realizes_each_policy_revision_as_cilium_cli_waits_for(
    agent: tuple[Agent, str],
) -> None:
    """A policy that selects only ``web`` regenerates web; ``db``'s policy is unchanged but
    its realized revision moves too (cilium-cli waits for every endpoint with an identity
    to realize the revision after it applies a policy), and db's map is not rewritten."""
    a, _sock = agent
    web = a.endpoints.add(_pod("web", app="web"), {}, ifname="lxc1", ipv4="10.0.1.2")
    db = a.endpoints.add(_pod("db", app="db"), {}, ifname="lxc2", ipv4="10.0.1.3")
    writes = a.datapath.policy_writes  # type: ignore[attr-defined]
    db_policy = db.result.policy if db.result else None
    cnp = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "web-only", "namespace": "prod"},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "db"}}]}],
        },
    }
    a.policy_event("ADDED", cnp, None)
    revision = a.repository.revision

    def realized(ep: object) -> int:
        return int(ep.to_api()["status"]["policy"]["realized"]["policy-revision"])  # type: ignore[attr-defined]

    assert realized(web) == revision and realized(db) == revision
    assert db.result is not None and db.result.policy == db_policy
    assert a.datapath.policy_writes == writes + 1  # type: ignore[attr-defined]  # web's only
    a.policy_event("DELETED", cnp, None)
    assert realized(web) == realized(db) == a.repository.revision > revision


def test_a_full_accept_queue_is_waited_out_not_reported_as_no_agent(tmp_path: Path) -> None:
    """A unix socket with a timeout answers EAGAIN at once when the listener's backlog is
    full; the client waits for the busy agent instead of calling it unreachable."""
    import socket
    import threading
    import time

    from ciliumctl.dbg.client import AgentClient

    path = tmp_path / "busy.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(0)
    fillers = []
    for _ in range(8):  # fill the backlog until the kernel refuses with EAGAIN
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(str(path))
        except BlockingIOError:
            s.close()
            break
        fillers.append(s)
    else:
        pytest.fail("the backlog never filled")

    def serve() -> None:
        time.sleep(0.3)
        for _ in range(len(fillers)):
            server.accept()[0].close()  # drain the queue, then answer the client
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"ok"')

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    started = time.monotonic()
    assert AgentClient(str(path), timeout=5).get("/v1/healthz") == "ok"
    assert time.monotonic() - started >= 0.25  # it waited for the queue, it did not fail
    worker.join(5)
    for s in fillers:
        s.close()
    server.close()


def test_the_agent_api_takes_a_nodes_worth_of_simultaneous_connections(tmp_path: Path) -> None:
    """Fifty clients connecting at once all get answers (socketserver's default backlog
    of five turned CNI ADDs away as "agent not running")."""
    import socket
    from concurrent.futures import ThreadPoolExecutor

    from ciliumctl.agent.api import UnixAPIServer

    assert UnixAPIServer.request_queue_size >= 128
    path = tmp_path / "api.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(UnixAPIServer.request_queue_size)

    def connect(_: int) -> bool:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(1)
        try:
            s.connect(str(path))  # nobody accepts yet: only the queue holds them
            return True
        finally:
            s.close()

    with ThreadPoolExecutor(50) as pool:
        assert all(pool.map(connect, range(50)))
    server.close()


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (b"garbage\r\n\r\n", "not an HTTP answer"),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"ok"', "cut short: 4 of 10 bytes"),
        (b"", "not an HTTP answer"),
    ],
)
def test_a_broken_answer_is_an_unreachable_agent_with_the_reason(
    tmp_path: Path, answer: bytes, said: str
) -> None:
    """The client speaks HTTP/1.1 itself (no http.client for the CNI plugin's start-up): an
    answer that is not HTTP, or shorter than its Content-Length, is reported, not parsed."""
    import socket
    import threading

    from ciliumctl.dbg.client import AgentClient, AgentUnreachableError

    path = tmp_path / "odd.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(answer)

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    with pytest.raises(AgentUnreachableError, match=said):
        AgentClient(str(path), timeout=5).get("/v1/healthz")
    worker.join(5)
    server.close()
