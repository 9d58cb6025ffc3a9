"""`cilium dev-cluster`: the local cluster built from the real Kubernetes binaries."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ciliumctl.cli.output import OutputFormat, ProgressReporter, console, emit, err_console

if TYPE_CHECKING:
    from ciliumctl.devcluster import DevCluster

app = typer.Typer(
    help="Run a local Kubernetes cluster for demos and tests.\n\n"
    "Real etcd, kube-apiserver, kube-controller-manager and kube-scheduler with kwok nodes, "
    "all on 127.0.0.1.",
    short_help="Run a local Kubernetes cluster for demos and tests.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rich's markdown renderer costs ~0.1 s at start-up
)

NameOpt = Annotated[str, typer.Option("--name", help="Name of the dev cluster.")]
StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="State directory (default ~/.local/state/ciliumctl/dev-clusters/NAME)."
    ),
]


def _cluster(name: str, state_dir: Path | None) -> DevCluster:
    from ciliumctl.devcluster import DevCluster

    return DevCluster(name, state_dir)


@app.command()
def up(
    nodes: Annotated[
        int, typer.Option("--nodes", min=0, max=1000, help="Number of kwok nodes.")
    ] = 3,
    real_nodes: Annotated[
        int,
        typer.Option(
            "--real-nodes",
            min=0,
            max=16,
            help="Number of real nodes (kubelet + containerd in namespaces of their own; root).",
        ),
    ] = 0,
    cni: Annotated[
        str,
        typer.Option(
            "--cni",
            help="CNI of the real nodes: none (NotReady until one is installed, e.g. Cilium) "
            "or bridge (reference plugins, with kube-proxy).",
        ),
    ] = "none",
    kube_proxy: Annotated[
        bool,
        typer.Option("--kube-proxy", help="Run kube-proxy (iptables mode) on the real nodes."),
    ] = False,
    name: NameOpt = "dev",
    state_dir: StateDirOpt = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each step.")
    ] = 180.0,
) -> None:
    """Start the dev cluster and wait for Ready nodes.

    A second `up` reuses the running cluster, adds missing nodes and restarts a dead
    kubelet or containerd.
    """
    cluster = _cluster(name, state_dir)
    started = time.monotonic()
    with err_console().status("[cyan]starting dev cluster") as status:
        result = cluster.up(
            nodes,
            real_nodes=real_nodes,
            cni=cni,
            kube_proxy=kube_proxy,
            progress=ProgressReporter(status),
            timeout=timeout,
        )
    elapsed = time.monotonic() - started
    ready = sum(1 for n in result.nodes if n.ready)
    out = console()
    out.print(
        f"[green]✓[/] dev cluster [bold]{name}[/] is up: {ready}/{len(result.nodes)} "
        f"nodes Ready in {elapsed:.1f}s"
    )
    out.print(f"  API server:  {result.server}")
    out.print(f"  kubeconfig:  {result.kubeconfig}")
    if result.registry:
        out.print(
            f"  registry:    {result.registry} (nodes: {result.network['host_ip']}:"
            f"{result.registry.rsplit(':', 1)[1]})"
        )
    where = f" --state-dir {state_dir}" if state_dir else ""
    out.print(f'  use it:      eval "$(cilium dev-cluster env --name {name}{where})"')


@app.command()
def down(
    name: NameOpt = "dev",
    state_dir: StateDirOpt = None,
    keep_state: Annotated[
        bool, typer.Option("--keep-state", help="Keep the state directory.")
    ] = False,
) -> None:
    """Stop the dev cluster and remove its state."""
    cluster = _cluster(name, state_dir)
    stopped = cluster.down(keep_state=keep_state)
    what = ", ".join(stopped) or "nothing was running"
    kept = f"; state kept in {cluster.state_dir}" if keep_state else "; state removed"
    console().print(f"[green]✓[/] dev cluster [bold]{name}[/] stopped ({what}){kept}")


@app.command()
def status(
    name: NameOpt = "dev",
    state_dir: StateDirOpt = None,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="text, json or yaml")
    ] = OutputFormat.TEXT,
) -> None:
    """Show components and nodes.

    Each component's pid, port and health, and every node. Exit 1 when not running.
    """
    cluster = _cluster(name, state_dir)
    if not cluster.exists():
        from ciliumctl.devcluster import DevClusterError

        raise DevClusterError(
            f"no dev cluster {name!r} at {cluster.state_dir}",
            "start one with `cilium dev-cluster up`",
        )
    result = cluster.status()
    if output is not OutputFormat.TEXT:
        emit({**asdict(result), "running": result.running, "healthy": result.healthy}, output)
    else:
        from rich.table import Table

        comps = Table(title=f"dev cluster {name} ({'running' if result.running else 'DOWN'})")
        for col in ("component", "pid", "port", "running", "healthy"):
            comps.add_column(col)
        for c in result.components:
            comps.add_row(c.name, str(c.pid), str(c.port), _mark(c.running), _mark(c.healthy))
        console().print(comps)
        nodes = Table(title=f"nodes ({len(result.nodes)})")
        for col in ("node", "ready", "podCIDR", "kernel"):
            nodes.add_column(col)
        for n in result.nodes:
            nodes.add_row(n.name, _mark(n.ready), n.pod_cidr, n.kernel)
        console().print(nodes)
        if result.real_nodes:
            real = Table(title=f"real nodes ({len(result.real_nodes)})")
            for col in ("node", "ip", "kubelet", "containerd", "holder", "podCIDR", "pods", "RSS"):
                real.add_column(col)
            for r in result.real_nodes:
                real.add_row(
                    r.name,
                    r.ip,
                    f"{r.kubelet_pid} {_mark(r.kubelet_healthy)}",
                    f"{r.containerd_pid} {_mark(r.containerd_healthy)}",
                    f"{r.holder_pid} {_mark(r.holder_running)}",
                    r.pod_cidr,
                    str(r.pods),
                    f"{r.rss_bytes / 2**20:.0f} MiB",
                )
            console().print(real)
            console().print(f"registry:   {result.registry}")
        console().print(f"kubeconfig: {result.kubeconfig}")
        console().print(f"logs:       {Path(result.state_dir) / 'logs'}")
    if not result.healthy:
        raise typer.Exit(1)


@app.command()
def kubeconfig(name: NameOpt = "dev", state_dir: StateDirOpt = None) -> None:
    """Print the path of the kubeconfig."""
    cluster = _cluster(name, state_dir)
    if not cluster.kubeconfig_path.exists():
        from ciliumctl.devcluster import DevClusterError

        raise DevClusterError(
            f"no dev cluster {name!r} at {cluster.state_dir}",
            "start one with `cilium dev-cluster up`",
        )
    print(cluster.kubeconfig_path)


@app.command()
def env(name: NameOpt = "dev", state_dir: StateDirOpt = None) -> None:
    """Print shell lines for PATH and KUBECONFIG.

    Use as: eval "$(cilium dev-cluster env)".
    """
    for line in _cluster(name, state_dir).env():
        print(line)


@app.command()
def build(
    binary: Annotated[
        list[str] | None, typer.Argument(help="Binaries to build (default all).")
    ] = None,
) -> None:
    """Find or build the pinned binaries.

    etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and helm,
    built with `go` from the Go module proxy when missing.
    """
    from ciliumctl.devcluster import binaries

    wanted = binary or list(binaries.BINARIES)
    unknown = [b for b in wanted if b not in binaries.BINARIES]
    if unknown:
        from ciliumctl.errors import UsageError

        raise UsageError(
            f"unknown binary {', '.join(unknown)}", f"choose from {', '.join(binaries.BINARIES)}"
        )
    with err_console().status("[cyan]locating binaries") as status:
        found = binaries.ensure(wanted, ProgressReporter(status))
    for name, path in found.items():
        recipe = binaries.RECIPES[binaries.BINARIES[name]]
        console().print(f"[green]✓[/] {name:<24} {recipe.version:<9} {path}")


def _mark(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"
