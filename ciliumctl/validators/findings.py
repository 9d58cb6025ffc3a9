"""Findings: what a validator reports about one place in one document."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: A JSON path inside a document: keys and list indexes, outermost first.
Path = tuple[str | int, ...]


class Severity(enum.StrEnum):
    """How bad a finding is. Errors fail validation; warnings fail with --warnings-as-errors."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


def format_path(path: Sequence[str | int]) -> str:
    """``("spec", "egress", 0, "toPorts")`` -> ``spec.egress[0].toPorts``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


@dataclass(frozen=True)
class Finding:
    """One problem (or note) at one place in one document."""

    severity: Severity
    rule: str
    message: str
    fix: str
    path: Path = ()
    file: str = ""
    document: int | None = None
    line: int | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``-o json``."""
        return {
            "severity": self.severity.value,
            "rule": self.rule,
            "file": self.file,
            "document": self.document,
            "line": self.line,
            "path": format_path(self.path),
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass
class Report:
    """All findings of one validation run, and what was looked at."""

    findings: list[Finding] = field(default_factory=list)
    documents: int = 0
    policies: int = 0

    def extend(self, findings: Iterable[Finding]) -> None:
        """Add findings."""
        self.findings.extend(findings)

    def count(self, severity: Severity) -> int:
        """How many findings have ``severity``."""
        return sum(1 for f in self.findings if f.severity is severity)

    def failed(self, warnings_as_errors: bool = False) -> bool:
        """True when the run must exit non-zero."""
        if self.count(Severity.ERROR):
            return True
        return warnings_as_errors and self.count(Severity.WARNING) > 0

    def sorted(self) -> list[Finding]:
        """Findings in file, document, line order (errors first within one place)."""
        order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTE: 2}
        return sorted(
            self.findings,
            key=lambda f: (
                f.file,
                -1 if f.document is None else f.document,
                f.line or 0,
                order[f.severity],
                format_path(f.path),
                f.message,
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``-o json``: findings and a summary."""
        return {
            "summary": {
                "documents": self.documents,
                "policies": self.policies,
                "errors": self.count(Severity.ERROR),
                "warnings": self.count(Severity.WARNING),
                "notes": self.count(Severity.NOTE),
            },
            "findings": [f.to_dict() for f in self.sorted()],
        }
