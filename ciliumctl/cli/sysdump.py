"""`cilium sysdump`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ciliumctl.cli.context import SETTINGS
from ciliumctl.cli.output import console, err_console

if TYPE_CHECKING:
    from ciliumctl.sysdump.collect import SysdumpResult


def sysdump(
    node_list: Annotated[
        str,
        typer.Option(
            "--node-list",
            help="Comma-separated node names or IPs whose pods give logs and command output.",
        ),
    ] = "",
    logs_since_time: Annotated[
        str,
        typer.Option(
            "--logs-since-time",
            help="How far back to collect logs (a duration such as 2h, or an RFC 3339 time).",
        ),
    ] = "8760h",
    logs_limit_bytes: Annotated[
        int,
        typer.Option("--logs-limit-bytes", help="At most this many bytes of log per container."),
    ] = 1073741824,
    worker_count: Annotated[
        int, typer.Option("--worker-count", help="The number of parallel workers.")
    ] = 20,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Objects and status only: no logs, bugtool or agent dumps."),
    ] = False,
    output_filename: Annotated[
        str,
        typer.Option(
            "--output-filename",
            help="Archive name without .zip; '<ts>' is replaced with the timestamp.",
        ),
    ] = "cilium-sysdump-<ts>",
    no_redact: Annotated[
        bool,
        typer.Option(
            "--no-redact",
            help="Archive credentials found in values, ConfigMaps, output and logs as they are.",
        ),
    ] = False,
) -> None:
    """Collect information required to troubleshoot issues with Cilium and Hubble."""
    from ciliumctl import __version__
    from ciliumctl.errors import UsageError
    from ciliumctl.sysdump.collect import Collector, ProgressInfo
    from ciliumctl.sysdump.plan import Options

    if worker_count < 1:
        raise UsageError(f"invalid --worker-count {worker_count}", "use 1 or more")
    if logs_limit_bytes < 1:
        raise UsageError(f"invalid --logs-limit-bytes {logs_limit_bytes}", "use 1 or more")
    options = Options(
        namespace=SETTINGS.namespace,
        release=SETTINGS.helm_release_name,
        node_list=node_list,
        logs_since=_since_seconds(logs_since_time),
        logs_limit_bytes=logs_limit_bytes,
        worker_count=worker_count,
        quick=quick,
        output_filename=output_filename,
        redact=not no_redact,
    )
    if no_redact:
        err_console().print(
            "[yellow]warning:[/] --no-redact: credentials found in Helm values, ConfigMaps, "
            "command output and logs are archived as they are; check the archive before "
            "sharing it (Secret data is never collected)"
        )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    client = SETTINGS.client()
    progress = Progress(
        TextColumn("[cyan]sysdump"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[size]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}", style="dim"),
        console=err_console(),
        transient=True,
    )
    bar = progress.add_task("sysdump", total=None, size="", last="listing nodes")

    def on_progress(info: ProgressInfo) -> None:
        progress.update(
            bar,
            completed=info.done,
            total=info.total,
            size=_size(info.bytes),
            last=info.last[:60],
        )

    def on_warning(message: str) -> None:
        progress.console.print(f"[yellow]warning:[/] {message}", markup=True, highlight=False)

    collector = Collector(
        client,
        options,
        version=__version__,
        on_progress=on_progress,
        on_warning=on_warning,
    )
    with progress:
        result = collector.run()
    _report(result)
    if result.interrupted:
        err_console().print(f"Interrupted: partial archive written to {result.path}")
        raise typer.Exit(130)
    if result.collected_nothing:
        err_console().print(
            f"[red]Error:[/] nothing could be collected; see sysdump.log in {result.path}"
        )
        raise typer.Exit(1)


def _since_seconds(text: str) -> float:
    """``--logs-since-time``: a Go duration (cilium-cli) or an RFC 3339 time (extension)."""
    from datetime import UTC, datetime

    from ciliumctl.cli import common
    from ciliumctl.errors import UsageError

    if "T" in text or text.count("-") >= 2:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise UsageError(
                f"invalid --logs-since-time {text!r}", "use a duration (2h) or RFC 3339 time"
            ) from exc
        if when.tzinfo is None:
            when = when.astimezone()
        return max(0.0, (datetime.now(UTC) - when).total_seconds())
    return common.parse_duration(text, "--logs-since-time")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return f"{n} B"


def _report(result: SysdumpResult) -> None:
    out = console()
    summary = result.summary
    tasks = summary["tasks"]
    health = summary["health"]
    out.print(f"Archive:     {result.path} ({result.entries} entries, {_size(result.bytes)})")
    out.print(f"Kubernetes:  {summary['kubernetes']['version'] or 'unknown'}", markup=False)
    cilium = summary["cilium"]
    out.print(
        f"Cilium:      {cilium.get('version') or 'not found'} ({cilium['agents']} agents)",
        markup=False,
    )
    out.print(f"Nodes:       {summary['nodes']['total']} ({summary['nodes']['selected']} selected)")
    state = {True: "OK", False: "errors"}.get(health["ok"], "unknown")
    out.print(f"Health:      {state}", markup=False)
    for item in health["errors"][:10]:
        out.print(f"  error: {item}", markup=False)
    out.print(
        f"Tasks:       {tasks['ok']} ok, {tasks['failed']} failed, {tasks['skipped']} skipped"
        f" of {tasks['total']} in {summary['duration_seconds']:.1f}s"
    )
    redaction = summary["redaction"]
    out.print(
        "Redaction:   "
        + (f"{redaction['total']} values replaced" if redaction["enabled"] else "off"),
        markup=False,
    )
    if result.failed:
        out.print("Failed tasks (details in sysdump.log):")
        for failure in result.failed[:15]:
            out.print(f"  {failure.name}: {failure.error}", markup=False)
        if len(result.failed) > 15:
            out.print(f"  ... and {len(result.failed) - 15} more", markup=False)
    for warning in result.warnings:
        err_console().print(f"warning: {warning}", markup=False)
