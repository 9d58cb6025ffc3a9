"""`cilium hubble enable|disable`: a Helm upgrade of the hubble values."""

from __future__ import annotations

import sys
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


@app.command("port-forward")
def port_forward(
    local_port: Annotated[
        int,
        typer.Option(
            "--port-forward",
            "--local-port",
            min=1,
            max=65535,
            help="Local port (on 127.0.0.1) to forward to Hubble Relay.",
        ),
    ] = 4245,
) -> None:
    """Forward a local port to Hubble Relay through the API server, until interrupted."""
    import threading

    from ciliumctl.k8s import portforward
    from ciliumctl.status.hubble import relay_backend

    client = SETTINGS.client()
    namespace = SETTINGS.namespace
    backend = relay_backend(client, namespace)
    server = portforward.listen(local_port)
    stop = threading.Event()
    console().print(
        f"Forwarding from {portforward.LOCAL_ADDRESS}:{local_port} -> "
        f"pod {namespace}/{backend.pod} port {backend.port} (Service hubble-relay port "
        f"{backend.service_port}); interrupt to stop",
        markup=False,
    )
    sys.stdout.flush()

    def report(message: str) -> None:
        err_console().print(f"port-forward: {message}", markup=False)

    try:
        portforward.serve(client, server, namespace, backend.pod, backend.port, stop, report)
    except KeyboardInterrupt:
        stop.set()
        console().print("port-forward stopped", markup=False)
