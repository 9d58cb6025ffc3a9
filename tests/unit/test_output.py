"""Non-terminal output carries no trailing whitespace (rich pads table cells otherwise)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from ciliumctl.cli.output import TrimmedLines


def test_trailing_spaces_are_dropped_across_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    stream = TrimmedLines("stdout")
    for piece in ("a  b   ", "  ", "\nnext  ", "line", "   \n", "  indented\n", "tail  "):
        stream.write(piece)
    assert out.getvalue() == "a  b\nnext  line\n  indented\ntail"


def test_a_terminal_gets_the_text_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    monkeypatch.setattr(sys, "stdout", out)
    TrimmedLines("stdout").write("cell   \n")
    assert out.getvalue() == "cell   \n"


def test_a_table_command_piped_has_no_trailing_whitespace() -> None:
    # `validate system` prints a wide rich table (5 columns, folded cells) without a cluster.
    done = subprocess.run(
        [sys.executable, "-m", "ciliumctl", "validate", "system"],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.splitlines()
    assert len(lines) > 5 and lines[0].split() == ["GROUP", "CHECK", "STATUS", "DETAIL", "IMPACT"]
    assert [line for line in lines if line != line.rstrip()] == []
