"""`cilium status`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ciliumctl.cli import common
from ciliumctl.cli.context import SETTINGS
from ciliumctl.cli.output import OutputFormat, console, emit, err_console

if TYPE_CHECKING:
    from ciliumctl.status.status import CiliumStatus

_STATE_STYLE = {"OK": "green", "disabled": "dim", "warning": "yellow", "error": "red"}


def status(
    wait: Annotated[bool, typer.Option("--wait", help="Wait for status to be OK.")] = False,
    wait_duration: common.WaitDurationOpt = "5m0s",
    ignore_warnings: Annotated[
        bool, typer.Option("--ignore-warnings", help="Ignore warnings when waiting.")
    ] = False,
    output: Annotated[str, typer.Option("-o", "--output", help="summary or json")] = "summary",
) -> None:
    """Display the status of Cilium. Exit 1 on errors."""
    from ciliumctl.errors import UsageError
    from ciliumctl.status import status as domain

    if output not in ("summary", "json"):
        raise UsageError(f"invalid --output {output!r}", "use summary or json")
    seconds = common.parse_duration(wait_duration)
    client = SETTINGS.client()
    if wait:
        with err_console().status("[cyan]waiting for Cilium") as spinner:
            result = domain.wait(
                client,
                SETTINGS.namespace,
                SETTINGS.helm_release_name,
                timeout=seconds,
                ignore_warnings=ignore_warnings,
                on_poll=lambda s: spinner.update(
                    f"[cyan]waiting: {len(s.errors)} errors, {len(s.warnings)} warnings"
                ),
            )
    else:
        result = domain.collect(client, SETTINGS.namespace, SETTINGS.helm_release_name)
    if output == "json":
        emit(result.as_dict(), OutputFormat.JSON)
    else:
        _summary(result)
    if not result.ok:
        raise typer.Exit(1)


def _summary(result: CiliumStatus) -> None:
    from rich.table import Table

    out = console()
    head = Table.grid(padding=(0, 2))
    for comp in result.components:
        style = _STATE_STYLE.get(comp.state, "")
        head.add_row(f"{comp.name}:", f"[{style}]{comp.state}[/]")
    out.print(head)
    out.print()
    grid = Table.grid(padding=(0, 2))
    for comp in result.components:
        if comp.state == "disabled":
            continue
        grid.add_row(
            comp.kind,
            comp.name,
            f"Desired: {comp.desired}, Ready: {comp.ready}/{comp.desired}, "
            f"Available: {comp.available}/{comp.desired}, "
            f"Updated: {comp.updated}/{comp.desired}",
        )
    first = True
    for comp in result.components:
        if comp.pods:
            phases = ", ".join(f"{p}: {n}" for p, n in sorted(comp.pods.items()))
            grid.add_row("Containers:" if first else "", comp.name, phases)
            first = False
    grid.add_row(
        "Cluster Pods:", f"{result.managed_pods}/{result.cluster_pods} managed by Cilium", ""
    )
    grid.add_row("Helm chart version:", result.helm_chart_version or "unknown", "")
    first = True
    for comp in result.components:
        for image, count in sorted(comp.images.items()):
            grid.add_row("Image versions" if first else "", comp.name, f"{image}: {count}")
            first = False
    out.print(grid)
    for title, items, style in (
        ("Errors", result.errors, "red"),
        ("Warnings", result.warnings, "yellow"),
    ):
        if items:
            out.print(f"[{style}]{title}:[/]")
            for item in items:
                out.print(f"  {item}", markup=False)
