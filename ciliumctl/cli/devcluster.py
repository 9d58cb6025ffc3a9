"""`cilium dev-cluster`: the local cluster built from the real Kubernetes binaries."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ciliumctl.cli.output import OutputFormat, ProgressReporter, console, emit, err_console

if TYPE_CHECKING:
    from ciliumctl.devcluster import DevCluster
    from ciliumctl.devcluster.images import BuiltImage

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


images_app = typer.Typer(
    help="Images built here for the dev cluster (never pulled): build, push, list.\n\n"
    "Debian bookworm rootfs (mmdebstrap) packed with umoci into OCI layouts, cached by "
    "content under ~/.cache/ciliumctl/images.",
    short_help="Build, push and list the dev cluster's images.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(images_app, name="images")

ImageNamesArg = Annotated[
    list[str] | None, typer.Argument(help="Images (default all).", show_default=False)
]
BuildArgOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--build-arg",
        help="NAME=PATH build argument, e.g. world-ca=ca.crt (a CA the image trusts).",
    ),
]
OutputOpt = Annotated[OutputFormat, typer.Option("-o", "--output", help="text, json or yaml")]


def _build_args(values: list[str] | None) -> dict[str, Path]:
    from ciliumctl.errors import UsageError

    out: dict[str, Path] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--build-arg {value!r} is not NAME=PATH", "e.g. world-ca=ca.crt")
        out[name] = Path(path)
    return out


def _wanted(names: list[str] | None) -> list[str]:
    from ciliumctl.devcluster import images, runtime_images

    if {runtime_images.AGENT, runtime_images.OPERATOR} & set(names or []):
        runtime_images.register()  # the runtime's images only when asked for by name
    for name in names or []:
        images.get(name)  # a usage error names the known images
    return names or images.names()


def _build_all(names: list[str], args: dict[str, Path], rebuild: bool) -> list[BuiltImage]:
    from ciliumctl.devcluster import images

    built = []
    with err_console().status("[cyan]building images") as status:
        progress = ProgressReporter(status)
        for name in names:
            recipe = images.get(name)
            own = {k: v for k, v in args.items() if k in recipe.build_args()}
            built.append(images.build(name, args=own, rebuild=rebuild, progress=progress))
    return built


@images_app.command("build")
def images_build(
    names: ImageNamesArg = None,
    build_arg: BuildArgOpt = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Rebuild even when the cached image is current.")
    ] = False,
    output: OutputOpt = OutputFormat.TEXT,
) -> None:
    """Build images (an unchanged recipe is not rebuilt)."""
    built = _build_all(_wanted(names), _build_args(build_arg), rebuild)
    if output is not OutputFormat.TEXT:
        emit([b.to_json() for b in built], output)
        return
    for b in built:
        how = "cached" if b.cached else f"built in {b.seconds:.1f}s"
        console().print(
            f"[green]✓[/] {b.repository}:{b.tag:<8} {b.digest[:19]}  {b.size / 1e6:6.1f} MB  {how}"
        )


@images_app.command("push")
def images_push(
    registry: Annotated[
        str, typer.Option("--registry", help="Registry HOST:PORT on 127.0.0.1 (plain HTTP).")
    ],
    names: ImageNamesArg = None,
    build_arg: BuildArgOpt = None,
    sign: Annotated[
        bool,
        typer.Option(
            "--sign",
            help="Sign each pushed image with cosign (key pair in the dev cluster's state, "
            "made once) and attach a syft SPDX SBOM as a cosign attestation.",
        ),
    ] = False,
    name: NameOpt = "dev",
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
) -> None:
    """Build (if needed) and push images, also under their upstream aliases."""
    from ciliumctl.devcluster import images

    images.check_registry(registry)
    built = _build_all(_wanted(names), _build_args(build_arg), False)
    pushed: list[dict[str, Any]] = []
    with err_console().status("[cyan]pushing images"):
        for b in built:
            pushed.append(
                {
                    "name": b.name,
                    "reference": images.push(b, registry),
                    "aliases": images.aliases_for(images.get(b.name)),
                }
            )
    if sign:
        _sign_pushed(built, pushed, registry, _cluster(name, state_dir).state_dir)
    if output is not OutputFormat.TEXT:
        emit(pushed, output)
        return
    for p in pushed:
        console().print(f"[green]✓[/] {p['reference']}")
        for alias in p["aliases"]:
            console().print(f"    also as {alias}")
        if "signed" in p:
            s = p["signed"]
            console().print(
                f"    signed, SBOM attested ({s['sbomPackages']} packages); "
                f"verify with --key {s['publicKey']}"
            )


def _sign_pushed(
    built: list[BuiltImage], pushed: list[dict[str, Any]], registry: str, state: Path
) -> None:
    """Sign and attest each pushed image in every repository it was pushed to."""
    from ciliumctl.devcluster import images, signing

    with err_console().status("[cyan]signing images"):
        for b, p in zip(built, pushed, strict=True):
            also = images.alias_references(b, registry)
            done = signing.sign_image(p["reference"], state, layout=b.layout, also=also)
            p["signed"] = done.to_json()


@images_app.command("list")
def images_list(output: OutputOpt = OutputFormat.TEXT) -> None:
    """List the image recipes, their upstream aliases and the last build of each."""
    from ciliumctl.devcluster import images

    rows: list[dict[str, Any]] = []
    for name in images.names():
        recipe = images.get(name)
        last = images.cached(name)
        rows.append(
            {
                "name": name,
                "repository": recipe.repository,
                "tag": recipe.tag,
                "base": "debian:" + images.DEBIAN_SUITE
                if recipe.packages is not None
                else "scratch",
                "packages": list(recipe.debian_packages),
                "buildArgs": list(recipe.build_args()),
                "aliases": images.aliases_for(recipe),
                "description": recipe.description,
                "built": last.to_json() if last else None,
            }
        )
    if output is not OutputFormat.TEXT:
        emit(rows, output)
        return
    from rich.table import Table

    table = Table(title="dev cluster images")
    for col in ("image", "base", "built digest", "size", "stands in for"):
        table.add_column(col)
    for row in rows:
        built = row["built"]
        table.add_row(
            f"{row['repository']}:{row['tag']}",
            str(row["base"]),
            str(built["digest"])[:19] if built else "-",
            f"{built['size'] / 1e6:.1f} MB" if built else "-",
            "\n".join(row["aliases"]) or "-",
        )
    console().print(table)
