"""Multi-document YAML with lines, syntax errors per document and duplicate keys."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ciliumctl.validators import yamlsrc
from ciliumctl.validators.yamlsrc import Document, load_documents, split_documents

from .corpus import load_cases

CORPUS = [case.path.read_text() for case in load_cases()]

TEXT = """\
# leading comment
a: 1
b:
  c: [1, 2]
---
x: [1, 2
---
--- {inline: true}
...
- item
"""


def test_documents_are_split_and_errors_stay_local() -> None:
    docs = load_documents(TEXT, "f.yaml")
    assert [d.index for d in docs] == [0, 1, 2, 3]
    assert docs[0].data == {"a": 1, "b": {"c": [1, 2]}}
    assert docs[0].line_of(("b", "c", 1)) == 4
    assert docs[0].line_of(("a",)) == 2
    assert docs[1].error is not None and docs[1].data is None
    assert docs[1].error.line is not None and 6 <= docs[1].error.line <= 7
    assert docs[2].data == {"inline": True}
    assert docs[3].data == ["item"]


def test_line_of_falls_back_to_the_nearest_parent() -> None:
    (doc,) = load_documents("spec:\n  ingress:\n  - {}\n", "f")
    assert doc.line_of(("spec", "ingress", 0, "toPorts", 3)) == 3
    assert doc.line_of(("missing",)) == 1


def test_duplicate_keys_are_recorded() -> None:
    (doc,) = load_documents("a: 1\nb: 2\na: 3\n", "f")
    assert doc.data == {"a": 3, "b": 2}
    assert doc.duplicates == [(("a",), 3)]


def test_empty_and_comment_only_streams() -> None:
    assert load_documents("", "f") == []
    assert load_documents("# nothing\n\n", "f") == []
    docs = load_documents("---\n---\na: 1\n", "f")
    assert [d.data for d in docs if not d.empty] == [{"a": 1}]


def test_merge_keys_and_anchors() -> None:
    (doc,) = load_documents("base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n", "f")
    assert doc.data["derived"] == {"x": 1, "y": 2}


def test_recursive_alias_is_an_error_not_a_crash() -> None:
    (doc,) = load_documents("a: &x [*x]\n", "f")
    assert doc.error is not None


def test_split_keeps_line_numbers() -> None:
    chunks = list(split_documents("a: 1\n---\nb: 2\n"))
    assert [start for start, _ in chunks] == [1, 2]


# The libyaml path must give exactly what the pure-Python reference gives: the same
# documents, data, duplicate keys, errors and the same line for every JSON path.
YAMLISH = st.text(alphabet="ab:- \n\t#%.{}[]&*!|>'\"?,01\xa0\r~<=", max_size=120)


def _both(chunk: str) -> tuple[Document, Document]:
    fast, pure = Document("f", 0, 3), Document("f", 0, 3)
    yamlsrc._parse_into(fast, chunk, 3)
    yamlsrc._parse_pure(pure, chunk, 3)
    return fast, pure


def _same(fast: Document, pure: Document) -> None:
    assert (fast.empty, fast.error, fast.duplicates) == (pure.empty, pure.error, pure.duplicates)
    assert repr(fast.data) == repr(pure.data)
    probes = [(), *pure.lines, ("nowhere",)]
    assert [fast.line_of(p) for p in probes] == [pure.line_of(p) for p in probes]
    assert fast.lines == pure.lines


@settings(max_examples=1500, deadline=None)
@given(text=YAMLISH)
def test_fast_parse_equals_the_reference(text: str) -> None:
    _same(*_both(text))


@settings(max_examples=300, deadline=None)
@given(index=st.integers(min_value=0), cut=st.integers(min_value=0), junk=YAMLISH)
def test_fast_parse_equals_the_reference_on_mangled_policies(
    index: int, cut: int, junk: str
) -> None:
    text = CORPUS[index % len(CORPUS)]
    cut %= len(text) + 1
    for _, chunk in split_documents(text[:cut] + junk[:8] + text[cut:]):
        _same(*_both(chunk))


def test_corpus_parses_on_the_fast_path() -> None:
    for text in CORPUS:
        for _, chunk in split_documents(text):
            fast, pure = _both(chunk)
            _same(fast, pure)


@settings(max_examples=1500, deadline=None)
@given(text=st.text(alphabet="-.% #a\n\t\xa0x", max_size=80))
def test_plain_splitter_equals_the_line_splitter(text: str) -> None:
    assert list(yamlsrc._split_plain(text)) == list(yamlsrc._split_lines(text))


@settings(max_examples=1500, deadline=None)
@given(text=st.text(alphabet="-.%\n \tax", max_size=80))
def test_marker_scan_finds_what_the_marker_regex_finds(text: str) -> None:
    """The scan that only tries lines starting with '-', '.' or '%' misses no marker."""
    spans = [m.span() for m in yamlsrc._markers(text)]
    assert spans == [m.span() for m in yamlsrc._MARKER.finditer(text)]


@settings(max_examples=1500, deadline=None)
@given(text=st.text(alphabet="\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029\na\xe9", max_size=12))
def test_odd_break_search_equals_the_regex(text: str) -> None:
    assert yamlsrc.has_odd_breaks(text) == (yamlsrc._ODD_BREAKS.search(text) is not None)
