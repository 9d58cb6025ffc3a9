"""Many documents are validated by forked workers; the report is the single-process one."""

from __future__ import annotations

import os

import pytest

from ciliumctl.validators import cnp

from .corpus import load_cases


def test_parallel_report_equals_the_sequential_one(monkeypatch: pytest.MonkeyPatch) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.fail("this test needs at least 2 CPUs to exercise the worker processes")
    sources = [(case.id, case.path.read_text()) for case in load_cases()] * 4
    sequential = cnp.validate_texts(sources)
    monkeypatch.setattr(cnp, "PARALLEL_DOCUMENTS", 10)
    assert cnp._workers(sum(1 for _ in sources)) >= 2
    parallel = cnp.validate_texts(sources)
    assert (parallel.documents, parallel.policies) == (sequential.documents, sequential.policies)
    assert parallel.findings == sequential.findings
    assert len(sequential.findings) > 100


def test_warm_up_validates_only_a_small_first_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent validates the first document once before forking, never a whole file."""
    seen: list[tuple[str, int, int]] = []
    monkeypatch.setattr(
        cnp,
        "_validate_text",
        lambda name, text, begin, end, target: seen.append((name, begin, end)),
    )
    cnp._warm_up([("empty", ""), ("a", "kind: A\n---\nkind: B\n")], cnp.DEFAULT_TARGET)
    assert seen == [("a", 0, len("kind: A\n"))]
    seen.clear()
    cnp._warm_up([("big", "k: " + "x" * cnp._WARM_UP_CHARS + "\n---\nk: y\n")], (1, 18))
    assert seen == []
