"""``Node.ok`` (the fast test run before collecting issues) agrees with ``Node.validate``."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ciliumctl.validators import policy_model as pm
from ciliumctl.validators.schema import Arr, Node, Obj
from ciliumctl.validators.yamlsrc import load_documents

from .corpus import load_cases

DOCS = [
    doc.data
    for case in load_cases()
    for doc in load_documents(case.path.read_text(), str(case.path))
    if isinstance(doc.data, dict)
]


def _nodes(node: Node, seen: list[Node]) -> list[Node]:
    if any(node is other for other in seen):
        return seen
    seen.append(node)
    if isinstance(node, Obj):
        for child in [*node.fields.values(), *([node.values] if node.values else [])]:
            _nodes(child, seen)
    elif isinstance(node, Arr):
        _nodes(node.items, seen)
    return seen


NODES = _nodes(pm.CCNP_SCHEMA, _nodes(pm.CNP_SCHEMA, []))
NAMES = sorted({name for node in NODES if isinstance(node, Obj) for name in node.fields})
WORDS = ["", "TCP", "tcp", "80", "0", "a" * 70, "10.0.0.0/8", "In", "Exists", "k8s:app", "GET"]

values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 70_000),
        st.floats(allow_nan=False),
        st.sampled_from(WORDS),
        st.text(max_size=4),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=3)), inner, max_size=4),
        st.dictionaries(st.integers(0, 3), inner, max_size=1),
    ),
    max_leaves=12,
)


def _agree(node: Node, value: Any) -> None:
    expected = next(iter(node.validate(value, ())), None) is None
    assert node.ok(value) is expected, (node, value)


def test_corpus_documents() -> None:
    assert len(DOCS) > 80 and len(NODES) > 50
    for doc in DOCS:
        for schema in (pm.CNP_SCHEMA, pm.CCNP_SCHEMA):
            _agree(schema, doc)


@settings(max_examples=3000, deadline=None)
@given(index=st.integers(min_value=0), value=values)
def test_every_node_on_any_value(index: int, value: Any) -> None:
    _agree(NODES[index % len(NODES)], value)


@settings(max_examples=1500, deadline=None)
@given(index=st.integers(min_value=0), steps=st.lists(st.integers(0, 50), max_size=6),
       key=st.sampled_from(NAMES), value=values)  # fmt: skip
def test_mutated_corpus_documents(index: int, steps: list[int], key: str, value: Any) -> None:
    doc = copy.deepcopy(DOCS[index % len(DOCS)])
    here: Any = doc
    for step in steps:  # walk down to some container, then change one entry of it
        children = list(here.values()) if isinstance(here, dict) else here
        inner = [c for c in children if isinstance(c, dict | list)]
        if not inner:
            break
        here = inner[step % len(inner)]
    if isinstance(here, dict):
        here[key] = value
    elif isinstance(here, list) and here:
        here[steps[-1] % len(here) if steps else 0] = value
    for schema in (pm.CNP_SCHEMA, pm.CCNP_SCHEMA):
        _agree(schema, doc)


def test_patterned_string_remembers_only_what_passed() -> None:
    """A value that passed once passes again from the memo; one that failed fails again,
    and a value too long for max_length fails even when its pattern would match."""
    from ciliumctl.validators import schema

    node = schema.Str(pattern=r"^[a-z]+$", max_length=5)
    for _ in range(2):
        assert node.ok("abc")
        assert not node.ok("ab1")
        assert not node.ok("abcdef")
        assert not node.ok(["abc"])
    limited = schema.Str(pattern=r"^[a-z]+$")
    for index in range(schema._PASSED_MAX + 10):
        word = "".join(chr(97 + int(d)) for d in str(index))
        assert limited.ok(word) and limited.ok(word)
    assert not limited.ok("A")


@settings(max_examples=500, deadline=None)
@given(
    meta=st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["", "x", 5, None, 0, ["x"]]),
                "generateName": st.sampled_from(["", "g-", None, 3]),
                "namespace": st.just("ns"),
            },
        ),
        st.sampled_from([None, [], "x"]),
    )
)
def test_metadata_ok_agrees_with_validate(meta: Any) -> None:
    _agree(pm.Metadata(), meta)
