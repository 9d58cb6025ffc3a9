"""``cilium-health``: the agent's node-to-node probes, with upstream's commands and output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ciliumctl.dbg.client import AgentClient
from ciliumctl.errors import CiliumctlError

DEFAULT_SOCKET = "unix:///var/run/cilium/health.sock"


def _rtt(ns: int) -> str:
    return f"{ns / 1000:.3f}µs" if ns < 1_000_000 else f"{ns / 1_000_000:.3f}ms"


def _probe_line(name: str, result: dict[str, Any]) -> str:
    status = result.get("status")
    text = status if status else f"OK, RTT={_rtt(int(result.get('latency') or 0))}"
    return f"      {name + ':':<17}{text}\n"


def render(doc: dict[str, Any]) -> str:
    """Upstream's text: the probe time, then per node its host address and both probes."""
    local = (doc.get("local") or {}).get("name", "")
    out = f"Probe time:   {doc.get('timestamp') or 'never'}\nNodes:\n"
    for node in doc.get("nodes") or []:
        suffix = " (localhost)" if node.get("name") == local else ""
        out += f"  {node.get('name')}{suffix}:\n"
        primary = (node.get("host") or {}).get("primary-address") or {}
        out += f"    Host connectivity to {primary.get('ip', '?')}:\n"
        out += _probe_line("ICMP to stack", primary.get("icmp") or {})
        out += _probe_line("HTTP to agent", primary.get("http") or {})
    return out


def parser() -> argparse.ArgumentParser:
    """``status [--probe] [-o json]`` and ``ping``, as upstream's cilium-health."""
    top = argparse.ArgumentParser(prog="cilium-health", description="Cilium health client")
    top.add_argument("-H", "--host", default=DEFAULT_SOCKET, help="URI of the health API")
    sub = top.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="connectivity status of the cluster's nodes")
    status.add_argument("--probe", action="store_true", help="probe every node now")
    status.add_argument("-o", "--output", choices=["json"], help="output format")
    sub.add_parser("ping", help="check that the health API answers")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cilium-health`` console script."""
    args = parser().parse_args(argv)
    client = AgentClient(args.host)
    try:
        if args.command == "ping":
            client.get("/v1beta/healthz")
            sys.stdout.write("OK\n")
            return 0
        doc = (
            client.request("PUT", "/v1beta/status/probe")
            if args.probe
            else client.get("/v1beta/status")
        )
    except CiliumctlError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return exc.exit_code
    sys.stdout.write(json.dumps(doc, indent=2) + "\n" if args.output == "json" else render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
