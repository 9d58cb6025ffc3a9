"""An agent-like process is killed and restarted while a TCP connection between two pods stays
open: the attached programs and pinned maps keep forwarding, the new process reprograms them."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys

from ciliumctl.datapath import netlink
from ciliumctl.datapath.model import EndpointSpec
from tests.datapath.conftest import Namespaces
from tests.datapath.traffic import Server, in_ns, probe

AGENT = os.path.join(os.path.dirname(__file__), "agent_like.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def agent(cmd: str, root: str, node_ns: str, specs: list[EndpointSpec]) -> subprocess.Popen[str]:
    raw = json.dumps([dataclasses.asdict(s) for s in specs])
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.Popen(
        [sys.executable, AGENT, cmd, root, node_ns, raw], stdout=subprocess.PIPE, text=True, env=env
    )


def test_tcp_connection_survives_an_agent_restart(pin_root: str, netns: Namespaces) -> None:
    node = netns.new("node")
    netlink.enable_forwarding(node)
    specs = []
    for ep_id, name, ident, ip in (
        (21, "client", 1000, "10.210.0.1"),
        (22, "server", 2000, "10.210.0.2"),
    ):
        pod_ns = netns.new(name)
        pod_mac, host_mac = netlink.plumb_endpoint(f"lxc{ep_id}", pod_ns, ip, None, node)
        specs.append(EndpointSpec(ep_id, f"lxc{ep_id}", ident, ip, None, pod_mac, host_mac))
    client_ns, server_ns = netns.names[1], netns.names[2]

    first = agent("start", pin_root, node, specs)
    servers = [Server(server_ns, "tcp", 80), Server(server_ns, "tcp", 81)]
    hold = subprocess.Popen(
        in_ns(client_ns, "hold", "10.210.0.2", "80"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "ready"
        assert hold.stdin is not None and hold.stdout is not None
        assert hold.stdout.readline().strip() == "connected"

        def roundtrip(msg: str) -> str:
            assert hold.stdin is not None and hold.stdout is not None
            hold.stdin.write(msg + "\n")
            hold.stdin.flush()
            return hold.stdout.readline().strip()

        assert roundtrip("before") == "ok before"
        assert probe(client_ns, "tcp", "10.210.0.2", "81", "x")[0] == 1  # not yet allowed

        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert roundtrip("agent-down") == "ok agent-down"

        second = agent("resume", pin_root, node, specs)
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 0 and out.startswith("resumed 2 2"), out
        assert roundtrip("agent-back") == "ok agent-back"
        assert probe(client_ns, "tcp", "10.210.0.2", "81", "now-allowed") == (0, "ok now-allowed")
        assert netlink.attached_programs("lxc22", node) == {
            "ingress": "cil_from_container",
            "egress": "cil_to_container",
        }
    finally:
        for p in (first, hold):
            if p.poll() is None:
                p.kill()
                p.wait(5)
        for s in servers:
            s.stop()
    assert [ln.split()[-1] for ln in servers[0].lines] == ["before", "agent-down", "agent-back"]
