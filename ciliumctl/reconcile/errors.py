"""Errors of the reconciler; each names the file and field (or object) at fault."""

from __future__ import annotations

from dataclasses import dataclass

from ciliumctl.errors import CiliumctlError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the desired state: where (file, line, field) and what."""

    file: str
    message: str
    field: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: " + (f"{self.field}: " if self.field else "") + self.message

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}


class ReconcileError(CiliumctlError):
    """Reconciling failed; the cluster may be partly converged (re-running converges)."""


class DesiredStateError(ReconcileError):
    """The desired-state directory is invalid; nothing was applied."""

    def __init__(self, problems: list[Problem], hint: str | None = None) -> None:
        shown = problems[:20]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > 20 else ""
        super().__init__(
            "invalid desired state, nothing was applied:\n  "
            + "\n  ".join(str(p) for p in shown)
            + more,
            hint or "fix the files and fields named above",
        )
        self.problems = problems


class ReconcileDiffError(ReconcileError):
    """`reconcile diff` could not compute the difference: exit code 2, as `kubectl diff`."""

    exit_code = 2
