"""Errors that domain code raises and the CLI turns into one clear line and an exit code.

Every error carries a message that says what went wrong (naming the file, field, flag,
context or URL involved) and, where one exists, a hint that says how to fix it.
"""

from __future__ import annotations


class CiliumctlError(Exception):
    """Base class: a failure the user can act on. Exit code 1 unless a subclass says otherwise."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(CiliumctlError):
    """Bad flags or arguments: exit code 2, as for any command-line usage error."""

    exit_code = 2


class ConfigError(CiliumctlError):
    """A local configuration problem: kubeconfig, values file, state directory."""


class ToolMissingError(CiliumctlError):
    """A required external binary (kube-apiserver, helm, ...) is not available."""
