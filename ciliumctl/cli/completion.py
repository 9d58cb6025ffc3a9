"""`cilium completion bash|zsh|fish|powershell`: the shell's completion script.

As in cilium-cli, each shell has its own sub-command printing a script to source. The
scripts ask `cilium` itself for candidates (``_CILIUM_COMPLETE=complete_<shell>``), so they
follow the commands and flags of the installed version; :func:`ciliumctl.cli.app.main`
answers those requests.
"""

from __future__ import annotations

import typer

#: The environment variable the scripts set when they ask `cilium` for candidates.
COMPLETE_VAR = "_CILIUM_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell")

app = typer.Typer(
    help="Generate the autocompletion script for the specified shell.",
    no_args_is_help=True,
)


def script(shell: str) -> str:
    """The completion script of ``shell`` for the `cilium` command."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="cilium", complete_var=COMPLETE_VAR, shell=shell)


def _command(shell: str, how: str) -> None:
    def run() -> None:
        typer.echo(script(shell))

    run.__doc__ = f"Generate the autocompletion script for {shell}.\n\n{how}"
    app.command(shell)(run)


_command("bash", "To load completions in the current shell: source <(cilium completion bash)")
_command("zsh", "To load completions in the current shell: source <(cilium completion zsh)")
_command("fish", "To load completions in the current shell: cilium completion fish | source")
_command(
    "powershell",
    "To load completions in the current shell: "
    "cilium completion powershell | Out-String | Invoke-Expression",
)


def enable_requests() -> None:
    """Register the shells' completion protocols (only when a script asks for candidates)."""
    from typer._completion_classes import completion_init

    completion_init()
