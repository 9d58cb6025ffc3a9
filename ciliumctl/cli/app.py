"""The root `cilium` command: global options, sub-command registration, error mapping."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from ciliumctl.cli.context import SETTINGS

app = typer.Typer(
    name="cilium",
    help="Install, upgrade, validate, configure and troubleshoot Cilium on Kubernetes.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rich's markdown renderer costs ~0.1 s at start-up
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    context: Annotated[
        str | None, typer.Option("--context", help="Kubernetes configuration context.")
    ] = None,
    namespace: Annotated[
        str,
        typer.Option(
            "-n", "--namespace", envvar="CILIUM_NAMESPACE", help="Namespace Cilium is running in."
        ),
    ] = "kube-system",
    kubeconfig: Annotated[
        str | None, typer.Option("--kubeconfig", help="Path to the kubeconfig file.")
    ] = None,
    helm_release_name: Annotated[
        str, typer.Option("--helm-release-name", help="Helm release name.")
    ] = "cilium",
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug details on errors.")
    ] = False,
) -> None:
    """Record the global flags for the sub-commands."""
    SETTINGS.context = context
    SETTINGS.namespace = namespace
    SETTINGS.kubeconfig = kubeconfig
    SETTINGS.helm_release_name = helm_release_name
    SETTINGS.debug = debug


#: Sub-commands in `--help` order: name -> (module in ciliumctl.cli, attribute, is a group).
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "install": ("install", "install", False),
    "upgrade": ("install", "upgrade", False),
    "uninstall": ("install", "uninstall", False),
    "status": ("status", "status", False),
    "sysdump": ("sysdump", "sysdump", False),
    "version": ("version", "version", False),
    "config": ("config", "app", True),
    "hubble": ("hubble", "app", True),
    "dev-cluster": ("devcluster", "app", True),
    "verify": ("verify", "app", True),
    "sbom": ("verify", "sbom_app", True),
    "validate": ("validate", "app", True),
    "preflight": ("preflight", "app", True),
    "reconcile": ("reconcile", "app", True),
    "connectivity": ("connectivity", "app", True),
    "completion": ("completion", "app", True),
}
#: Global options that take a value (to find the sub-command name in argv).
_VALUE_OPTIONS = {"--context", "-n", "--namespace", "--kubeconfig", "--helm-release-name"}


def _requested(args: list[str]) -> str | None:
    """The sub-command named on the command line, if any."""
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in _VALUE_OPTIONS:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return arg
    return None


def register(names: list[str] | None = None) -> None:
    """Attach sub-commands to the app (all, or only ``names``): building every command's
    click object costs more than the 0.2 s start-up budget once there are many of them."""
    import importlib

    for name, (module, attr, group) in COMMANDS.items():
        if names is not None and name not in names:
            continue
        target = getattr(importlib.import_module(f"ciliumctl.cli.{module}"), attr)
        if group:
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn ciliumctl errors into one line and an exit code."""
    from ciliumctl.errors import CiliumctlError

    args = sys.argv[1:] if argv is None else argv
    requested = _requested(args)
    if os.environ.get("_CILIUM_COMPLETE"):
        # A completion script asks for candidates: every command, the shells' protocols.
        from ciliumctl.cli.completion import enable_requests

        enable_requests()
        requested = None
    register([requested] if requested in COMMANDS else None)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="cilium", standalone_mode=False)
    except CiliumctlError as exc:
        _report(exc, exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("\nInterrupted.\n")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # the click exception family and unexpected bugs
        _click_or_bug(exc)
    sys.exit(code if isinstance(code, int) else 0)


def _click_or_bug(exc: Exception) -> None:
    # Usage errors (click's ClickException family, vendored by newer typer) know how to show
    # themselves and carry exit code 2; anything else is a bug in ciliumctl.
    show = getattr(exc, "show", None)
    if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
        show()
        sys.exit(getattr(exc, "exit_code", 2))
    if isinstance(exc, typer.Abort):
        sys.stderr.write("Aborted.\n")
        sys.exit(1)
    _report(
        exc,
        f"unexpected error: {exc.__class__.__name__}: {exc}",
        "re-run with --debug and report the traceback",
    )
    sys.exit(1)


def _report(exc: BaseException, message: str, hint: str | None) -> None:
    from ciliumctl.cli.output import error_line

    if SETTINGS.debug or "--debug" in sys.argv:
        import traceback

        traceback.print_exception(exc)
    error_line(message, hint)
