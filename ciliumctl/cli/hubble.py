"""`cilium hubble enable|disable`: a Helm upgrade of the hubble values."""

from __future__ import annotations

from typing import Annotated

import typer

from ciliumctl.cli import common
from ciliumctl.cli.context import SETTINGS
from ciliumctl.cli.output import ProgressReporter, console, err_console

app = typer.Typer(
    help="Enable or disable Hubble observability.", no_args_is_help=True, rich_markup_mode=None
)


def _apply(values: dict[str, object], wait: bool, wait_duration: str) -> None:
    from ciliumctl.install import install as domain

    seconds = common.parse_duration(wait_duration)
    target = common.target(None)
    client, helm = SETTINGS.client(), common.helm()
    with err_console().status("[cyan]updating Hubble") as status:
        outcome = domain.reconfigure(
            client,
            helm,
            target,
            values,
            wait=wait,
            wait_duration=seconds,
            progress=ProgressReporter(status),
        )
    common.show_findings(outcome.findings)
    console().print(
        f"[green]✓[/] Hubble {'enabled' if values['hubble'] else 'updated'} "
        f"(revision {outcome.revision})"
    )


@app.command()
def enable(
    relay: Annotated[bool, typer.Option("--relay/--no-relay", help="Deploy Hubble Relay.")] = True,
    ui: Annotated[bool, typer.Option("--ui", help="Deploy the Hubble UI.")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for readiness.")] = True,
    wait_duration: common.WaitDurationOpt = "5m0s",
) -> None:
    """Enable Hubble (and Relay, and optionally the UI)."""
    _apply(
        {"hubble": {"enabled": True, "relay": {"enabled": relay or ui}, "ui": {"enabled": ui}}},
        wait,
        wait_duration,
    )


@app.command()
def disable(
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for readiness.")] = True,
    wait_duration: common.WaitDurationOpt = "5m0s",
) -> None:
    """Disable Hubble, Relay and the UI."""
    from ciliumctl.install import install as domain

    seconds = common.parse_duration(wait_duration)
    target = common.target(None)
    with err_console().status("[cyan]disabling Hubble") as status:
        outcome = domain.reconfigure(
            SETTINGS.client(),
            common.helm(),
            target,
            {"hubble": {"enabled": False, "relay": {"enabled": False}, "ui": {"enabled": False}}},
            wait=wait,
            wait_duration=seconds,
            progress=ProgressReporter(status),
        )
    console().print(f"[green]✓[/] Hubble disabled (revision {outcome.revision})")
