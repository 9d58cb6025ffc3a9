"""`cilium completion`: scripts for bash, zsh, fish and PowerShell that really complete."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ciliumctl.cli.app import COMMANDS

BIN = Path(sys.executable).parent


def cilium(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "cilium"), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )


def test_bash_script_registers_and_completes_commands(tmp_path: Path) -> None:
    script = cilium("completion", "bash")
    assert script.returncode == 0, script.stderr
    (tmp_path / "cilium.bash").write_text(script.stdout)
    # Source the script in a real bash, check the registration, then run its completion
    # function for "cilium val<TAB>" and "cilium validate <TAB>".
    probe = (
        f"source {tmp_path / 'cilium.bash'} && complete -p cilium && "
        "COMP_WORDS=(cilium val); COMP_CWORD=1; _cilium_completion cilium; "
        'echo "one:${COMPREPLY[*]}"; '
        'COMP_WORDS=(cilium validate ""); COMP_CWORD=2; _cilium_completion cilium; '
        'echo "sub:${COMPREPLY[*]}"'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "complete -o default -F _cilium_completion cilium"
    assert "one:validate" in lines
    assert "sub:cnp labels system values" in lines


@pytest.mark.parametrize(
    ("shell", "marker", "env"),
    [
        ("zsh", "compdef _cilium_completion cilium", {"_TYPER_COMPLETE_ARGS": "cilium "}),
        (
            "fish",
            "complete --command cilium",
            {"_TYPER_COMPLETE_ARGS": "cilium ", "_TYPER_COMPLETE_FISH_ACTION": "get-args"},
        ),
        (
            "powershell",
            "Register-ArgumentCompleter -Native -CommandName cilium",
            {"_TYPER_COMPLETE_ARGS": "cilium ", "_TYPER_COMPLETE_WORD_TO_COMPLETE": ""},
        ),
    ],
)
def test_other_shells_scripts_and_their_answers(
    shell: str, marker: str, env: dict[str, str]
) -> None:
    script = cilium("completion", shell)
    assert script.returncode == 0, script.stderr
    assert marker in script.stdout
    assert "_CILIUM_COMPLETE" in script.stdout and f"complete_{shell}" in script.stdout
    # The script's request, answered by cilium itself: every top-level command is offered.
    answer = cilium(**env, _CILIUM_COMPLETE=f"complete_{shell}")
    assert answer.returncode == 0, answer.stderr
    for name in COMMANDS:
        assert name in answer.stdout, (name, answer.stdout)


def test_unknown_shell_is_a_usage_error() -> None:
    done = cilium("completion", "tcsh")
    assert done.returncode == 2 and "tcsh" in done.stderr
