"""`cilium config node ...`: per-node agent configuration (CiliumNodeConfig objects)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ciliumctl.cli.context import SETTINGS
from ciliumctl.cli.output import OutputFormat, console, emit, err_console

app = typer.Typer(
    help="Per-node agent configuration: CiliumNodeConfig objects, effective config, rollouts.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

OutputOpt = Annotated[OutputFormat, typer.Option("-o", "--output", help="text, json or yaml")]
SelectorOpt = Annotated[
    str | None,
    typer.Option(
        "--selector",
        "-l",
        help="Node label selector: key=value[,key=value], also key!=v, 'key in (a,b)', key, !key.",
    ),
]


def _warn(lines: list[str]) -> None:
    for line in lines:
        err_console().print(f"[yellow]warning:[/] {line}", highlight=False, markup=True)


def _selector(text: str | None) -> dict[str, Any] | None:
    from ciliumctl.nodeconfig.selectors import parse_selector

    return parse_selector(text) if text is not None else None


@app.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="CiliumNodeConfig name.")],
    options: Annotated[list[str], typer.Argument(help="KEY=VALUE... agent options to set.")],
    selector: SelectorOpt = None,
    all_nodes: Annotated[
        bool, typer.Option("--all-nodes", help="Select every node (an empty selector).")
    ] = False,
) -> None:
    """Create or update a CiliumNodeConfig (keys are merged into its defaults)."""
    from ciliumctl.errors import UsageError
    from ciliumctl.nodeconfig import crud
    from ciliumctl.nodeconfig.selectors import format_selector

    pairs: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise UsageError(
                f"invalid option {option!r}", "use KEY=VALUE, e.g. enable-ipv4-big-tcp=true"
            )
        pairs[key] = value
    result = crud.set_config(
        SETTINGS.client(),
        SETTINGS.namespace,
        name,
        pairs,
        selector=_selector(selector),
        all_nodes=all_nodes,
    )
    _warn(result.warnings)
    verb = "created" if result.created else "updated"
    console().print(
        f"✓ CiliumNodeConfig {name} {verb}: selects {len(result.nodes)} node(s) "
        f"({format_selector(result.selector)})",
        markup=False,
    )
    for key, (old, new) in result.changes.items():
        console().print(f"  {key}: {old if old is not None else '(unset)'} -> {new}", markup=False)
    console().print(
        "agents pick the change up when restarted: `cilium config node plan`, then "
        "`cilium config node rollout`",
        markup=False,
    )


@app.command("list")
def list_(output: OutputOpt = OutputFormat.TEXT) -> None:
    """List CiliumNodeConfigs with their selectors, keys and selected nodes."""
    from ciliumctl.nodeconfig import crud

    rows = crud.list_configs(SETTINGS.client(), SETTINGS.namespace)
    if output is not OutputFormat.TEXT:
        emit([r.as_dict() for r in rows], output)
        return
    if not rows:
        console().print(f"no CiliumNodeConfig in {SETTINGS.namespace}", markup=False)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "SELECTOR", "NODES", "KEYS"):
        table.add_column(column)
    for row in rows:
        keys = ", ".join(f"{k}={v}" for k, v in sorted(row.defaults.items())) or "(none)"
        table.add_row(row.name, row.selector, str(len(row.nodes)), keys)
    console().print(table)


@app.command()
def get(
    name: Annotated[str, typer.Argument(help="CiliumNodeConfig name.")],
    output: OutputOpt = OutputFormat.YAML,
) -> None:
    """Show one CiliumNodeConfig and the nodes it selects."""
    from ciliumctl.nodeconfig import crud

    obj, nodes = crud.get_config(SETTINGS.client(), SETTINGS.namespace, name)
    meta = obj.get("metadata") or {}
    data = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        "spec": obj.get("spec"),
        "selectedNodes": nodes,
    }
    emit(data, OutputFormat.YAML if output is OutputFormat.TEXT else output)


@app.command()
def delete(name: Annotated[str, typer.Argument(help="CiliumNodeConfig name.")]) -> None:
    """Delete a CiliumNodeConfig (the nodes it selected then need an agent restart)."""
    from ciliumctl.nodeconfig import crud

    nodes = crud.delete_config(SETTINGS.client(), SETTINGS.namespace, name)
    console().print(
        f"✓ deleted CiliumNodeConfig {name}; {len(nodes)} node(s) it selected need an agent "
        "restart (`cilium config node rollout`)",
        markup=False,
    )


@app.command()
def effective(
    node: Annotated[str, typer.Argument(help="Node name.")],
    output: OutputOpt = OutputFormat.TEXT,
    overrides_only: Annotated[
        bool, typer.Option("--overrides-only", help="Only keys not set by cilium-config.")
    ] = False,
) -> None:
    """The configuration NODE's agent runs with after its next restart, key by key."""
    from ciliumctl.nodeconfig import plan

    result, snap = plan.effective(SETTINGS.client(), SETTINGS.namespace, node)
    _warn(snap.notes)
    _warn(result.warnings)
    if output is not OutputFormat.TEXT:
        emit(result.as_dict(), output)
        return
    first = snap.settings.sources[0] if snap.settings.sources else None
    base = str(first) if first else ""
    rows = sorted(result.values.items())
    if overrides_only:
        rows = [(k, s) for k, s in rows if s.source not in (base, "build-config")]
    width = max((len(k) for k, _ in rows), default=0)
    vwidth = min(max((len(s.value) for _, s in rows), default=0), 60)
    for key, setting in rows:
        marker = "*" if setting.source not in (base, "build-config") else " "
        console().print(
            f"{marker} {key:<{width}}  {setting.value:<{vwidth}}  {setting.source}",
            markup=False,
        )
    for item in result.ignored:
        err_console().print(
            f"ignored {item['key']}={item['value']} from {item['source']}: {item['reason']}",
            markup=False,
        )


@app.command()
def plan(output: OutputOpt = OutputFormat.TEXT) -> None:
    """For every node: keys that differ from cilium-config and whether a restart is pending."""
    from ciliumctl.nodeconfig import plan as domain

    result = domain.build_plan(SETTINGS.client(), SETTINGS.namespace)
    _warn(result.notes)
    _warn(result.warnings)
    if output is not OutputFormat.TEXT:
        emit(result.as_dict(), output)
        return
    for group in result.groups:
        title = (
            "as cilium-config" if not group.differences else f"{len(group.differences)} override(s)"
        )
        console().print(
            f"{len(group.nodes)} node(s), {title}: {', '.join(group.nodes)}", markup=False
        )
        for key, diff in group.differences.items():
            before = diff["configmap"] if diff["configmap"] is not None else "(unset)"
            after = diff["effective"] if diff["effective"] is not None else "(unset)"
            console().print(f"    {key}: {before} -> {after}  [{diff['source']}]", markup=False)
        if group.pending:
            console().print(f"  restart pending: {', '.join(group.pending)}", markup=False)
    pending = result.pending
    console().print(
        f"{len(pending)} agent(s) need a restart"
        + (": run `cilium config node rollout`" if pending else ""),
        markup=False,
    )


@app.command()
def rollout(
    selector: SelectorOpt = None,
    max_unavailable: Annotated[
        int | None,
        typer.Option(
            "--max-unavailable", help="Agents restarted at once (default: the DaemonSet's)."
        ),
    ] = None,
    wait_duration: Annotated[
        str, typer.Option("--wait-duration", help="Readiness timeout per batch (e.g. 5m0s).")
    ] = "5m0s",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the agents that would restart.")
    ] = False,
) -> None:
    """Re-create the agent pods whose configuration changed, in batches."""
    from ciliumctl.cli import common
    from ciliumctl.cli.output import ProgressReporter
    from ciliumctl.nodeconfig import rollout as domain

    seconds = common.parse_duration(wait_duration)
    with err_console().status("[cyan]rolling out") as status:
        result = domain.rollout(
            SETTINGS.client(),
            SETTINGS.namespace,
            selector=_selector(selector),
            max_unavailable=max_unavailable,
            timeout=seconds,
            dry_run=dry_run,
            progress=ProgressReporter(status),
        )
    if not result.nodes:
        console().print("✓ every selected agent runs its current configuration", markup=False)
    elif dry_run:
        console().print(
            f"would restart {len(result.nodes)} agent(s): {', '.join(result.nodes)}", markup=False
        )
    else:
        console().print(
            f"✓ restarted {len(result.nodes)} agent(s): {', '.join(result.nodes)}", markup=False
        )


@app.command("migrate-kpr")
def migrate_kpr(
    finish: Annotated[
        bool,
        typer.Option(
            "--finish", help="Make KPR the default, delete kube-proxy, remove the labels."
        ),
    ] = False,
    drain: Annotated[
        bool, typer.Option("--drain", help="Cordon and drain each node while it migrates.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Migrate at most this many nodes in this run.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    wait_duration: Annotated[
        str, typer.Option("--wait-duration", help="Timeout per node (e.g. 5m0s).")
    ] = "5m0s",
) -> None:
    """Roll kube-proxy replacement out node by node (resumable; see the per-node config guide)."""
    from ciliumctl.cli import common
    from ciliumctl.cli.output import ProgressReporter
    from ciliumctl.nodeconfig import migrate

    seconds = common.parse_duration(wait_duration)
    client = SETTINGS.client()
    with err_console().status("[cyan]migrating") as status:
        if finish:
            report = migrate.finish(
                client, SETTINGS.namespace, dry_run=dry_run, progress=ProgressReporter(status)
            )
        else:
            report = migrate.migrate(
                client,
                SETTINGS.namespace,
                drain=drain,
                dry_run=dry_run,
                limit=limit,
                timeout=seconds,
                progress=ProgressReporter(status),
            )
    if dry_run:
        console().print(f"plan (migration {report.phase}):", markup=False)
        for number, step in enumerate(report.steps, 1):
            console().print(f"  {number}. {step}", markup=False)
        return
    if report.steps == [migrate.NOTHING_TO_DO]:
        console().print(f"✓ {migrate.NOTHING_TO_DO}", markup=False)
        return
    if finish:
        console().print(
            "✓ kube-proxy replacement is the default; kube-proxy and the migration labels are gone",
            markup=False,
        )
        return
    console().print(
        f"✓ {len(report.migrated)} node(s) migrated, {len(report.remaining)} to go"
        + ("" if report.remaining else ": run `cilium config node migrate-kpr --finish`"),
        markup=False,
    )
