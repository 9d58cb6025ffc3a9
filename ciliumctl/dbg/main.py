"""``cilium-dbg``: the agent's debug client, with upstream's sub-commands and ``-o json``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ciliumctl.dbg import render
from ciliumctl.dbg.client import AgentClient
from ciliumctl.errors import CiliumctlError

#: BPF maps behind the ``bpf ... list`` commands (upstream's names).
BPF_MAPS: dict[str, tuple[str, ...]] = {
    "ipcache": ("cilium_ipcache",),
    "ct": ("cilium_ct4_global", "cilium_ct6_global"),
    "lb": ("cilium_lb4_services_v2", "cilium_lb4_backends_v3"),
    "endpoint": ("cilium_lxc",),
    "nat": ("cilium_snat_v4_external",),
    "tunnel": ("cilium_tunnel_map",),
    "metrics": ("cilium_metrics",),
}


def policy_map(endpoint_id: int) -> str:
    """The policy map of one endpoint."""
    return f"cilium_policy_{endpoint_id:05d}"


def _output(value: str) -> str:
    """``-o``: ``json``, or ``jsonpath=TEMPLATE`` as upstream (what cilium-cli passes)."""
    if value == "json" or (value.startswith("jsonpath=") and "{" in value):
        return value
    raise argparse.ArgumentTypeError(f"{value!r}: use json or jsonpath='{{.field}}'")


def jsonpath(template: str, data: Any) -> str:
    """A kubectl-style template: each ``{.a.b}`` (or ``{.a[0].b}``) replaced by that value,
    the text around it kept (``'{.revision}'`` prints ``'7'``). A missing field is an
    error naming it."""
    import re

    def value(match: re.Match[str]) -> str:
        node = data
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", match.group(1).removeprefix("$")):
            try:
                node = node[int(part[1:-1])] if part.startswith("[") else node[part]
            except (KeyError, IndexError, TypeError) as exc:
                raise CiliumctlError(f"jsonpath {match.group(0)}: no field {part!r}") from exc
        return node if isinstance(node, str) else json.dumps(node)

    return re.sub(r"\{\.?([^}]*)\}", value, template)


def _emit(args: argparse.Namespace, data: Any, text: Callable[[Any], str]) -> None:
    output = getattr(args, "output", None) or ""
    if output == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif output.startswith("jsonpath="):
        sys.stdout.write(jsonpath(output.removeprefix("jsonpath="), data))
    else:
        sys.stdout.write(text(data))


def _client(args: argparse.Namespace) -> AgentClient:
    return AgentClient(args.host)


def cmd_status(args: argparse.Namespace) -> int:
    data = _client(args).get("/v1/healthz")
    if args.brief:
        line = render.brief(data)
        sys.stdout.write(line)
        return 0 if line == "OK\n" else 1
    _emit(args, data, lambda d: render.status(d, verbose=args.verbose))
    return 0


def cmd_endpoint(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.action == "list":
        _emit(args, client.get("/v1/endpoint"), render.endpoints)
    else:
        data = [client.get(f"/v1/endpoint/{args.id}")]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    return 0


def cmd_identity(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.action == "list":
        _emit(args, client.get("/v1/identity"), render.identities)
    else:
        _emit(args, [client.get(f"/v1/identity/{args.id}")], render.identities)
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.action == "selectors":
        _emit(
            args,
            client.get("/v1/policy/selectors"),
            lambda d: render.kv_table(["SELECTOR", "IDENTITIES"], d, ["selector", "identities"]),
        )
        return 0
    data = client.get("/v1/policy")
    _emit(args, data, lambda d: f"{d['policy']}\nRevision: {d['revision']}\n")
    return 0


def _map_entries(client: AgentClient, names: Sequence[str]) -> list[dict[str, Any]]:
    """Entries of the maps this datapath has (tunnel endpoints live in the ipcache, NAT in
    iptables: their upstream maps may be absent, which lists nothing)."""
    present = {m["name"] for m in client.get("/v1/map").get("maps") or []}
    out: list[dict[str, Any]] = []
    for name in names:
        if name in present:
            out.extend(client.get(f"/v1/map/{name}").get("cache") or [])
    return out


def _entries_text(entries: list[dict[str, Any]]) -> str:
    """A table of decoded map entries, one column per field (maps decode to their own
    fields: prefix/identity, frontend/slot/backend, ...)."""
    if not entries:
        return "No entries found.\n"
    columns = list(dict.fromkeys(k for e in entries for k in e))
    rows = [[_cell(e.get(c, "")) for c in columns] for e in entries]
    return render.table([c.upper().replace("_", " ") for c in columns], rows)


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _lb_text(entries: list[dict[str, Any]]) -> str:
    """``bpf lb list`` as upstream prints it: each frontend (slot 0, its backend count),
    then its backends' addresses with the reverse-NAT index and the slot."""
    if not entries:
        return "No entries found.\n"
    backends = {e["id"]: e["address"] for e in entries if "address" in e}
    services = sorted(
        (e for e in entries if "frontend" in e),
        key=lambda e: (e["frontend"], e["proto"], e["slot"]),
    )
    rows: list[list[str]] = []
    for e in services:
        if e["slot"] == 0:
            rows.append(
                [e["frontend"], f"0.0.0.0:0 ({e['rev_nat_index']}) (0) [{e['count']} backends]"]
            )
        else:
            address = backends.get(e["backend_id"], f"<backend {e['backend_id']} missing>")
            rows.append(["", f"{address} ({e['rev_nat_index']}) ({e['slot']})"])
    return render.table(["SERVICE ADDRESS", "BACKEND ADDRESS (REVNAT_ID) (SLOT)"], rows)


def cmd_bpf(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.group == "policy":
        ids = (
            [ep["id"] for ep in client.get("/v1/endpoint")]
            if args.all or args.id is None
            else [int(args.id)]
        )
        data = {str(i): _map_entries(client, [policy_map(i)]) for i in ids}
        _emit(
            args,
            data,
            lambda d: "".join(f"Endpoint {k}:\n{_entries_text(v)}" for k, v in d.items()),
        )
        return 0
    entries = _map_entries(client, BPF_MAPS[args.group])
    _emit(args, entries, _lb_text if args.group == "lb" else _entries_text)
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    _emit(args, _client(args).get("/v1/service"), render.services)
    return 0


def cmd_ip(args: argparse.Namespace) -> int:
    data = _client(args).get("/v1/ip")
    _emit(
        args,
        data,
        lambda d: render.kv_table(
            ["IP", "IDENTITY", "SOURCE", "HOST"], d, ["cidr", "identity", "source", "host-ip"]
        ),
    )
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    client = _client(args)
    types = ",".join(args.type or [])
    seq = int(client.get("/v1/monitor?timeout=0").get("last") or 0)
    deadline = time.monotonic() + args.duration if args.duration else None
    sys.stderr.write("Listening for events; press Ctrl-C to quit\n")
    try:
        while deadline is None or time.monotonic() < deadline:
            answer = client.get(f"/v1/monitor?since={seq}&timeout=1&type={types}")
            seq = int(answer.get("last") or seq)
            for item in answer.get("events") or []:
                line = json.dumps(item) if args.output else render.event(item)
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_debuginfo(args: argparse.Namespace) -> int:
    data = _client(args).get("/v1/debuginfo")
    _emit(args, data, lambda d: render.status(d["cilium-status"], verbose=True)
          + render.endpoints(d["endpoint-list"]) + render.services(d["service-list"])
          + f"{d['policy']['policy']}\nRevision: {d['policy']['revision']}\n")  # fmt: skip
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    data = _client(args).get("/v1/config")
    values = (data.get("status") or {}).get("daemonConfigurationMap") or {}
    _emit(
        args,
        data,
        lambda _d: render.table(["KEY", "VALUE"], [[k, v] for k, v in sorted(values.items())]),
    )
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.action == "list":
        maps = client.get("/v1/map").get("maps") or []
        _emit(
            args,
            maps,
            lambda d: render.kv_table(
                ["Name", "Num entries", "Max entries"], d, ["name", "entries", "max-entries"]
            ),
        )
    else:
        data = client.get(f"/v1/map/{args.name}")
        _emit(args, data, lambda d: _entries_text(d.get("cache") or []))
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    """``metrics list [-p REGEX]``: the agent's metrics, as upstream's (name, labels, value)."""
    import re

    try:
        pattern = re.compile(args.match_pattern or "")
    except re.error as exc:
        sys.stderr.write(f"Error: --match-pattern {args.match_pattern!r}: {exc}\n")
        return 2
    data = [m for m in _client(args).get("/v1/metrics/") or [] if pattern.search(m["name"])]
    _emit(
        args,
        data,
        lambda d: render.table(
            ["Metric", "Labels", "Value"],
            [
                [m["name"], " ".join(f'{k}="{v}"' for k, v in sorted(m["labels"].items())),
                 f"{m['value']:.6f}"]
                for m in d
            ],
        ),
    )  # fmt: skip
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    """``version``: this client's and the running agent's version, as upstream's
    (cilium-cli reads ``-o jsonpath={$.Daemon.Version}``); without an agent, the client's
    alone and exit 1."""
    import platform

    from ciliumctl.versions import RUNTIME_VERSION

    arch = f"{platform.system().lower()}/{platform.machine()}"
    info = {"Version": RUNTIME_VERSION, "Revision": "", "Arch": arch}
    data: dict[str, Any] = {"Client": info}
    error = None
    try:
        data["Daemon"] = {**info, "Version": _client(args).get("/v1/healthz")["version"]}
    except CiliumctlError as exc:
        error = exc
    _emit(
        args,
        data,
        lambda d: "".join(f"{k}: {v['Version']} {v['Arch']}\n" for k, v in d.items()),
    )
    if error is not None:
        sys.stderr.write(f"Error: {error}\n")
        return 1
    return 0


def cmd_build_config(args: argparse.Namespace) -> int:
    from ciliumctl.dbg.buildconfig import BuildConfigOptions, compute, write
    from ciliumctl.k8s import Client

    options = BuildConfigOptions(
        node=args.node_name or os.environ.get("K8S_NODE_NAME", ""),
        namespace=os.environ.get("CILIUM_K8S_NAMESPACE", "kube-system"),
        sources=tuple(args.source or ()),
        allow_keys=tuple(args.allow_config_keys or ()),
        deny_keys=tuple(args.deny_config_keys or ()),
        dest=Path(args.dest),
    )
    client = Client(args.k8s_kubeconfig_path or None)
    effective = compute(client, options)
    keys = write(effective, options.dest)
    for warning in effective.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    if args.output == "json":
        sys.stdout.write(json.dumps(effective.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(
            f"wrote {len(keys)} keys to {options.dest} from {', '.join(effective.sources)}\n"
        )
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser (upstream's command tree)."""
    from ciliumctl.dbg.buildconfig import DEFAULT_DEST

    top = argparse.ArgumentParser(prog="cilium-dbg", description="CLI for the Cilium agent")
    top.add_argument("-H", "--host", help="URI of the agent's API (unix:///path)")
    sub = top.add_subparsers(dest="command", required=True)

    def cmd(name: str, func: Callable[[argparse.Namespace], int], **kw: Any) -> Any:
        p = sub.add_parser(name, **kw)
        p.set_defaults(func=func)
        p.add_argument("-o", "--output", type=_output, help="json or jsonpath=TEMPLATE")
        return p

    p = cmd("status", cmd_status, help="status of the agent")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--brief", action="store_true")
    for name, func in (("endpoint", cmd_endpoint), ("identity", cmd_identity)):
        p = cmd(name, func, help=f"{name}s")
        p.add_argument("action", choices=["list", "get"])
        p.add_argument("id", nargs="?")
    p = cmd("policy", cmd_policy, help="policy repository")
    p.add_argument("action", choices=["get", "selectors"])
    p = cmd("bpf", cmd_bpf, help="BPF maps")
    p.add_argument("group", choices=["policy", *BPF_MAPS])
    p.add_argument("action", choices=["get", "list"])
    p.add_argument("id", nargs="?", help="endpoint id (policy) or 'global' (ct)")
    p.add_argument("--all", action="store_true")
    p = cmd("service", cmd_service, help="services")
    p.add_argument("action", choices=["list"])
    p = cmd("ip", cmd_ip, help="ipcache")
    p.add_argument("action", choices=["list"])
    p = cmd("monitor", cmd_monitor, help="datapath events")
    p.add_argument("-t", "--type", action="append", choices=["drop", "trace", "policy-verdict"])
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds")
    cmd("debuginfo", cmd_debuginfo, help="everything, for bug reports")
    cmd("config", cmd_config, help="the agent's configuration")
    p = cmd("map", cmd_map, help="BPF maps")
    p.add_argument("action", choices=["list", "get"])
    p.add_argument("name", nargs="?")
    cmd("version", cmd_version, help="client and agent versions")
    p = cmd("metrics", cmd_metrics, help="the agent's metrics")
    p.add_argument("action", choices=["list"])
    p.add_argument("-p", "--match-pattern", help="only metrics whose name matches this regex")
    p = cmd("build-config", cmd_build_config, help="write the agent's configuration directory")
    p.add_argument("--source", action="append")
    p.add_argument("--allow-config-keys", action="append")
    p.add_argument("--deny-config-keys", action="append")
    p.add_argument("--dest", default=DEFAULT_DEST)
    p.add_argument("--node-name")
    p.add_argument("--k8s-kubeconfig-path")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cilium-dbg`` console script."""
    args = parser().parse_args(argv)
    if args.command in ("endpoint", "identity") and args.action == "get" and not args.id:
        sys.stderr.write(f"Error: {args.command} get needs an id\n")
        return 2
    if args.command == "map" and args.action == "get" and not args.name:
        sys.stderr.write("Error: map get needs a map name (see map list)\n")
        return 2
    try:
        return int(args.func(args))
    except CiliumctlError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return exc.exit_code
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
