"""`cilium validate`: offline checks of policies, identity labels and this machine."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ciliumctl.cli.context import SETTINGS
from ciliumctl.cli.output import OutputFormat, console, emit

if TYPE_CHECKING:
    from ciliumctl.validators.findings import Finding, Report

app = typer.Typer(
    name="validate",
    help="Validate policies, identity-relevant labels and system requirements.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

OutputOption = Annotated[
    OutputFormat, typer.Option("-o", "--output", help="Output format: text, json or yaml.")
]
WarningsOption = Annotated[
    bool,
    typer.Option("--warnings-as-errors", help="Exit 1 on warnings too, not only on errors."),
]


@app.command("cnp")
def cnp(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Policy files or directories; '-' reads standard input."),
    ] = None,
    from_cluster: Annotated[
        bool,
        typer.Option("--from-cluster", help="Validate every CNP and CCNP in the cluster."),
    ] = False,
    target_version: Annotated[
        str | None,
        typer.Option(
            "--target-version", help="Cilium version the policies must work with (default 1.18)."
        ),
    ] = None,
    output: OutputOption = OutputFormat.TEXT,
    warnings_as_errors: WarningsOption = False,
) -> None:
    """Validate CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy objects.

    Checks each object against the CRD schema and the rules the Cilium agent applies
    (L7 rule placement, DNS rules, CIDRs, ports, regexes, selectors). Every finding names
    the file, document, line, JSON path and the fix. Exit code 1 on errors (or warnings
    with --warnings-as-errors), 2 on usage errors.
    """
    from ciliumctl.errors import UsageError
    from ciliumctl.validators import cnp as cnp_validator

    target = cnp_validator.parse_target(target_version)
    if from_cluster and paths:
        raise UsageError("pass policy files or --from-cluster, not both", "choose one source")
    if from_cluster:
        report = cnp_validator.validate_cluster(SETTINGS.client(), target)
    elif paths:
        stdin_text = sys.stdin.read() if cnp_validator.STDIN in paths else None
        report = cnp_validator.validate_paths(list(paths), target, stdin_text)
    else:
        raise UsageError(
            "no policies to validate",
            "pass files or directories, '-' for standard input, or --from-cluster",
        )
    if output is not OutputFormat.TEXT:
        emit(report.to_dict(), output)
    else:
        _print_report(report)
    if report.failed(warnings_as_errors):
        raise typer.Exit(1)


def _print_report(report: Report) -> None:
    from rich.markup import escape

    from ciliumctl.validators.findings import Severity

    out = console()
    colours = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.NOTE: "cyan"}
    for finding in report.sorted():
        colour = colours[finding.severity]
        out.print(
            f"{escape(_where(finding))}: [bold {colour}]{finding.severity.value}[/]: "
            f"{escape(_subject(finding))}{escape(finding.message)} [dim]\\[{finding.rule}][/]"
        )
        if finding.severity is not Severity.NOTE:
            out.print(f"    [green]fix:[/] {escape(finding.fix)}")
    errors, warnings = report.count(Severity.ERROR), report.count(Severity.WARNING)
    summary = (
        f"{report.documents} document(s), {report.policies} polic"
        f"{'y' if report.policies == 1 else 'ies'}: {errors} error(s), {warnings} warning(s)"
    )
    style = "red" if errors else ("yellow" if warnings else "green")
    out.print(f"[bold {style}]{escape(summary)}[/]")


def _where(finding: Finding) -> str:
    where = finding.file or "-"
    if finding.line is not None:
        where += f":{finding.line}"
    if finding.document is not None:
        where += f" (document {finding.document})"
    return where


def _subject(finding: Finding) -> str:
    from ciliumctl.validators.findings import format_path

    parts = []
    if finding.kind and finding.name:
        name = f"{finding.namespace}/{finding.name}" if finding.namespace else finding.name
        parts.append(f"{finding.kind} {name}")
    if finding.path:
        parts.append(format_path(finding.path))
    return (" ".join(parts) + ": ") if parts else ""
