"""Endpoint selectors over source-prefixed labels, with Cilium's namespace scoping.

A selector key may name a source (``k8s:app``, ``reserved:host``, ``cidr:10.0.0.0/8``); a key
without one matches that key from any source. Requirements are evaluated with the
Kubernetes semantics of :mod:`ciliumctl.nodeconfig.selectors` against :func:`labels.expand`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ciliumctl.agent import labels as lbl
from ciliumctl.nodeconfig.selectors import Requirement
from ciliumctl.validators.labels import NAMESPACE_LABEL

NAMESPACE_KEY = f"{lbl.K8S}:{NAMESPACE_LABEL}"


def normalize_key(key: str) -> str:
    """``app`` -> ``any:app``; ``k8s:app`` stays; the form :func:`labels.expand` produces."""
    source, bare = lbl.split(key)
    return f"{source}:{bare}"


@dataclass(frozen=True)
class Selector:
    """A compiled selector; ``requirements`` all hold for a match. Hashable, for caching."""

    requirements: tuple[Requirement, ...]

    def matches(self, expanded: Mapping[str, str]) -> bool:
        """Whether labels (already passed through :func:`labels.expand`) are selected."""
        return all(req.matches(expanded) for req in self.requirements)

    def label_keys(self) -> set[str]:
        """The label keys the selector constrains."""
        return {req.key for req in self.requirements}

    def with_requirements(self, extra: Iterable[Requirement]) -> Selector:
        """This selector narrowed by ``extra``."""
        return Selector(tuple(sorted({*self.requirements, *extra}, key=_order)))

    def __str__(self) -> str:
        parts = []
        for req in self.requirements:
            values = ",".join(sorted(req.values))
            if req.operator == "In" and len(req.values) == 1:
                parts.append(f"{req.key}={values}")
            elif req.operator in ("In", "NotIn"):
                parts.append(f"{req.key} {req.operator.lower()} ({values})")
            elif req.operator == "Exists":
                parts.append(req.key)
            else:
                parts.append(f"!{req.key}")
        return "&".join(parts) or "{}"


def _order(req: Requirement) -> tuple[str, str, tuple[str, ...]]:
    return (req.key, req.operator, tuple(sorted(req.values)))


def compile_selector(raw: Any, key_prefix: str = "") -> Selector:
    """Compile a validated ``{matchLabels, matchExpressions}``; keys get ``key_prefix`` first.

    ``key_prefix`` lets a NetworkPolicy's namespaceSelector match the namespace labels Cilium
    copies onto endpoints (``io.cilium.k8s.namespace.labels.``).
    """
    raw = raw if isinstance(raw, dict) else {}
    reqs: list[Requirement] = []
    for key, value in (raw.get("matchLabels") or {}).items():
        reqs.append(Requirement(_key(str(key), key_prefix), "In", frozenset({str(value)})))
    for expr in raw.get("matchExpressions") or []:
        values = frozenset(str(v) for v in expr.get("values") or [])
        reqs.append(Requirement(_key(str(expr["key"]), key_prefix), str(expr["operator"]), values))
    return Selector(tuple(sorted(set(reqs), key=_order)))


def _key(key: str, prefix: str) -> str:
    if not prefix:
        return normalize_key(key)
    source, bare = lbl.split(key)
    return f"{lbl.K8S if source == lbl.ANY else source}:{prefix}{bare}"


def has_label(key: str) -> Selector:
    """Selects label sets carrying ``key`` (e.g. ``reserved:host``) with any value."""
    return Selector((Requirement(normalize_key(key), "Exists", frozenset()),))


def in_namespace(selector: Selector, namespace: str) -> Selector:
    """``selector`` restricted to ``namespace`` (how a CNP scopes its selectors)."""
    return selector.with_requirements([Requirement(NAMESPACE_KEY, "In", frozenset({namespace}))])


def names_namespace(selector: Selector) -> bool:
    """Whether the selector already says which namespace(s) it means (then no scoping)."""
    for key in selector.label_keys():
        source, bare = lbl.split(key)
        if bare == NAMESPACE_LABEL and source in (lbl.K8S, lbl.ANY):
            return True
        if source == lbl.RESERVED:
            return True
    return False
