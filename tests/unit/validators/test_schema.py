"""The schema engine: messages, fixes and the OpenAPI it renders."""

from __future__ import annotations

from ciliumctl.validators import policy_model as pm
from ciliumctl.validators.schema import Arr, Int, IntOrStr, Obj, Str, walk_since


def issues(node, value):  # type: ignore[no-untyped-def]
    return [(i.path, i.rule, i.message, i.fix) for i in node.validate(value, ())]


def test_unknown_field_suggests_the_close_name() -> None:
    node = Obj(fields={"toEndpoints": Arr(items=Str())})
    ((path, rule, message, fix),) = issues(node, {"toEndpoint": []})
    assert (path, rule) == (("toEndpoint",), "unknown-field")
    assert "unknown field" in message and "toEndpoints" in fix


def test_enum_suggestion_and_type_fixes() -> None:
    ((_, rule, _, fix),) = issues(Str(enum=("TCP", "UDP")), "TPC")
    assert rule == "enum" and "'TCP'" in fix
    ((_, _, message, fix),) = issues(Str(), 80)
    assert "must be a string" in message and fix == 'quote the value: "80"'
    ((_, _, _, fix),) = issues(Int(), "80")
    assert fix == "remove the quotes: 80"
    assert issues(IntOrStr(pattern="^[A-Z]+$", minimum=0, maximum=255), 8) == []
    assert issues(IntOrStr(pattern="^[A-Z]+$", minimum=0, maximum=255), 300)


def test_one_of_and_required() -> None:
    node = Obj(fields={"a": Str(), "b": Str()}, one_of=("a", "b"), required=("a",))
    messages = [m for _, _, m, _ in issues(node, {"b": "x"})]
    assert any("required field 'a'" in m for m in messages)
    assert issues(node, {"a": "x"}) == []
    assert issues(node, {"a": "x", "b": "y"})


def test_openapi_of_a_map_and_int_or_string() -> None:
    node = Obj(values=Str(max_length=63))
    assert node.openapi() == {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": 63},
    }
    assert IntOrStr().openapi() == {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    }


def test_walk_since_finds_fields_newer_than_the_target() -> None:
    rule = {"log": {"value": "x"}, "egress": [{"toCIDRSet": [{"cidrGroupSelector": {}}]}]}
    found = dict(walk_since(pm.rule(False), rule, ("spec",), (1, 16)))
    assert found == {
        ("spec", "log"): (1, 18),
        ("spec", "egress", 0, "toCIDRSet", 0, "cidrGroupSelector"): (1, 17),
    }
    assert dict(walk_since(pm.rule(False), rule, ("spec",), (1, 18))) == {}
