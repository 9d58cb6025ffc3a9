"""`cilium preflight`: checks to run before installing or upgrading Cilium."""

from __future__ import annotations

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
