"""Helm value parsing: -f, --set, --set-string, --set-file, merge rules, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ciliumctl.helm.values import (
    ValuesError,
    diff_from_defaults,
    flatten,
    load_values_file,
    merge,
    parse_set,
    parse_set_file,
    user_values,
)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("a=b", {"a": "b"}),
        ("a.b.c=1", {"a": {"b": {"c": 1}}}),
        (
            "a=true,b=false,c=null,d=0,e=012,f=-3",
            {"a": True, "b": False, "c": None, "d": 0, "e": "012", "f": -3},
        ),
        ("list={x,y,3}", {"list": ["x", "y", 3]}),
        ("a[1]=z", {"a": [None, "z"]}),
        ("a[0].name=n", {"a": [{"name": "n"}]}),
        (r"anno.io\.cilium/x=1", {"anno": {"io.cilium/x": 1}}),
        (r"msg=a\,b", {"msg": "a,b"}),
        ("empty=", {"empty": ""}),
    ],
)
def test_parse_set(expr: str, expected: dict[str, object]) -> None:
    assert parse_set([expr]) == expected


def test_set_string_keeps_strings() -> None:
    assert parse_set(["a=true,b=5"], typed=False) == {"a": "true", "b": "5"}


@pytest.mark.parametrize("expr", ["novalue", "a..b=1", "=x"])
def test_bad_set_names_flag_and_text(expr: str) -> None:
    with pytest.raises(ValuesError) as exc:
        parse_set([expr])
    assert "--set" in exc.value.message
    assert expr in exc.value.message


def test_values_file_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "values.yaml"
    bad.write_text("hubble:\n  enabled: true\n relay: [\n")
    with pytest.raises(ValuesError) as exc:
        load_values_file(bad)
    assert f"{bad}:3" in exc.value.message
    with pytest.raises(ValuesError, match="cannot read values file"):
        load_values_file(tmp_path / "missing.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("- just a list\n")
    with pytest.raises(ValuesError, match="mapping"):
        load_values_file(scalar)


def test_order_files_then_set_then_string_then_file(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    first.write_text("debug:\n  enabled: false\nx: 1\ny: 1\n")
    second = tmp_path / "b.yaml"
    second.write_text("x: 2\n")
    content = tmp_path / "content.txt"
    content.write_text("FILE")
    values = user_values(
        [str(first), str(second)], ["y=3,debug.enabled=true"], ["z=4"], [f"w={content}"]
    )
    assert values == {"debug": {"enabled": True}, "x": 2, "y": 3, "z": "4", "w": "FILE"}


def test_set_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ValuesError, match="key=path"):
        parse_set_file(["nokey"])
    with pytest.raises(ValuesError, match="cannot read"):
        parse_set_file([f"k={tmp_path / 'missing'}"])


def test_merge_null_removes_and_maps_merge() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": 1}
    assert merge(base, {"a": {"c": None, "e": 3}, "d": [1]}) == {"a": {"b": 1, "e": 3}, "d": [1]}
    assert base == {"a": {"b": 1, "c": 2}, "d": 1}


def test_flatten_and_diff_from_defaults() -> None:
    assert flatten({"a": {"b": 1, "c": {}}, "l": [1]}) == {"a.b": 1, "a.c": {}, "l": [1]}
    defaults = {"a": {"b": 1, "c": 2}, "k": "x"}
    assert diff_from_defaults({"a": {"b": 1, "c": 3}, "k": "x", "new": 1}, defaults) == {
        "a": {"c": 3},
        "new": 1,
    }
