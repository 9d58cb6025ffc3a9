"""Kubernetes LabelSelector semantics for node selectors: parsing, validation, matching.

Two inputs reach this module: the ``--selector`` text a user types (the kubectl selector
syntax: ``k=v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``, joined by commas)
and the ``nodeSelector`` of a CiliumNodeConfig as stored in the cluster (``matchLabels`` and
``matchExpressions`` with In, NotIn, Exists, DoesNotExist). Both are turned into a
:class:`Selector` that answers "does this node match" in a few dictionary lookups, so the
effective-configuration engine can evaluate thousands of node/CNC pairs quickly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ciliumctl.errors import UsageError

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(UsageError):
    """A label selector that Kubernetes would reject."""


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label key (``[prefix/]name``), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "the prefix before '/' is empty"
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return f"prefix {prefix!r} is not a DNS subdomain"
    if not name:
        return "the name is empty"
    if len(name) > 63:
        return "the name is longer than 63 characters"
    if not _NAME.match(name):
        return "the name must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
    return None


def value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None."""
    if len(value) > 63:
        return f"value {value!r} is longer than 63 characters"
    if not _VALUE.match(value):
        return (
            f"value {value!r} must be alphanumerics, '-', '_' or '.', "
            "starting and ending alphanumeric"
        )
    return None


@dataclass(frozen=True)
class Requirement:
    """One compiled requirement: key, operator and value set."""

    key: str
    operator: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: NotIn and DoesNotExist match nodes without the label."""
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True)
class Selector:
    """A validated LabelSelector; an empty one selects every node."""

    requirements: tuple[Requirement, ...]
    source: dict[str, Any]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when every requirement holds for ``labels``."""
        for req in self.requirements:
            op = req.operator
            if op == "In":
                if labels.get(req.key) not in req.values:
                    return False
            elif op == "NotIn":
                value = labels.get(req.key)
                if value is not None and value in req.values:
                    return False
            elif op == "Exists":
                if req.key not in labels:
                    return False
            elif req.key in labels:
                return False
        return True

    def __str__(self) -> str:
        return format_selector(self.source)


def compile_selector(selector: Any, what: str = "nodeSelector") -> Selector:
    """Validate a LabelSelector dict and compile it; raise :class:`SelectorError` if invalid."""
    if selector is None:
        selector = {}
    if not isinstance(selector, dict):
        raise SelectorError(f"{what} must be an object with matchLabels/matchExpressions")
    unknown = sorted(set(selector) - {"matchLabels", "matchExpressions"})
    if unknown:
        raise SelectorError(
            f"{what} has unknown field(s) {', '.join(unknown)}",
            "a label selector has only matchLabels and matchExpressions",
        )
    reqs: list[Requirement] = []
    labels = selector.get("matchLabels") or {}
    if not isinstance(labels, dict):
        raise SelectorError(f"{what}.matchLabels must be a map of label keys to values")
    for key, value in labels.items():
        _check_key(str(key), what)
        if not isinstance(value, str):
            raise SelectorError(f"{what}.matchLabels[{key}] must be a string, not {value!r}")
        _check_value(value, what)
        reqs.append(Requirement(str(key), "In", frozenset({value})))
    exprs = selector.get("matchExpressions") or []
    if not isinstance(exprs, list):
        raise SelectorError(f"{what}.matchExpressions must be a list")
    for index, expr in enumerate(exprs):
        where = f"{what}.matchExpressions[{index}]"
        if not isinstance(expr, dict):
            raise SelectorError(f"{where} must be an object with key, operator and values")
        key = expr.get("key")
        if not isinstance(key, str):
            raise SelectorError(f"{where}.key is missing")
        _check_key(key, where)
        operator = expr.get("operator")
        if operator not in OPERATORS:
            raise SelectorError(
                f"{where}.operator {operator!r} is not a valid operator",
                f"use one of {', '.join(OPERATORS)}",
            )
        values = expr.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SelectorError(f"{where}.values must be a list of strings")
        if operator in ("In", "NotIn") and not values:
            raise SelectorError(
                f"{where}: operator {operator} needs at least one value",
                "add values, or use Exists / DoesNotExist",
            )
        if operator in ("Exists", "DoesNotExist") and values:
            raise SelectorError(
                f"{where}: operator {operator} takes no values", "remove values, or use In / NotIn"
            )
        for value in values:
            _check_value(value, where)
        reqs.append(Requirement(key, str(operator), frozenset(values)))
    return Selector(tuple(reqs), selector)


def _check_key(key: str, where: str) -> None:
    why = key_problem(key)
    if why:
        raise SelectorError(
            f"invalid label key {key!r} in {where}: {why}",
            "use [prefix/]name, e.g. example.com/pool",
        )


def _check_value(value: str, where: str) -> None:
    why = value_problem(value)
    if why:
        raise SelectorError(f"invalid label value in {where}: {why}")


_SET_TERM = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def parse_selector(text: str) -> dict[str, Any]:
    """The ``--selector`` text (kubectl syntax) as a LabelSelector dict, validated."""
    if not text or not text.strip():
        raise SelectorError(
            "empty --selector", "use --selector key=value[,key=value] or --all-nodes"
        )
    match_labels: dict[str, str] = {}
    exprs: list[dict[str, Any]] = []
    for term in _split_terms(text):
        term = term.strip()
        if not term:
            raise SelectorError(
                f"invalid --selector {text!r}: empty term", "remove the extra comma"
            )
        set_term = _SET_TERM.match(term)
        if set_term:
            key, op, raw = set_term.groups()
            values = [v.strip() for v in raw.split(",") if v.strip()]
            exprs.append(
                {"key": key, "operator": "In" if op == "in" else "NotIn", "values": values}
            )
        elif "!=" in term:
            key, _, value = term.partition("!=")
            exprs.append({"key": key.strip(), "operator": "NotIn", "values": [value.strip()]})
        elif "=" in term:
            key, _, value = term.partition("==") if "==" in term else term.partition("=")
            key, value = key.strip(), value.strip()
            if key in match_labels and match_labels[key] != value:
                raise SelectorError(f"--selector {text!r} requires {key} to have two values")
            match_labels[key] = value
        elif term.startswith("!"):
            exprs.append({"key": term[1:].strip(), "operator": "DoesNotExist"})
        elif re.fullmatch(r"[^\s()=!,]+", term):
            exprs.append({"key": term, "operator": "Exists"})
        else:
            raise SelectorError(
                f"invalid --selector term {term!r}",
                "use key=value, key!=value, 'key in (a,b)', 'key notin (a,b)', key or !key",
            )
    selector: dict[str, Any] = {}
    if match_labels:
        selector["matchLabels"] = match_labels
    if exprs:
        selector["matchExpressions"] = exprs
    compile_selector(selector, "--selector")
    return selector


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"invalid --selector {text!r}: unbalanced ')'")
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise SelectorError(f"invalid --selector {text!r}: unbalanced '('")
    terms.append("".join(current))
    return terms


def format_selector(selector: Any) -> str:
    """A selector dict in kubectl syntax; ``<all nodes>`` for an empty one."""
    if not isinstance(selector, dict):
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        else:
            parts.append(f"!{key}")
    return ",".join(parts) or "<all nodes>"
