"""`cilium install`, `cilium upgrade` and `cilium uninstall`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ciliumctl.cli import common
from ciliumctl.cli.context import SETTINGS
from ciliumctl.cli.output import ProgressReporter, console, emit, err_console

if TYPE_CHECKING:
    from ciliumctl.install.install import Outcome


def _show(outcome: Outcome) -> None:
    common.show_findings(outcome.findings)
    for note in outcome.notes:
        err_console().print(f"note: {note}", markup=False)
    if outcome.manifests is not None:
        sys.stdout.write(outcome.manifests)
    elif outcome.values is not None:
        import yaml

        sys.stdout.write(yaml.safe_dump(outcome.values, sort_keys=False))


def install(
    version: Annotated[
        str | None, typer.Option("--version", help="Cilium version to install.")
    ] = None,
    values: common.ValuesOpt = None,
    set_: common.SetOpt = None,
    set_string: common.SetStringOpt = None,
    set_file: common.SetFileOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the manifests; change nothing.")
    ] = False,
    dry_run_helm_values: common.DryRunHelmValuesOpt = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for Cilium to be ready.")] = False,
    wait_duration: common.WaitDurationOpt = "5m0s",
    chart_directory: common.ChartDirOpt = None,
    repository: common.RepositoryOpt = None,
    datapath_mode: Annotated[
        str | None,
        typer.Option("--datapath-mode", help="tunnel, native, aws-eni, gke, azure or aks-byocni."),
    ] = None,
    list_versions: Annotated[
        bool, typer.Option("--list-versions", help="List the Cilium versions this chart installs.")
    ] = False,
    verify_images: common.VerifyImagesOpt = False,
    verify_key: common.VerifyKeyOpt = None,
    trust_root: common.TrustRootOpt = None,
    verify_insecure: common.VerifyInsecureOpt = False,
) -> None:
    """Install Cilium in a Kubernetes cluster using Helm."""
    from ciliumctl.install import install as domain
    from ciliumctl.install import releases

    if list_versions:
        default = releases.default_version()
        for v in releases.supported():
            print(f"v{v}" + (" (default)" if v == default else ""))
        return
    seconds = common.parse_duration(wait_duration)
    check = common.image_check(verify_images, verify_key, trust_root, verify_insecure)
    user = common.user_values(values, set_, set_string, set_file)
    target = common.target(chart_directory, repository, version)
    domain.precheck(user, target.chart, version)
    client = SETTINGS.client()
    with err_console().status("[cyan]installing") as status:
        outcome = domain.install(
            client,
            common.helm(),
            target,
            user,
            version=version,
            datapath_mode=datapath_mode,
            dry_run=dry_run,
            dry_run_helm_values=dry_run_helm_values,
            wait=wait,
            wait_duration=seconds,
            progress=ProgressReporter(status),
            image_check=check,
        )
    _show(outcome)
    if outcome.action == "unchanged":
        console().print(
            f"[green]✓[/] Cilium {outcome.version} is already installed with these "
            f"values (revision {outcome.revision})"
        )
    if outcome.action == "install":
        console().print(
            f"[green]✓[/] Cilium {outcome.version} installed (Helm release "
            f"{target.release} in {target.namespace}, revision {outcome.revision})"
            + (" and ready" if wait else "")
        )


def upgrade(
    version: Annotated[
        str | None, typer.Option("--version", help="Cilium version to upgrade to.")
    ] = None,
    values: common.ValuesOpt = None,
    set_: common.SetOpt = None,
    set_string: common.SetStringOpt = None,
    set_file: common.SetFileOpt = None,
    reset_values: Annotated[
        bool,
        typer.Option(
            "--reset-values", help="Start from the chart's defaults; drop earlier values."
        ),
    ] = False,
    reuse_values: Annotated[
        bool, typer.Option("--reuse-values", help="Reuse the release's values as Helm merges them.")
    ] = False,
    reset_then_reuse_values: Annotated[
        bool,
        typer.Option(
            "--reset-then-reuse-values",
            help="Chart defaults + the release's values + new values (default).",
        ),
    ] = True,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print a per-object diff of the upgrade; change nothing."),
    ] = False,
    dry_run_helm_values: common.DryRunHelmValuesOpt = False,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for readiness; roll back when it fails.")
    ] = True,
    wait_duration: common.WaitDurationOpt = "5m0s",
    restart: Annotated[
        bool, typer.Option("--restart", help="Restart the agents after the upgrade.")
    ] = False,
    force_version: Annotated[
        bool,
        typer.Option(
            "--force-version", help="Allow upgrade paths the upgrade guide calls untested."
        ),
    ] = False,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Roll back to the previous Helm revision instead.")
    ] = False,
    chart_directory: common.ChartDirOpt = None,
    repository: common.RepositoryOpt = None,
    verify_images: common.VerifyImagesOpt = False,
    verify_key: common.VerifyKeyOpt = None,
    trust_root: common.TrustRootOpt = None,
    verify_insecure: common.VerifyInsecureOpt = False,
) -> None:
    """Upgrade Cilium in a Kubernetes cluster using Helm."""
    from ciliumctl.errors import UsageError
    from ciliumctl.install import install as domain

    if reset_values and reuse_values:
        raise UsageError(
            "--reset-values and --reuse-values exclude each other", "pass only one of them"
        )
    mode = "reset" if reset_values else "reuse" if reuse_values else "reset-then-reuse"
    check = common.image_check(verify_images, verify_key, trust_root, verify_insecure)
    seconds = common.parse_duration(wait_duration)
    user = common.user_values(values, set_, set_string, set_file)
    target = common.target(chart_directory, repository, version)
    domain.precheck(user, target.chart, version)
    client = SETTINGS.client()
    helm = common.helm()
    with err_console().status("[cyan]upgrading") as status:
        if rollback:
            revision = domain.rollback(
                helm,
                client,
                target,
                wait=wait,
                wait_duration=seconds,
                progress=ProgressReporter(status),
            )
            console().print(f"[green]✓[/] rolled back to revision {revision}")
            return
        outcome = domain.upgrade(
            client,
            helm,
            target,
            user,
            version=version,
            values_mode=mode,
            force_version=force_version,
            dry_run=dry_run,
            dry_run_helm_values=dry_run_helm_values,
            wait=wait,
            wait_duration=seconds,
            restart=restart,
            progress=ProgressReporter(status),
            image_check=check,
        )
    _show(outcome)
    if outcome.action == "upgrade":
        console().print(
            f"[green]✓[/] Cilium upgraded to {outcome.version} (revision "
            f"{outcome.revision})" + (" and ready" if wait else "")
        )


def uninstall(
    wait: Annotated[bool, typer.Option("--wait", help="Wait for removal.")] = False,
    purge: Annotated[
        bool,
        typer.Option("--purge", help="Also delete Cilium's CRDs and all their custom resources."),
    ] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="Maximum wait.")] = "5m0s",
    output: Annotated[str, typer.Option("-o", "--output", help="text or json")] = "text",
) -> None:
    """Uninstall Cilium (CRDs and custom resources stay unless --purge)."""
    from ciliumctl.cli.output import OutputFormat
    from ciliumctl.install import install as domain

    seconds = common.parse_duration(timeout, "--timeout")
    target = common.target(None)
    with err_console().status("[cyan]uninstalling") as status:
        removed = domain.uninstall(
            SETTINGS.client(),
            common.helm(),
            target,
            wait=wait,
            purge=purge,
            timeout=seconds,
            progress=ProgressReporter(status),
        )
    if output == "json":
        emit(removed, OutputFormat.JSON)
        return
    for what, names in removed.items():
        for name in names:
            console().print(f"[green]✓[/] deleted {domain.REMOVED_KINDS[what]} {name}")
