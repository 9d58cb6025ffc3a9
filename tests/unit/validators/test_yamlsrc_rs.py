"""The yaml_rs path of yamlsrc gives exactly what the pure-Python reference gives.

yaml_rs reads YAML 1.2 and PyYAML 1.1; the fast path must only keep what both read alike
and hand everything else to the libyaml / pure-Python paths. These tests aim texts at the
fast path (block mappings and lists of plain, quoted and typed scalars) and compare data,
errors, duplicate keys and every line with the reference.
"""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ciliumctl.validators import yamlsrc
from ciliumctl.validators.yamlsrc import Document

from .test_yamlsrc import _both, _same

#: Scalars on which YAML 1.1 and 1.2 (or libyaml and yaml_rs) disagree, and ordinary ones.
TRICKY = [
    "yes", "No", "on", "OFF", "y", "n", "true", "False", "TRUE", "tRUE", "null", "Null", "~",
    "0777", "00", "0o17", "0x1F", "0X1F", "0b101", "1_000", "1__0", "+5", "-0", "-12", "8000",
    "1e3", "1.5", "1.", ".5", ".inf", ".NaN", "nan", "1:20", "2001-01-01",
    "2001-12-14t21:59:43.10-05:00",
    "=", "<<", "a b", "app-1", "k8s:app", "/api/v1/items/.*", "10.0.0.0/8", "", " x", "x ",
    "it's", 'say "hi"', "#x", "a #b", "a: b", "-", "?", "*x", "&a", "!x", "{}", "[]", "a,b",
]  # fmt: skip


def _plain(text: str) -> str:
    return text


def _single(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _double(text: str) -> str:
    return '"' + text + '"'


#: What most policies hold: the fast path must take these.
ORDINARY = ["a", "app-1", "k8s:app", "/api/v1/items/.*", "10.0.0.0/8", "x y", "TCP", "GET"]

scalars = st.builds(
    lambda text, style: style(text),
    st.sampled_from(ORDINARY * 8 + TRICKY),
    st.sampled_from([_plain, _plain, _single, _double]),
)
keys = st.one_of(
    st.sampled_from(["a", "b", "spec", "port", "matchLabels"]),
    st.sampled_from(["8000", "yes", "~", "-", "a b"]),
    scalars,
)


@st.composite
def block(draw: st.DrawFn, indent: int = 0, depth: int = 0) -> str:
    """A block mapping or list, sometimes a little wrong (indentation, duplicates)."""
    lines = []
    pad = " " * indent
    as_list = depth > 0 and draw(st.booleans())
    for _ in range(draw(st.integers(1, 4))):
        lead = pad + ("- " if as_list else "")
        key = draw(keys)
        nested = depth < 3 and draw(st.integers(0, 3)) == 0
        shift = draw(st.sampled_from([0] * 8 + [1, -1]))
        if nested:
            child = draw(block(indent=max(0, indent + 2 + shift), depth=depth + 1))
            lines.append(f"{lead}{key}:\n{child}")
        elif as_list and draw(st.booleans()):
            lines.append(f"{lead}{draw(scalars)}\n")
        else:
            lines.append(f"{lead}{key}: {draw(scalars)}\n")
    return "".join(lines)


@settings(max_examples=2500, deadline=None)
@given(text=block())
def test_block_yaml_equals_the_reference(text: str) -> None:
    _same(*_both(text))


@settings(max_examples=500, deadline=None)
@given(data=st.recursive(
    st.one_of(st.sampled_from(TRICKY), st.integers(-10, 70000), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(TRICKY), inner, max_size=3)
    ),
    max_leaves=12,
), flow=st.sampled_from([False, None]))  # fmt: skip
def test_dumped_data_equals_the_reference(data: object, flow: bool | None) -> None:
    text = yaml.safe_dump({"root": data}, default_flow_style=flow)
    _same(*_both(text))


def test_a_typical_policy_takes_the_yaml_rs_path() -> None:
    text = (
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: app\n"
        "spec:\n  endpointSelector:\n    matchLabels:\n      app: web\n  ingress:\n"
        "  - fromEndpoints:\n    - {}\n    toPorts:\n    - ports:\n      - port: '80'\n"
        "        protocol: TCP\n      rules:\n        http:\n        - path: /api/.*\n"
    )
    if yamlsrc._rs_loads() is None:
        return  # yaml_rs is a dependency; without it the libyaml path serves
    doc = Document("f", 0, 1)
    yamlsrc._parse_into(doc, text, 1)
    assert doc.pending_lines is not None and doc.pending_lines[0] is None
    fast, pure = _both(text)
    _same(fast, pure)


def test_typed_first_covers_every_implicit_resolver() -> None:
    table = yaml.SafeLoader.yaml_implicit_resolvers
    assert {key for key in table if key} <= yamlsrc._typed_first()


def test_values_the_two_yaml_versions_read_differently() -> None:
    for value in ["0777", "0o17", "1e3", "yes", "on", "2001-01-01", "1:20", "=", "0X1F"]:
        for text in (f"a: {value}\n", f"a:\n- {value}\n", f"{value}: a\n"):
            _same(*_both(text))


@settings(max_examples=3000, deadline=None)
@given(text=st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet="0123456789+-._:eExXoObBtTyYnNfFlLaAuUsSiI~=<!&* \n", max_size=12),
))  # fmt: skip
def test_typed_matchers_agree_with_pyyaml(text: str) -> None:
    matchers = yamlsrc._typed_matchers()
    match = matchers.get(text[:1], matchers.get(None))
    typed = match is not None and match(text) is not None
    assert typed == (yamlsrc._plain_tag(text) != "tag:yaml.org,2002:str")


@settings(max_examples=500, deadline=None)
@given(text=st.from_regex(yamlsrc._RS_TYPED_IF_PLAIN, fullmatch=True), place=st.integers(0, 2))
def test_yaml_rs_types_what_it_reads_as_quoted_if_a_string(text: str, place: int) -> None:
    # The fast path takes a str with one of these texts for a quoted scalar: yaml_rs must
    # never return them as strings when they are plain.
    if yamlsrc._rs_loads() is None:
        return
    doc = ("a: {}", "- {}", "{}: a")[place].format(text)
    data = yamlsrc._rs_loads()(doc, parse_datetime=False)
    value = data[0] if isinstance(data, list) else next(iter(data.values() if place == 0 else data))
    assert not isinstance(value, str)


@settings(max_examples=3000, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from([*"\n\t\r\xa0é", *map(chr, range(32, 127))]), max_size=40)
)
def test_screen_implies_the_detailed_screens(text: str) -> None:
    """A text that passes the one-search screen passes every screen it stands in for."""
    if yamlsrc._SCREEN.search(text) is None and (
        "*" not in text or yamlsrc._TOKEN_STAR.search(text) is None
    ):
        assert yamlsrc._slow_chars(text) is None
        assert yamlsrc._SLOW_SYNTAX.search(text) is None
        assert "?" not in text
        assert yamlsrc._RS_UNSAFE.search(text) is None


def test_screen_passes_http_path_wildcards_but_not_aliases() -> None:
    assert yamlsrc._SCREEN.search("path: /api/v1/.*\n") is None
    assert yamlsrc._TOKEN_STAR.search("path: /api/v1/.*\n") is None
    for alias in ("a: *x\n", "*x: 1\n", "a: [*x]\n", "- *x\n"):
        assert yamlsrc._TOKEN_STAR.search(alias) or yamlsrc._SCREEN.search(alias), alias
