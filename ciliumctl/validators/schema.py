"""A small structural-schema engine: one declaration validates documents and emits OpenAPI.

The policy model (:mod:`ciliumctl.validators.policy_model`) is written with these node
types. The same tree checks a parsed YAML document (every problem becomes an
:class:`Issue` naming the JSON path and the fix) and renders the OpenAPI v3 schema of the
CRDs, so the CRDs we ship and the validator can never disagree.

Only the subset of OpenAPI that Kubernetes structural schemas allow is supported; patterns
must be valid both for Python's ``re`` and for Go's RE2 (the API server evaluates them).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ciliumctl.validators.findings import Path

_MISSING: Any = object()
#: How many passing values each patterned string node remembers.
_PASSED_MAX = 4096


@dataclass(frozen=True)
class Issue:
    """A schema violation at ``path``."""

    path: Path
    message: str
    fix: str
    rule: str = "schema"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(eq=False)
class Node:
    """Base of all schema nodes. ``since`` is the first Cilium minor version with the field."""

    description: str = ""
    since: tuple[int, int] | None = None

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI v3 (structural) schema of this node."""
        raise NotImplementedError

    def validate(self, value: Any, path: Path) -> Iterator[Issue]:
        """Every violation in ``value`` (located at ``path``)."""
        raise NotImplementedError

    def ok(self, value: Any) -> bool:
        """True exactly when :meth:`validate` finds nothing: the cheap test run first, so
        that only values with a violation pay for the issues, paths and messages."""
        return next(iter(self.validate(value, ())), None) is None

    @cached_property
    def checker(self) -> Callable[[Any], bool]:
        """:meth:`ok` as one function, with this node's settings (and its children's
        checkers) bound in once: what a parent node calls for each value."""
        return self.ok

    @cached_property
    def any_string(self) -> bool:
        """True when every ``str`` value is valid here: callers skip validating those."""
        return False

    def _base(self, kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        out["type"] = kind
        return out

    def _wrong_type(self, value: Any, path: Path, want: str, fix: str = "") -> Issue:
        return Issue(
            path,
            f"must be {want}, not {_type_name(value)} {_short(value)}",
            fix or f"write {want} here",
        )


@dataclass(eq=False)
class Str(Node):
    """A string, optionally constrained by enum, pattern and length."""

    enum: tuple[str, ...] = ()
    pattern: str | None = None
    pattern_hint: str = ""
    max_length: int | None = None
    min_length: int | None = None

    @cached_property
    def any_string(self) -> bool:
        return (
            not self.enum
            and not self.pattern
            and self.max_length is None
            and self.min_length is None
        )

    @cached_property
    def _compiled(self) -> re.Pattern[str] | None:
        return re.compile(self.pattern) if self.pattern else None

    def openapi(self) -> dict[str, Any]:
        out = self._base("string")
        if self.enum:
            out["enum"] = list(self.enum)
        if self.pattern:
            out["pattern"] = self.pattern
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.min_length is not None:
            out["minLength"] = self.min_length
        return out

    def ok(self, value: Any) -> bool:
        return self.checker(value)

    @cached_property
    def checker(self) -> Callable[[Any], bool]:
        enum, low, high = self.enum, self.min_length, self.max_length
        search = self._compiled.search if self._compiled is not None else None
        # Values that passed a pattern: policies repeat labels, ports and prefixes, and a
        # set lookup is far cheaper than the regex.
        passed: set[str] = set()

        def check(value: Any) -> bool:
            if not isinstance(value, str):
                return False
            if value in passed:
                return True
            if enum and value not in enum:
                return False
            if low is not None and len(value) < low:
                return False
            if high is not None and len(value) > high:
                return False
            if search is None:
                return True
            if search(value) is None:
                return False
            if len(passed) < _PASSED_MAX:
                passed.add(value)
            return True

        return check

    def validate(self, value: Any, path: Path) -> Iterator[Issue]:
        if not isinstance(value, str):
            fix = "quote the value" if isinstance(value, bool | int | float) else ""
            if isinstance(value, int | float) and not isinstance(value, bool):
                fix = f'quote the value: "{value}"'
            elif isinstance(value, bool):
                fix = f'quote the value: "{str(value).lower()}"'
            yield self._wrong_type(value, path, "a string", fix)
            return
        if self.enum and value not in self.enum:
            close = difflib.get_close_matches(value, self.enum, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            yield Issue(
                path,
                f"unsupported value {value!r}",
                f"{hint}use one of: {', '.join(self.enum)}",
                "enum",
            )
            return
        if self.min_length is not None and len(value) < self.min_length:
            yield Issue(
                path,
                f"must be at least {self.min_length} character(s) long",
                "set a non-empty value",
            )
        if self.max_length is not None and len(value) > self.max_length:
            yield Issue(
                path,
                f"is {len(value)} characters long, the maximum is {self.max_length}",
                f"shorten it to at most {self.max_length} characters",
            )
        if self._compiled is not None and not self._compiled.search(value):
            yield Issue(
                path,
                f"{_short(value)} does not match the required format",
                self.pattern_hint or f"use a value matching {self.pattern}",
                "format",
            )


@dataclass(eq=False)
class Int(Node):
    """An integer within optional bounds."""

    minimum: int | None = None
    maximum: int | None = None
    fmt: str | None = "int32"

    def openapi(self) -> dict[str, Any]:
        out = self._base("integer")
        if self.fmt:
            out["format"] = self.fmt
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out

    def ok(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        if self.minimum is not None and value < self.minimum:
            return False
        return self.maximum is None or value <= self.maximum

    def validate(self, value: Any, path: Path) -> Iterator[Issue]:
        if isinstance(value, bool) or not isinstance(value, int):
            fix = "write a number without quotes"
            if isinstance(value, str) and value.strip().isdigit():
                fix = f"remove the quotes: {value.strip()}"
            yield self._wrong_type(value, path, "an integer", fix)
            return
        if self.minimum is not None and value < self.minimum:
            yield Issue(path, f"{value} is below the minimum {self.minimum}", "raise the value")
        if self.maximum is not None and value > self.maximum:
            yield Issue(path, f"{value} is above the maximum {self.maximum}", "lower the value")


@dataclass(eq=False)
class Bool(Node):
    """true or false."""

    def openapi(self) -> dict[str, Any]:
        return self._base("boolean")

    def ok(self, value: Any) -> bool:
        return isinstance(value, bool)

    def validate(self, value: Any, path: Path) -> Iterator[Issue]:
        if not isinstance(value, bool):
            yield self._wrong_type(value, path, "a boolean", "write true or false, unquoted")


@dataclass(eq=False)
class IntOrStr(Node):
    """An integer or a string matching ``pattern`` (Kubernetes int-or-string)."""

    pattern: str | None = None
    pattern_hint: str = ""
    minimum: int | None = None
    maximum: int | None = None

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if self.pattern:
            out["pattern"] = self.pattern
        out["x-kubernetes-int-or-string"] = True
        return out

    def ok(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | str):
            return False
        if isinstance(value, int):
            lo, hi = self.minimum, self.maximum
            return not ((lo is not None and value < lo) or (hi is not None and value > hi))
        return not self.pattern or re.search(self.pattern, value) is not None

    def validate(self, value: Any, path: Path) -> Iterator[Issue]:
        if isinstance(value, bool) or not isinstance(value, int | str):
            yield self._wrong_type(value, path, "an integer or a string")
            return
        if isinstance(value, int):
            lo, hi = self.minimum, self.maximum
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                yield Issue(path, f"{value} is out of range {lo}-{hi}", f"use {lo}-{hi}")
            return
        if self.pattern and not re.search(self.pattern, value):
            yield Issue(
                path,
                f"{_short(value)} is not a valid value",
                self.pattern_hint or f"use a value matching {self.pattern}",
                "format",
            )


@dataclass(eq=False)
class Arr(Node):
    """A list of ``items``."""

    items: Node = field(default_factory=Node)
    max_items: int | None = None
    min_items: int | None = None

    def openapi(self) -> dict[str, Any]:
        out = self._base("array")
        out["items"] = self.items.openapi()
        if self.max_items is not None:
            out["maxItems"] = self.max_items
        if self.min_items is not None:
            out["minItems"] = self.min_items
        return out

    def ok(self, value: Any) -> bool:
        return self.checker(value)

    @cached_property
    def checker(self) -> Callable[[Any], bool]:
        most, least = self.max_items, self.min_items
        # None: every string and nothing else is valid (an unconstrained Str).
        item_ok = None if self.items.any_string else self.items.checker

        def check(value: Any) -> bool:
            if not isinstance(value, list):
                return False
            if most is not None and len(value) > most:
                return False
            if least is not None and len(value) < least:
                return False
            if item_ok is None:
                for item in value:
                    if not isinstance(item, str):
                        return False
            else:
                for item in value:
                    if not item_ok(item):
                        return False
            return True

        return check

    def validate(self, value: Any, path: Path) -> Iterator[Issue]:
        if not isinstance(value, list):
            fix = "make it a list (each entry starts with '- ')"
            yield self._wrong_type(value, path, "a list", fix)
            return
        if self.max_items is not None and len(value) > self.max_items:
            yield Issue(
                path,
                f"has {len(value)} entries, the maximum is {self.max_items}",
                f"split it so that each list has at most {self.max_items} entries",
            )
        if self.min_items is not None and len(value) < self.min_items:
            yield Issue(
                path,
                f"has {len(value)} entries, at least {self.min_items} needed",
                "add entries or remove the field",
            )
        for index, item in enumerate(value):
            yield from self.items.validate(item, (*path, index))


@dataclass(frozen=True)
class Forbidden:
    """A field that looks plausible but is not allowed here, with a tailored explanation."""

    message: str
    fix: str
    rule: str


@dataclass(eq=False)
class Obj(Node):
    """An object with known ``fields`` (unknown ones are errors) or a string-keyed map.

    ``one_of`` lists field names of which exactly one must be present; ``one_of_message``
    overrides the error text. ``values`` turns the object into a map (``additionalProperties``);
    ``preserve`` accepts anything (``x-kubernetes-preserve-unknown-fields``).
    """

    fields: dict[str, Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()
    one_of_message: str = ""
    one_of_fix: str = ""
    values: Node | None = None
    preserve: bool = False
    forbidden: dict[str, Forbidden] = field(default_factory=dict)

    def openapi(self) -> dict[str, Any]:
        out = self._base("object")
        if self.one_of:
            out["oneOf"] = [{"properties": {name: {}}, "required": [name]} for name in self.one_of]
        if self.fields:
            out["properties"] = {name: node.openapi() for name, node in sorted(self.fields.items())}
        if self.values is not None:
            out["additionalProperties"] = self.values.openapi()
        if self.required:
            out["required"] = list(self.required)
        if self.preserve:
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out

    def ok(self, value: Any) -> bool:
        return self.checker(value)

    @cached_property
    def checker(self) -> Callable[[Any], bool]:
        if self.preserve:
            return lambda value: isinstance(value, dict)
        required, one_of = self.required, self.one_of
        # Per known key: its checker, or None for an unconstrained string. A key that is
        # neither a field nor allowed by ``values`` (unknown or forbidden) is a violation.
        fields: dict[str, Callable[[Any], bool] | None] = {
            name: None if node.any_string else node.checker for name, node in self.fields.items()
        }
        others = self.values
        other_ok = None if others is None or others.any_string else others.checker
        missing = _MISSING

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return False
            for name in required:
                if name not in value:
                    return False
            if one_of:
                present = 0
                for name in one_of:
                    if name in value:
                        present += 1
                if present != 1:
                    return False
            get = fields.get
            for key, item in value.items():
                item_ok = get(key, missing)
                if item_ok is missing:  # (a key that is a field is a str)
                    if others is None or not isinstance(key, str):
                        return False
                    item_ok = other_ok
                if item_ok is None:
                    if not isinstance(item, str):
                        return False
                elif not item_ok(item):
                    return False
            return True

        return check

    def validate(self, value: Any, path: Path) -> Iterator[Issue]:
        if not isinstance(value, dict):
            fix = "write key: value pairs here"
            if value is None:
                fix = "give it a value (use {} for an empty object) or remove the key"
            yield self._wrong_type(value, path, "an object", fix)
            return
        if self.preserve:
            return
        for name in self.required:
            if name not in value:
                yield Issue(path, f"required field {name!r} is missing", f"add {name}: ...")
        if self.one_of:
            present = [name for name in self.one_of if name in value]
            if len(present) != 1:
                names = " or ".join(self.one_of)
                message = self.one_of_message or (
                    f"exactly one of {names} must be set"
                    + (f", found {len(present)}: {', '.join(present)}" if present else "")
                )
                yield Issue(path, message, self.one_of_fix or f"keep exactly one of {names}")
        for key, item in value.items():
            if not isinstance(key, str):
                yield Issue(
                    (*path, str(key)),
                    f"key {_short(key)} must be a string",
                    "quote the key",
                )
                continue
            node = self.fields.get(key)
            if node is not None:
                if item.__class__ is not str or not node.any_string:
                    yield from node.validate(item, (*path, key))
            elif self.values is not None:
                if item.__class__ is not str or not self.values.any_string:
                    yield from self.values.validate(item, (*path, key))
            elif key in self.forbidden:
                bad = self.forbidden[key]
                yield Issue((*path, key), bad.message, bad.fix, bad.rule)
            else:
                close = difflib.get_close_matches(key, list(self.fields), n=1, cutoff=0.6)
                fix = f"did you mean {close[0]!r}?" if close else "remove it"
                if self.fields and not close:
                    fix += f" (known fields: {', '.join(sorted(self.fields))})"
                yield Issue((*path, key), f"unknown field {key!r}", fix, "unknown-field")


def walk_since(
    node: Node, value: Any, path: Path, target: tuple[int, int]
) -> Iterator[tuple[Path, tuple[int, int]]]:
    """Paths in ``value`` that use a field newer than the ``target`` Cilium version."""
    if isinstance(node, Obj) and isinstance(value, Mapping):
        for key, item in value.items():
            child = node.fields.get(key) if isinstance(key, str) else None
            if child is None:
                continue
            if child.since is not None and child.since > target:
                yield (*path, key), child.since
            yield from walk_since(child, item, (*path, key), target)
    elif isinstance(node, Arr) and isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_since(node.items, item, (*path, index), target)


def newest_since(node: Node) -> tuple[int, int] | None:
    """The newest ``since`` of the fields :func:`walk_since` visits under ``node``."""
    found = [node.since] if node.since is not None else []
    if isinstance(node, Obj):
        found += [s for child in node.fields.values() if (s := newest_since(child))]
    elif isinstance(node, Arr):
        found += [s for s in (newest_since(node.items),) if s]
    return max(found) if found else None
