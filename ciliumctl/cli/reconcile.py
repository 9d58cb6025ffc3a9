"""`cilium reconcile diff|apply|watch|export`: keep Cilium as a directory in git says."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ciliumctl.cli import common
from ciliumctl.cli.context import SETTINGS
from ciliumctl.cli.output import OutputFormat, ProgressReporter, console, emit, err_console

if TYPE_CHECKING:
    from ciliumctl.helm import Helm
    from ciliumctl.k8s import Client
    from ciliumctl.reconcile.plan import Plan
    from ciliumctl.reconcile.source import DesiredState

app = typer.Typer(
    name="reconcile",
    help="Reconcile Cilium (version, values, node configs, policies) from a directory.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

SourceOpt = Annotated[
    Path,
    typer.Option(
        "--source", help="Desired-state directory (cilium.yaml, nodeconfigs/, policies/, extra/)."
    ),
]
OutputOpt = Annotated[str, typer.Option("-o", "--output", help="text or json")]

_STYLE = {"created": "green", "changed": "yellow", "deleted": "red", "unchanged": "dim"}


def _truthy(text: str, flag: str) -> bool:
    from ciliumctl.errors import UsageError

    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "t"):
        return True
    if lowered in ("false", "0", "no", "f"):
        return False
    raise UsageError(f"invalid {flag} {text!r}", f"use {flag}=true or {flag}=false")


def _output(output: str) -> OutputFormat:
    from ciliumctl.errors import UsageError

    if output not in ("text", "json"):
        raise UsageError(f"invalid --output {output!r}", "use text or json")
    return OutputFormat(output)


def _load(
    source: Path, chart_directory: Path | None, *, warn: bool = True
) -> tuple[DesiredState, Path]:
    from ciliumctl.reconcile.source import load

    target = common.target(chart_directory)
    state = load(
        source,
        target.chart,
        default_release=SETTINGS.helm_release_name,
        default_namespace=SETTINGS.namespace,
    )
    if warn:
        _warn(state)
    return state, target.chart


def _warn(state: DesiredState) -> None:
    for warning in state.warnings:
        err_console().print(f"warning: {warning}", markup=False, style="yellow")


def _plan(
    source: Path, chart_directory: Path | None, progress: ProgressReporter
) -> tuple[Plan, Client, Helm]:
    """Load (every input error before the cluster is contacted), then compare; the helm
    lookup runs while the kubernetes client is set up."""
    from concurrent.futures import ThreadPoolExecutor

    from ciliumctl.reconcile.plan import compute

    state, chart = _load(source, chart_directory, warn=False)
    with ThreadPoolExecutor(max_workers=1) as pool:
        f_helm = pool.submit(common.helm)
        client = SETTINGS.client()
        helm = f_helm.result()
    plan = compute(client, helm, state, chart, progress=progress)
    _warn(state)
    return plan, client, helm


def _show_plan(plan: Plan) -> None:
    out = console()
    for change in plan.drifted:
        where = f" ({change.origin})" if change.origin else f" ({change.source})"
        out.print(
            f"[{_STYLE[change.action]}]{change.action}[/] {change.key}{where}", highlight=False
        )
        if change.diff:
            sys.stdout.flush()
            out.print(change.diff.rstrip("\n"), markup=False, highlight=False)
    for key, reason in plan.kept:
        err_console().print(f"note: not pruned: {key}: {reason}", markup=False)
    counts = plan.counts()
    out.print(
        ", ".join(f"{n} {action}" for action, n in counts.items())
        + f" ({plan.seconds:.2f}s)"
        + (" - in sync" if plan.in_sync else "")
    )


@app.command("diff")
def diff(
    source: SourceOpt,
    output: OutputOpt = "text",
    chart_directory: common.ChartDirOpt = None,
) -> None:
    """Show how the cluster differs from the desired state.

    Renders the chart at the pinned version with the values, adds node configs, policies
    and extra objects, runs the validators and compares every object through a server-side
    apply dry run. Secret values are masked. Exit codes as `kubectl diff`: 0 in sync,
    1 differences found, 2 on error.
    """
    from ciliumctl.errors import CiliumctlError
    from ciliumctl.reconcile.errors import ReconcileDiffError

    try:
        fmt = _output(output)
        with err_console().status("[cyan]comparing") as status:
            plan, _, _ = _plan(source, chart_directory, ProgressReporter(status))
    except ReconcileDiffError:
        raise
    except CiliumctlError as exc:
        raise ReconcileDiffError(exc.message, exc.hint) from exc
    if fmt is OutputFormat.JSON:
        emit(plan.as_dict(), fmt)
    else:
        _show_plan(plan)
    if not plan.in_sync:
        raise typer.Exit(1)


@app.command("apply")
def apply(
    source: SourceOpt,
    prune: Annotated[
        str,
        typer.Option(
            "--prune",
            is_flag=False,
            flag_value="true",
            help="Delete objects of the previous apply no longer desired (--prune=false: keep).",
        ),
    ] = "true",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the workloads to be healthy.")
    ] = True,
    wait_duration: common.WaitDurationOpt = "5m0s",
    restart_on_config_change: Annotated[
        bool,
        typer.Option(
            "--restart-on-config-change",
            help="Restart the agents (in batches) when cilium-config or a CNC changed.",
        ),
    ] = False,
    output: OutputOpt = "text",
    chart_directory: common.ChartDirOpt = None,
) -> None:
    """Make the cluster match the desired state.

    Staged: CRDs; namespaces, service accounts, RBAC, ConfigMaps; the chart through Helm;
    workloads (then a wait for health); custom resources; prune; the inventory.
    """
    from ciliumctl.reconcile import apply as domain

    fmt = _output(output)
    do_prune = _truthy(prune, "--prune")
    seconds = common.parse_duration(wait_duration)
    with err_console().status("[cyan]reconciling") as status:
        progress = ProgressReporter(status)
        plan, client, helm = _plan(source, chart_directory, progress)
        state = plan.state
        result = domain.apply(
            client,
            helm,
            state,
            common.target(chart_directory).chart,
            plan=plan,
            prune=do_prune,
            dry_run=dry_run,
            wait=wait,
            timeout=seconds,
            restart_on_config_change=restart_on_config_change,
            progress=progress,
        )
    if fmt is OutputFormat.JSON:
        emit(result.as_dict(), fmt)
        return
    if dry_run:
        _show_plan(result.plan)
        console().print("dry run: nothing was changed")
        return
    out = console()
    for change in result.applied:
        out.print(f"[{_STYLE[change.action]}]{change.action}[/] {change.key} (via {change.via})")
    for change in result.pruned:
        out.print(f"[red]pruned[/] {change.key}")
    for note in result.notes:
        err_console().print(f"note: {note}", markup=False)
    if result.helm_action:
        out.print(
            f"Helm {result.helm_action}: release {state.release} revision {result.helm_revision}"
        )
    if result.restarted_agents:
        out.print(f"restarted {result.restarted_agents} agent(s)")
    if not result.applied and not result.pruned:
        out.print(f"[green]✓[/] in sync: {len(result.plan.changes)} objects unchanged")
    else:
        out.print(
            f"[green]✓[/] reconciled: {len(result.applied)} applied, {len(result.pruned)} pruned"
        )


@app.command("watch")
def watch(
    source: SourceOpt,
    interval: Annotated[
        str, typer.Option("--interval", help="Time between syncs (e.g. 60s, 5m).")
    ] = "60s",
    mode: Annotated[
        str, typer.Option("--mode", help="warn: report drift; correct: apply the desired state.")
    ] = "warn",
    git_pull: Annotated[
        bool, typer.Option("--git-pull", help="Run `git pull --ff-only` in --source every sync.")
    ] = False,
    metrics_addr: Annotated[
        str,
        typer.Option("--metrics-addr", help="Serve Prometheus metrics on HOST:PORT ('' for none)."),
    ] = "127.0.0.1:9097",
    prune: Annotated[
        str,
        typer.Option("--prune", is_flag=False, flag_value="true", help="Prune in correct mode."),
    ] = "true",
    restart_on_config_change: Annotated[
        bool,
        typer.Option(
            "--restart-on-config-change", help="Restart agents when their config changed."
        ),
    ] = False,
    wait_duration: common.WaitDurationOpt = "5m0s",
    chart_directory: common.ChartDirOpt = None,
) -> None:
    """Reconcile in a loop (warn about or correct drift) until SIGTERM."""
    import signal
    import threading
    from datetime import datetime

    from ciliumctl.reconcile import watch as domain
    from ciliumctl.reconcile.source import load

    options = domain.WatchOptions(
        interval=common.parse_duration(interval, "--interval"),
        mode=mode,
        git_pull=git_pull,
        prune=_truthy(prune, "--prune"),
        restart_on_config_change=restart_on_config_change,
        wait_timeout=common.parse_duration(wait_duration),
    )
    if mode not in domain.MODES:
        from ciliumctl.errors import UsageError

        raise UsageError(f"invalid --mode {mode!r}", "use warn or correct")
    chart = common.target(chart_directory).chart

    def log(message: str) -> None:
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        err_console().print(f"{stamp} {message}", markup=False, highlight=False)

    def desired() -> DesiredState:
        state = load(
            source,
            chart,
            default_release=SETTINGS.helm_release_name,
            default_namespace=SETTINGS.namespace,
        )
        for warning in state.warnings:
            log(f"warning: {warning}")
        return state

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log(f"{signal.Signals(signum).name}: finishing the current step, then stopping")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    metrics = domain.Metrics()
    server = domain.MetricsServer(metrics, metrics_addr).start() if metrics_addr else None
    if server is not None:
        log(f"metrics on http://{server.address}/metrics")
    log(f"watching {source} every {options.interval:g}s in {mode} mode")
    try:
        cycles = domain.run(
            desired, SETTINGS.client(), common.helm(), chart, source, options, stop,
            log=log, metrics=metrics,
        )  # fmt: skip
    finally:
        if server is not None:
            server.stop()
    log(f"stopped after {cycles} sync(s)")


@app.command("export")
def export(
    target: Annotated[str, typer.Argument(help="argocd or flux")],
    source: SourceOpt,
    repo_url: Annotated[
        str | None, typer.Option("--repo-url", help="Git URL of the repository (default: origin).")
    ] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Git revision to follow (default HEAD).")
    ] = None,
    path: Annotated[
        str | None,
        typer.Option("--path", help="Path of --source inside the repository (default: detected)."),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--target-namespace", help="Namespace of the Application/HelmRelease."),
    ] = None,
    chart_directory: common.ChartDirOpt = None,
) -> None:
    """Print the desired state as an Argo CD Application or a Flux HelmRelease."""
    from ciliumctl.errors import UsageError
    from ciliumctl.reconcile import export as domain

    if target not in domain.TARGETS:
        raise UsageError(f"invalid export target {target!r}", "use argocd or flux")
    state, _ = _load(source, chart_directory)
    git = domain.git_source(source, repo_url, revision, path)
    if target == "argocd":
        objects = domain.argocd(state, git, namespace=namespace or "argocd")
    else:
        objects = domain.flux(state, git, namespace=namespace or "flux-system")
    err_console().print(
        "note: values `cilium install` detects (k8sServiceHost/Port, cluster.name) are not "
        "exported; pin them in cilium.yaml",
        markup=False,
    )
    sys.stdout.write(domain.render(target, objects))
