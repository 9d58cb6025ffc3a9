"""Rendering helpers shared by every command: consoles, machine output, error lines."""

from __future__ import annotations

import enum
import json
import os
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


class TrimmedLines:
    """A text stream that drops the spaces rich pads lines with, unless it is a terminal.

    rich pads every table cell (and so every line) to the column or console width; in pipes
    and CI logs that is only trailing whitespace. The stream is looked up on every write
    (``sys.stdout`` / ``sys.stderr`` may be replaced, e.g. by test runners); spaces at the
    end of a write are held back until the rest of their line shows whether they trail.
    """

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.pending = ""

    @property
    def raw(self) -> Any:
        """The stream written to now."""
        return getattr(sys, self.stream)

    def write(self, text: str) -> int:
        raw = self.raw
        if raw.isatty():
            raw.write(self.pending + text)
            self.pending = ""
            return len(text)
        lines = (self.pending + text).split("\n")
        last = lines.pop()
        kept = last.rstrip(" ")
        self.pending = last[len(kept) :]
        raw.write("".join(line.rstrip(" ") + "\n" for line in lines) + kept)
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return bool(self.raw.isatty())

    def fileno(self) -> int:
        return int(self.raw.fileno())

    @property
    def encoding(self) -> str:
        return str(getattr(self.raw, "encoding", None) or "utf-8")


@cache
def console() -> Console:
    """Console for results (stdout); rich honours NO_COLOR and non-TTY output."""
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True, file=TrimmedLines("stdout"))  # type: ignore[arg-type]
    if not out.is_terminal and "COLUMNS" not in os.environ:
        # Pipes and CI logs: do not wrap tables at rich's 80-column default.
        out = Console(highlight=False, soft_wrap=True, width=200, file=TrimmedLines("stdout"))  # type: ignore[arg-type]
    return out


@cache
def err_console() -> Console:
    """Console for progress and errors (stderr)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, file=TrimmedLines("stderr"))  # type: ignore[arg-type]


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


class ProgressReporter:
    """Shows progress messages: a live status line on a terminal, plain lines otherwise.

    On a non-terminal (CI logs) a message is printed when its step changes (the text before
    ':') and at most every ``every`` updates within one step, so logs stay readable.
    """

    def __init__(self, status: Any | None, every: int = 500) -> None:
        self.status = status
        self.every = every
        self._step = ""
        self._count = 0

    def __call__(self, message: str) -> None:
        if self.status is not None and err_console().is_terminal:
            self.status.update(f"[cyan]{message}")
            return
        step = message.split(":", 1)[0]
        self._count = 0 if step != self._step else self._count + 1
        if step != self._step or self._count % self.every == 0:
            err_console().print(message, markup=False)
        self._step = step
