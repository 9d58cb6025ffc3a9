"""Every corpus policy produces exactly the findings its header states."""

from __future__ import annotations

import pytest

from ciliumctl.validators import cnp
from ciliumctl.validators.findings import Severity, format_path

from .corpus import Case, load_cases

CASES = load_cases()


def test_corpus_is_large_enough() -> None:
    valid = [c for c in CASES if c.path.parent.name == "valid"]
    invalid = [c for c in CASES if c.path.parent.name == "invalid"]
    assert len(CASES) >= 60
    assert len(valid) >= 20 and len(invalid) >= 40
    for case in invalid:
        assert any(sev in ("error", "warning") for sev, _, _ in case.expected), case.id
    for case in valid:
        assert not any(sev == "error" for sev, _, _ in case.expected), case.id


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_corpus_file(case: Case) -> None:
    report = cnp.validate_paths([str(case.path)], cnp.parse_target(case.target))
    got = {(f.severity.value, f.rule, format_path(f.path)) for f in report.findings}
    assert got == case.expected
    for finding in report.findings:
        assert finding.file == str(case.path)
        assert finding.message and finding.fix
        if finding.severity is not Severity.NOTE or finding.path:
            assert finding.line is not None and finding.line > 0, finding
