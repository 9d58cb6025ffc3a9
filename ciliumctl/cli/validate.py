"""`cilium validate`: offline checks of policies, identity labels and this machine."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ciliumctl.cli import common
from ciliumctl.cli.context import SETTINGS
from ciliumctl.cli.output import OutputFormat, console, emit

if TYPE_CHECKING:
    from ciliumctl.validators.findings import Finding, Report
    from ciliumctl.validators.labels import LabelsResult
    from ciliumctl.validators.system import SystemReport

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


@app.command("labels")
def labels(
    patterns: Annotated[
        list[str] | None,
        typer.Argument(help="Label patterns, e.g. 'k8s:app' '!controller-uid'."),
    ] = None,
    labels_value: Annotated[
        str | None,
        typer.Option("--labels", help="Space-separated patterns, as in cilium-config 'labels'."),
    ] = None,
    from_cluster: Annotated[
        bool,
        typer.Option(
            "--from-cluster",
            help="Count the identities of today's pods (patterns from --labels or cilium-config).",
        ),
    ] = False,
    output: OutputOption = OutputFormat.TEXT,
    warnings_as_errors: WarningsOption = False,
) -> None:
    """Validate identity-relevant label patterns.

    Parses the patterns as the Cilium agent does (defaults, '!' exclusions, source
    prefixes, regexes anchored at the start of the key). With --from-cluster it computes
    the security identities today's pods get with these patterns and with the defaults,
    shows which label keys multiply identities, and warns near the 65,535 limit.
    """
    from ciliumctl.errors import UsageError
    from ciliumctl.validators import labels as label_validator

    if patterns and labels_value is not None:
        raise UsageError("pass patterns as arguments or with --labels, not both")
    given = " ".join(patterns) if patterns else labels_value
    if from_cluster:
        result = label_validator.analyse_cluster(SETTINGS.client(), SETTINGS.namespace, given)
    elif given is not None:
        result = label_validator.validate_patterns(label_validator.split_config(given))
    else:
        raise UsageError(
            "no label patterns to validate",
            "pass patterns, --labels '<patterns>', or --from-cluster",
        )
    if output is not OutputFormat.TEXT:
        emit(result.to_dict(), output)
    else:
        _print_labels(result)
    if result.failed(warnings_as_errors):
        raise typer.Exit(1)


def _print_labels(result: LabelsResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ciliumctl.validators.findings import Severity, format_path
    from ciliumctl.validators.labels import IDENTITY_LIMIT

    out = console()
    out.print(f"Label patterns from {escape(result.source)}:")
    table = Table(box=None, pad_edge=False)
    for column in ("PATTERN", "TYPE", "ORIGIN"):
        table.add_column(column)
    for pattern in result.filter.patterns:
        table.add_row(
            escape(pattern.text), "exclude" if pattern.exclude else "include", pattern.origin
        )
    out.print(table)
    if result.filter.allow_list:
        out.print("Allow-list mode: only labels matching an inclusive pattern count.")
    for count, title in ((result.configured, "configured"), (result.defaults, "defaults")):
        if count is None:
            continue
        out.print(
            f"Identities with the {title} patterns: [bold]{count.identities}[/] for "
            f"{count.pods} pods ({count.identities / IDENTITY_LIMIT:.2%} of {IDENTITY_LIMIT})"
        )
    if result.configured is not None and result.configured.impacts:
        table = Table(title="Label keys that multiply identities", box=None, pad_edge=False)
        for column in ("KEY", "EXTRA IDENTITIES", "VALUES", "PODS", "KIND", "EXCLUDE WITH"):
            table.add_column(column)
        for impact in result.configured.impacts[:20]:
            data = impact.to_dict()
            table.add_row(
                escape(impact.key),
                str(impact.identities_saved),
                str(impact.distinct_values),
                str(impact.pods),
                impact.kind,
                escape(str(data["suggestedPattern"])),
            )
        out.print(table)
    colours = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.NOTE: "cyan"}
    for finding in result.findings:
        where = f"{format_path(finding.path)}: " if finding.path else ""
        colour = colours[finding.severity]
        out.print(
            f"[bold {colour}]{finding.severity.value}[/]: {escape(where + finding.message)}"
            f" [dim]\\[{finding.rule}][/]"
        )
        if finding.severity is not Severity.NOTE:
            out.print(f"    [green]fix:[/] {escape(finding.fix)}")


@app.command("system")
def system(
    native: Annotated[
        bool,
        typer.Option(
            "--native", help="The agent runs natively (not in its image): clang/LLVM required."
        ),
    ] = False,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Check this machine against Cilium's system requirements.

    Architecture, kernel version and configuration, the BPF filesystem, eBPF program and
    map types (really loaded into this kernel), clang/LLVM and the local ports Cilium
    needs. Exit code 1 when any check FAILs.
    """
    from ciliumctl.validators.system import run_checks

    report = run_checks(native=native)
    if output is not OutputFormat.TEXT:
        emit(report.to_dict(), output)
    else:
        _print_system(report)
    if report.failed():
        raise typer.Exit(1)


def _print_system(report: SystemReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ciliumctl.validators.system import Status

    colours = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "red"}
    table = Table(box=None, pad_edge=False)
    for column in ("GROUP", "CHECK", "STATUS", "DETAIL", "IMPACT"):
        table.add_column(column, overflow="fold")
    for check in report.checks:
        impact = check.impact + (f" (fix: {check.fix})" if check.fix else "")
        table.add_row(
            escape(check.group),
            escape(check.name),
            f"[bold {colours[check.status]}]{check.status.value}[/]",
            escape(check.detail),
            escape(impact),
        )
    out = console()
    out.print(table)
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in Status)
    out.print(f"[bold]{counts}[/]")


@app.command("values")
def values(
    values_files: common.ValuesOpt = None,
    set_: common.SetOpt = None,
    set_string: common.SetStringOpt = None,
    to_version: Annotated[
        str | None,
        typer.Option(
            "--to-version", help="Cilium version the values are for (default: the chart's)."
        ),
    ] = None,
    from_version: Annotated[
        str | None,
        typer.Option(
            "--from-version", help="Cilium version upgraded from (reports changed defaults)."
        ),
    ] = None,
    output: OutputOption = OutputFormat.TEXT,
    warnings_as_errors: WarningsOption = False,
) -> None:
    """Validate Helm values for a Cilium version.

    Unknown keys (with the closest valid key), keys removed in the target version (with the
    replacement), deprecated keys, upstream keys this chart ignores, and defaults that
    change for this configuration when upgrading from --from-version. Exit code 1 on errors.
    """
    from ciliumctl.helm.values import merge
    from ciliumctl.install import releases
    from ciliumctl.install.install import chart_defaults, unmodelled_defaults, unmodelled_keys
    from ciliumctl.validators.values import check_values

    user = common.user_values(values_files, set_, set_string, None)
    target = releases.check_supported(to_version or releases.default_version())
    source = releases.check_supported(from_version) if from_version else None
    chart = common.target(None).chart
    defaults = chart_defaults(chart)
    findings = check_values(
        user,
        defaults,
        target_version=target,
        from_version=source,
        unmodelled=unmodelled_keys(chart),
        unmodelled_defaults=unmodelled_defaults(chart),
        effective=merge(defaults, user),
    )
    if output is not OutputFormat.TEXT:
        emit(
            {
                "targetVersion": target,
                "fromVersion": source,
                "findings": [f.as_dict() for f in findings],
            },
            output,
        )
    elif not findings:
        console().print(f"[green]✓[/] values are valid for Cilium {target}")
    else:
        for finding in findings:
            colour = {"error": "red", "warning": "yellow"}.get(finding.severity, "cyan")
            fix = f"\n    fix: {finding.fix}" if finding.fix else ""
            console().print(
                f"[{colour}]{finding.severity}[/] {finding.key}: {finding.message}{fix}",
                highlight=False,
            )
    bad = {"error", "warning"} if warnings_as_errors else {"error"}
    if any(f.severity in bad for f in findings):
        raise typer.Exit(1)
