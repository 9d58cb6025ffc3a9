"""Rendering helpers shared by every command: consoles, machine output, error lines."""

from __future__ import annotations

import enum
import json
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


class OutputFormat(enum.StrEnum):
    """Output formats of commands that print data."""

    TEXT = "text"
    JSON = "json"
    YAML = "yaml"


@cache
def console() -> Console:
    """Console for results (stdout); rich honours NO_COLOR and non-TTY output."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


@cache
def err_console() -> Console:
    """Console for progress and errors (stderr)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def emit(data: Any, fmt: OutputFormat) -> None:
    """Print ``data`` as JSON or YAML on stdout, without markup."""
    if fmt is OutputFormat.YAML:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    else:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def error_line(message: str, hint: str | None = None) -> None:
    """Print an error (and its fix) on stderr."""
    from rich.markup import escape

    err_console().print(f"[bold red]Error:[/] {escape(message)}")
    if hint:
        err_console().print(f"  [yellow]Fix:[/] {escape(hint)}")
