"""`cilium version`: client version, the chart's default Cilium version, the running one."""

from __future__ import annotations

from typing import Annotated

import typer

from ciliumctl.cli.context import SETTINGS
from ciliumctl.cli.output import OutputFormat, console, emit


def version(
    client_only: Annotated[
        bool, typer.Option("--client", help="Only show the client version (no cluster access).")
    ] = False,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="Output format: text, json or yaml.")
    ] = OutputFormat.TEXT,
) -> None:
    """Show the client and Cilium versions.

    The Cilium version the bundled chart installs by default and, without --client, the
    version running in the cluster (from the Helm release or the agent DaemonSet).
    """
    from ciliumctl import versions

    data: dict[str, object] = {
        "client": {"version": versions.CLIENT_VERSION},
        "defaultCiliumVersion": versions.default_cilium_version(),
    }
    running = None
    if not client_only:
        running = versions.running_version(
            SETTINGS.client(), SETTINGS.namespace, SETTINGS.helm_release_name
        )
        data["running"] = {
            "version": running.version,
            "installed": running.version is not None,
            "source": running.source,
            "detail": running.detail,
        }
    if output is not OutputFormat.TEXT:
        emit(data, output)
        return
    out = console()
    out.print(f"cilium-cli: v{versions.CLIENT_VERSION} (ciliumctl)")
    out.print(f"cilium image (default): v{data['defaultCiliumVersion']}")
    if running is not None:
        shown = f"v{running.version}" if running.version else "not installed"
        out.print(f"cilium image (running): {shown}")
