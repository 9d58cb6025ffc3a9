"""Read the policy corpus in tests/data/policies and its expectation headers.

Each file starts with comment lines that state what the validator must report:

    # expect: none
    # expect: <severity> <rule> [<json path>]
    # target-version: 1.16
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "data" / "policies"


@dataclass(frozen=True)
class Case:
    """One corpus file and the findings it must produce."""

    path: Path
    expected: frozenset[tuple[str, str, str]]
    target: str | None

    @property
    def id(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


def load_cases() -> list[Case]:
    """Every corpus file with its parsed header."""
    cases = []
    for path in sorted(CORPUS.glob("*/*.yaml")):
        expected: set[tuple[str, str, str]] = set()
        target = None
        saw_header = False
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            body = line.lstrip("#").strip()
            if body.startswith("expect:"):
                saw_header = True
                words = body[len("expect:") :].split()
                if words == ["none"]:
                    continue
                severity, rule, *rest = words
                expected.add((severity, rule, rest[0] if rest else ""))
            elif body.startswith("target-version:"):
                target = body.split(":", 1)[1].strip()
        if not saw_header:
            raise AssertionError(f"{path} has no '# expect:' header")
        cases.append(Case(path, frozenset(expected), target))
    return cases
