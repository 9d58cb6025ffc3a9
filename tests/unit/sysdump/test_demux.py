"""Several commands in one exec: the script runs for real under sh, the splitter is fed
its output in chunks of every size."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ciliumctl.sysdump.demux import SectionSplitter, batch_script, new_boundary, split_stderr


def run_batch(commands: list[list[str]], tmp_path: Path) -> tuple[bytes, bytes, str]:
    boundary = new_boundary()
    proc = subprocess.run(
        ["sh", "-c", batch_script(commands), "sh", boundary],
        capture_output=True,
        cwd=tmp_path,
        check=True,
    )
    return proc.stdout, proc.stderr, boundary


@pytest.mark.parametrize("chunk", [1, 2, 7, 50, 4096])
def test_outputs_exit_codes_and_stderr_per_command(tmp_path: Path, chunk: int) -> None:
    commands = [
        ["printf", "first line\\nno newline at end"],
        ["sh", "-c", "echo to-stderr >&2; exit 3"],
        ["printf", ""],
        ["printf", "%s\\n", 'it\'s "quoted" $HOME; `x`'],
    ]
    out, err, boundary = run_batch(commands, tmp_path)
    sections: dict[int, bytes] = {}
    markers: list[list[str]] = []
    splitter = SectionSplitter(
        boundary,
        lambda i, data: sections.__setitem__(i, sections.get(i, b"") + data),
        markers.append,
    )
    for i in range(0, len(out), chunk):
        splitter.feed(out[i : i + chunk])
    splitter.finish()
    assert sections[0] == b"first line\nno newline at end"
    assert 1 not in sections and 2 not in sections
    assert sections[3] == b'it\'s "quoted" $HOME; `x`\n'
    assert markers[0][0] == "start"
    ends = [m for m in markers if m[0] == "end"]
    assert [(m[1], m[2]) for m in ends] == [("0", "0"), ("1", "3"), ("2", "0"), ("3", "0")]
    assert all(m[3].isdigit() for m in ends)  # nanosecond timestamps from date +%s%N
    assert split_stderr(err, boundary, 4) == ["", "to-stderr", "", ""]


def test_a_missing_command_fails_alone(tmp_path: Path) -> None:
    out, err, boundary = run_batch([["no-such-command-xyz"], ["echo", "after"]], tmp_path)
    markers: list[list[str]] = []
    data: list[bytes] = []
    splitter = SectionSplitter(boundary, lambda i, d: data.append(d), markers.append)
    splitter.feed(out)
    splitter.finish()
    codes = [m[2] for m in markers if m[0] == "end"]
    assert codes[0] == "127" and codes[1] == "0"
    assert b"".join(data) == b"after\n"
    assert "not found" in split_stderr(err, boundary, 2)[0]


def test_output_that_looks_like_a_marker_but_has_another_boundary_passes() -> None:
    boundary = "sysdump-abc"
    got: list[bytes] = []
    splitter = SectionSplitter(boundary, lambda i, d: got.append(d), lambda f: None)
    splitter.feed(b"\nsysdump-abc start 1\nx\nsysdump-other end 0 0 1\ny")
    splitter.finish()
    assert b"".join(got) == b"x\nsysdump-other end 0 0 1\ny"
