"""Kubernetes label selector rules as they apply to Cilium's source-prefixed label keys."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ciliumctl.validators.findings import Path, Severity

#: Label sources Cilium knows; a selector key may start with "source:".
LABEL_SOURCES: frozenset[str] = frozenset(
    {
        "any",
        "k8s",
        "reserved",
        "container",
        "unspec",
        "cidr",
        "fqdn",
        "cidrgroup",
        "cilium-generated",
        "node",
    }
)
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class Problem:
    """A semantic finding before it is placed in a file."""

    path: Path
    severity: Severity
    rule: str
    message: str
    fix: str


def split_source(key: str) -> tuple[str | None, str]:
    """``k8s:app`` -> (``k8s``, ``app``); keys without a known source keep their text."""
    head, sep, rest = key.partition(":")
    if sep and head in LABEL_SOURCES:
        return head, rest
    return None, key


@lru_cache(maxsize=8192)
def key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid selector key, or None (memoised: policies repeat keys)."""
    if not key:
        return "the key is empty"
    source, bare = split_source(key)
    if source is None and ":" in key:
        head = key.partition(":")[0]
        return f"unknown label source {head!r} (known sources: {', '.join(sorted(LABEL_SOURCES))})"
    if source == "reserved":
        return None if _NAME.match(bare) else f"{bare!r} is not a reserved label name"
    if source in {"cidr", "fqdn", "cidrgroup"}:
        return None if bare else "the key after the source is empty"
    prefix, slash, name = bare.rpartition("/")
    if slash:
        if not prefix:
            return "the prefix before '/' is empty"
        if len(prefix) > 253:
            return "the prefix before '/' is longer than 253 characters"
        if not all(_DNS_LABEL.match(part) for part in prefix.split(".")):
            return (
                f"the prefix {prefix!r} must be a lower-case DNS subdomain "
                "(letters, digits, '-' and '.')"
            )
    if not name:
        return "the name part is empty"
    if len(name) > 63:
        return f"the name part {name!r} is longer than 63 characters"
    if not _NAME.match(name):
        return (
            f"the name part {name!r} must be letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


def value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None."""
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters"
    if not _VALUE.match(value):
        return (
            f"{value!r} must be empty or letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


def is_empty(selector: Any) -> bool:
    """True for a selector that selects everything ({} or only empty lists)."""
    if not isinstance(selector, dict):
        return False
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def check(selector: Any, path: Path) -> Iterator[Problem]:
    """Errors in the keys, values and operators of one label selector."""
    if not isinstance(selector, dict):
        return
    labels = selector.get("matchLabels")
    if isinstance(labels, dict):
        for key in labels:
            if not isinstance(key, str):
                continue
            why = key_problem(key)
            if why:
                yield Problem(
                    (*path, "matchLabels", key),
                    Severity.ERROR,
                    "selector-key",
                    f"invalid label key {key!r}: {why}",
                    "use [source:][prefix/]name, e.g. k8s:app.kubernetes.io/name",
                )
    expressions = selector.get("matchExpressions")
    if not isinstance(expressions, list):
        return
    for index, expr in enumerate(expressions):
        if not isinstance(expr, dict):
            continue
        where = (*path, "matchExpressions", index)
        key = expr.get("key")
        if isinstance(key, str):
            why = key_problem(key)
            if why:
                yield Problem(
                    (*where, "key"),
                    Severity.ERROR,
                    "selector-key",
                    f"invalid label key {key!r}: {why}",
                    "use [source:][prefix/]name, e.g. k8s:app",
                )
        operator = expr.get("operator")
        values = expr.get("values")
        has_values = isinstance(values, list) and len(values) > 0
        if operator in ("In", "NotIn") and not has_values:
            yield Problem(
                where,
                Severity.ERROR,
                "selector-operator",
                f"operator {operator} needs at least one value",
                "add values: [...] or use Exists / DoesNotExist",
            )
        if operator in ("Exists", "DoesNotExist") and has_values:
            yield Problem(
                (*where, "values"),
                Severity.ERROR,
                "selector-operator",
                f"operator {operator} must not have values",
                "remove values, or use In / NotIn",
            )
        if isinstance(values, list):
            for vindex, value in enumerate(values):
                if isinstance(value, str):
                    why = value_problem(value)
                    if why:
                        yield Problem(
                            (*where, "values", vindex),
                            Severity.ERROR,
                            "selector-value",
                            f"invalid label value: {why}",
                            "use a valid Kubernetes label value",
                        )


def selects_key(selector: Any, wanted: str) -> bool:
    """True when the selector requires (matchLabels / In / Exists) the label ``wanted``."""
    if not isinstance(selector, dict):
        return False
    labels = selector.get("matchLabels")
    if isinstance(labels, dict) and wanted in labels:
        return True
    expressions = selector.get("matchExpressions")
    if isinstance(expressions, list):
        for expr in expressions:
            if (
                isinstance(expr, dict)
                and expr.get("key") == wanted
                and expr.get("operator") in ("In", "Exists")
            ):
                return True
    return False
