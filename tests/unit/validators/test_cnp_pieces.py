"""Large files are cut at ``---`` lines between workers; the report stays the sequential one."""

from __future__ import annotations

import os
from itertools import pairwise

import pytest

from ciliumctl.validators import cnp

from .corpus import load_cases

#: Documents whose splitting is unusual: end markers, directives, markers with content or
#: comments, empty and comment-only documents, broken YAML, a List.
ODD = """\
--- # a comment on the marker
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: inline}
spec: {endpointSelector: {}}
...
%YAML 1.1
---
---
# only a comment
--- {apiVersion: cilium.io/v2, kind: CiliumNetworkPolicy, metadata: {name: x}}
---
kind: [broken
---
apiVersion: v1
kind: List
items:
- apiVersion: cilium.io/v2
  kind: CiliumNetworkPolicy
  metadata: {name: in-list}
  spec:
    endpointSelector: {matchLabels: {app: a}}
    ingress: [{fromEntities: [all]}]
"""


def _big_text() -> str:
    texts = [case.path.read_text() for case in load_cases()]
    return "\n---\n".join([*texts, ODD] * 3)


def test_pieces_cover_each_text_in_order() -> None:
    sources = [("a", _big_text()), ("b", ""), ("c", "a: 1\n"), ("d", _big_text())]
    batches = cnp._batches(sources, 16)
    pieces = [piece for batch in batches for piece in batch]
    assert len(batches) > 4
    for index, (_, text) in enumerate(sources):
        own = [(begin, end) for source, begin, end in pieces if source == index]
        assert own[0][0] == 0 and own[-1][1] == len(text)
        assert all(a[1] == b[0] for a, b in pairwise(own))
        assert all(text[begin:].startswith("---") for begin, _ in own[1:])
    assert len([p for p in pieces if p[0] == 0]) > 2  # the large texts are cut


def test_cut_texts_give_the_sequential_report(monkeypatch: pytest.MonkeyPatch) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.fail("this test needs at least 2 CPUs to exercise the worker processes")
    sources = [("big.yaml", _big_text()), ("small.yaml", ODD), ("big2.yaml", _big_text())]
    sequential = cnp.validate_texts(sources)
    monkeypatch.setattr(cnp, "PARALLEL_DOCUMENTS", 10)
    parallel = cnp.validate_texts(sources)
    assert (parallel.documents, parallel.policies) == (sequential.documents, sequential.policies)
    assert parallel.findings == sequential.findings
    assert max(f.document or 0 for f in sequential.findings) > 100
    assert {f.rule for f in sequential.findings} >= {"yaml", "select-all", "skipped-kind"}
