"""`cilium config view|set|delete`."""

from __future__ import annotations

from typing import Annotated

import typer

from ciliumctl.cli import common, nodeconfig
from ciliumctl.cli.context import SETTINGS
from ciliumctl.cli.output import OutputFormat, ProgressReporter, console, emit, err_console

app = typer.Typer(
    help="Manage Cilium's agent configuration (the cilium-config ConfigMap).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(nodeconfig.app, name="node")

RestartOpt = Annotated[
    bool,
    typer.Option(
        "-r", "--restart/--no-restart", help="Restart agent pods batch by batch (default on)."
    ),
]


def _restart(restart: bool, wait_duration: str) -> None:
    from ciliumctl.config import config as domain

    if not restart:
        err_console().print(
            "agents not restarted: the change applies when they restart", markup=False
        )
        return
    seconds = common.parse_duration(wait_duration)
    with err_console().status("[cyan]restarting agents") as status:
        count = domain.restart_agents(
            SETTINGS.client(),
            SETTINGS.namespace,
            timeout=seconds,
            progress=ProgressReporter(status),
        )
    console().print(f"[green]✓[/] restarted {count} agent pod(s)")


@app.command()
def view(
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="text, json or yaml")
    ] = OutputFormat.TEXT,
) -> None:
    """Show the agent options."""
    from ciliumctl.config import config as domain

    data = domain.view(SETTINGS.client(), SETTINGS.namespace)
    if output is not OutputFormat.TEXT:
        emit(data, output)
        return
    width = max((len(k) for k in data), default=0)
    for key, value in data.items():
        print(f"{key:<{width}}  {value}")


@app.command("set")
def set_(
    options: Annotated[list[str], typer.Argument(help="KEY=VALUE... (or KEY VALUE)")],
    restart: RestartOpt = True,
    wait_duration: common.WaitDurationOpt = "5m0s",
) -> None:
    """Set agent options and restart the agents."""
    from ciliumctl.config import config as domain

    pairs = domain.parse_pairs(options)
    before = domain.set_options(SETTINGS.client(), SETTINGS.namespace, pairs)
    for key, value in pairs.items():
        console().print(f"✓ {key}: {before[key] or '(unset)'} -> {value}", markup=False)
    _restart(restart, wait_duration)


@app.command()
def delete(
    keys: Annotated[list[str], typer.Argument(help="Keys to delete.")],
    restart: RestartOpt = True,
    wait_duration: common.WaitDurationOpt = "5m0s",
) -> None:
    """Delete agent options and restart the agents."""
    from ciliumctl.config import config as domain

    for key in domain.delete_options(SETTINGS.client(), SETTINGS.namespace, keys):
        console().print(f"✓ deleted {key}", markup=False)
    _restart(restart, wait_duration)
