"""`cilium preflight`: checks to run before installing or upgrading Cilium."""

from __future__ import annotations

from typing import Annotated

import typer

from ciliumctl.cli import validate

app = typer.Typer(
    name="preflight",
    help="Checks to run before installing or upgrading Cilium.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

app.command("system")(validate.system)


@app.command("check")
def check(
    version: Annotated[
        str | None, typer.Option("--version", help="Cilium version you plan to upgrade to.")
    ] = None,
    wait_duration: Annotated[
        str, typer.Option("--wait-duration", help="Maximum time to wait for the pre-flight pods.")
    ] = "5m0s",
    output: Annotated[str, typer.Option("-o", "--output", help="text or json")] = "text",
) -> None:
    """Run the pre-flight check before an upgrade.

    Deploys the pre-flight DaemonSet (pulls the new image on every node) and the CNP
    validator, validates every policy and the release's values for the target version, and
    prints one verdict. Remove the objects with `cilium preflight cleanup`. Exit 1 when the
    cluster is not ready for the upgrade.
    """
    from ciliumctl.cli import common
    from ciliumctl.cli.context import SETTINGS
    from ciliumctl.cli.output import OutputFormat, ProgressReporter, console, emit, err_console
    from ciliumctl.preflight import check as domain

    seconds = common.parse_duration(wait_duration)
    with err_console().status("[cyan]pre-flight check") as status:
        verdict = domain.check(
            SETTINGS.client(),
            common.helm(),
            common.target(None),
            version=version,
            timeout=seconds,
            progress=ProgressReporter(status),
        )
    if output == "json":
        emit(
            {
                "version": verdict.version,
                "ok": verdict.ok,
                "ready": verdict.ready,
                "problems": verdict.problems,
                "warnings": verdict.warnings,
                "policiesChecked": verdict.policies_checked,
                "applied": verdict.applied,
            },
            OutputFormat.JSON,
        )
    else:
        for warning in verdict.warnings:
            console().print(f"warning: {warning}", markup=False)
        for problem in verdict.problems:
            console().print(f"problem: {problem}", markup=False)
        if verdict.ok:
            console().print(
                f"[green]✓[/] ready to upgrade to Cilium {verdict.version} "
                f"({verdict.policies_checked} policies checked); run `cilium "
                "preflight cleanup` next"
            )
        else:
            console().print(
                f"[red]✗[/] not ready to upgrade to Cilium {verdict.version}: "
                f"{len(verdict.problems)} problem(s) above"
            )
    if not verdict.ok:
        raise typer.Exit(1)


@app.command("cleanup")
def cleanup() -> None:
    """Remove the objects created by `cilium preflight check`."""
    from ciliumctl.cli.context import SETTINGS
    from ciliumctl.cli.output import console
    from ciliumctl.preflight import check as domain

    deleted = domain.cleanup(SETTINGS.client(), SETTINGS.namespace)
    for name in deleted:
        console().print(f"✓ deleted {name}", markup=False)
    if not deleted:
        console().print("nothing to clean up", markup=False)
