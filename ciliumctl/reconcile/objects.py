"""Pure helpers on Kubernetes objects: identity, apply stages, the kinds Cilium generates,
comparison after dropping server-managed fields, ignore rules (JSON pointer + target) and
Secret masking. Nothing here talks to a cluster."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ciliumctl import yamlio

Obj = dict[str, Any]

#: Annotation naming the inventory that applied an object (tracked by annotation, not label).
INVENTORY_ANNOTATION = "ciliumctl.io/inventory"
#: Per-object opt-out of pruning: ``ciliumctl.io/prune: "false"``.
PRUNE_ANNOTATION = "ciliumctl.io/prune"
#: Hash of the desired object as last applied by ciliumctl (see :func:`unchanged_fast`).
HASH_ANNOTATION = "ciliumctl.io/desired-hash"

#: Kinds the Cilium agent and operator create themselves: never desired, never touched.
GENERATED_KINDS = frozenset(
    {
        ("cilium.io", "CiliumIdentity"),
        ("cilium.io", "CiliumEndpoint"),
        ("cilium.io", "CiliumEndpointSlice"),
        ("cilium.io", "CiliumNode"),
    }
)

#: API groups served by Kubernetes itself; any other group is a custom resource.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
    }
)

#: Stage 1 after CRDs: what workloads need to exist first.
BASE_KINDS = frozenset(
    {
        ("", "Namespace"),
        ("", "ServiceAccount"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "ResourceQuota"),
        ("", "LimitRange"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("scheduling.k8s.io", "PriorityClass"),
    }
)

STAGES = ("crds", "base", "workloads", "custom-resources")

#: Workload kinds whose readiness `apply` waits for.
WORKLOAD_KINDS = frozenset(
    {("apps", "DaemonSet"), ("apps", "Deployment"), ("apps", "StatefulSet"), ("batch", "Job")}
)

#: Fields the API server manages; never part of a comparison.
SERVER_METADATA = (
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
)
SERVER_ANNOTATIONS = ("deprecated.daemonset.template.generation",)


def group_of(api_version: str) -> str:
    """``apps/v1`` -> ``apps``; ``v1`` -> ``""``."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


@dataclass(frozen=True, order=True)
class Key:
    """An object's identity, independent of the API version it is read at."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @classmethod
    def of(cls, obj: Obj) -> Key:
        """The key of a full object."""
        meta = obj.get("metadata") or {}
        return cls(
            group_of(str(obj.get("apiVersion", ""))),
            str(obj.get("kind", "")),
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
        )


def is_generated(group: str, kind: str) -> bool:
    """True for the kinds Cilium creates itself (identities, endpoints, nodes)."""
    return (group, kind) in GENERATED_KINDS


def stage_of(api_version: str, kind: str) -> str:
    """Which apply stage an object belongs to (see :data:`STAGES`)."""
    group = group_of(api_version)
    if kind == "CustomResourceDefinition" and group == "apiextensions.k8s.io":
        return "crds"
    if (group, kind) in BASE_KINDS:
        return "base"
    if group in BUILTIN_GROUPS:
        return "workloads"
    return "custom-resources"


def stage_order(objects: Iterable[Obj]) -> list[list[Obj]]:
    """Objects grouped by stage, stages in apply order; namespaces lead their stage."""
    groups: dict[str, list[Obj]] = {s: [] for s in STAGES}
    for obj in objects:
        groups[stage_of(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))].append(obj)
    return [
        sorted(groups[s], key=lambda o: (o.get("kind") != "Namespace", Key.of(o))) for s in STAGES
    ]


# ----------------------------------------------------------------------------- JSON pointers
class PointerError(ValueError):
    """A JSON pointer that is not RFC 6901 syntax."""


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """``/data/ca.crt`` -> ``("data", "ca.crt")`` (RFC 6901: ``~1`` is ``/``, ``~0`` is ``~``)."""
    from jsonpointer import JsonPointer, JsonPointerException

    if pointer and not pointer.startswith("/"):
        raise PointerError(f"JSON pointer {pointer!r} must start with '/'")
    try:
        return tuple(JsonPointer(pointer).parts)
    except JsonPointerException as exc:
        raise PointerError(f"JSON pointer {pointer!r} is not valid: {exc}") from exc


def pointer_get(obj: Any, tokens: tuple[str, ...]) -> tuple[bool, Any]:
    """(found, value) at ``tokens``; the end-of-list token ``-`` is never found."""
    from jsonpointer import EndOfList, JsonPointer

    missing = object()
    value = JsonPointer.from_parts(tokens).resolve(obj, missing)
    if value is missing or isinstance(value, EndOfList):
        return False, None
    return True, value


def pointer_set(obj: Obj, tokens: tuple[str, ...], value: Any) -> None:
    """Set ``value`` at ``tokens``, creating missing mappings on the way."""
    node: Any = obj
    for depth, token in enumerate(tokens[:-1], start=1):
        found, nxt = pointer_get(obj, tokens[:depth])
        if not found or not isinstance(nxt, dict | list):
            if not isinstance(node, dict):
                return
            nxt = node[token] = {}
        node = nxt
    if isinstance(node, dict):
        node[tokens[-1]] = value
    elif isinstance(node, list) and pointer_get(node, tokens[-1:])[0]:
        node[int(tokens[-1])] = value


def pointer_remove(obj: Any, tokens: tuple[str, ...]) -> None:
    """Remove the value at ``tokens`` if it is there."""
    if not tokens or not pointer_get(obj, tokens)[0]:
        return
    parent = pointer_get(obj, tokens[:-1])[1]
    if isinstance(parent, dict):
        del parent[tokens[-1]]
    elif isinstance(parent, list):
        del parent[int(tokens[-1])]


# ----------------------------------------------------------------------------- ignore rules
@dataclass(frozen=True)
class IgnoreRule:
    """Fields (JSON pointers) whose differences do not count, on the objects a target picks.

    ``None`` in a target field matches anything. The shape is Argo CD's ``ignoreDifferences``
    entry (group, kind, name, namespace, jsonPointers) so rules export unchanged.
    """

    pointers: tuple[str, ...]
    kind: str | None = None
    group: str | None = None
    name: str | None = None
    namespace: str | None = None
    builtin: bool = False

    def matches(self, key: Key) -> bool:
        """True when this rule applies to the object with ``key``."""
        return (
            (self.kind is None or self.kind == key.kind)
            and (self.group is None or self.group == key.group)
            and (self.name is None or self.name == key.name)
            and (self.namespace is None or self.namespace == key.namespace)
        )

    def as_argocd(self) -> dict[str, Any]:
        """This rule as an Argo CD ``ignoreDifferences`` entry."""
        out: dict[str, Any] = {"group": self.group or "", "kind": self.kind or "*"}
        if self.name:
            out["name"] = self.name
        if self.namespace:
            out["namespace"] = self.namespace
        out["jsonPointers"] = list(self.pointers)
        return out


_CERT_FIELDS = ("/data/ca.crt", "/data/tls.crt", "/data/tls.key")
#: Secrets whose certificates Cilium (Helm-generated or the certgen job) rotates itself.
HUBBLE_CERT_SECRETS = (
    "hubble-server-certs",
    "hubble-relay-client-certs",
    "hubble-relay-server-certs",
    "hubble-ui-client-certs",
    "hubble-metrics-server-certs",
)


def builtin_ignore_rules(namespace: str) -> list[IgnoreRule]:
    """The fields Cilium rotates itself: the Hubble CA and certificate data."""
    rules = [
        IgnoreRule(("/data/ca.crt", "/data/ca.key"), "Secret", "", "cilium-ca", namespace, True),
        IgnoreRule(("/data/ca.crt",), "ConfigMap", "", "hubble-ca-cert", namespace, True),
    ]
    rules += [
        IgnoreRule(_CERT_FIELDS, "Secret", "", name, namespace, True)
        for name in HUBBLE_CERT_SECRETS
    ]
    return rules


def _matching(rules: Iterable[IgnoreRule], key: Key) -> list[tuple[str, ...]]:
    return [parse_pointer(p) for r in rules if r.matches(key) for p in r.pointers]


def respect_ignored(desired: Obj, live: Obj | None, rules: Iterable[IgnoreRule]) -> Obj:
    """A copy of ``desired`` whose ignored fields hold the live values (or are left out when
    the live object lacks them), so applying it never changes an ignored field."""
    out = copy.deepcopy(desired)
    if live is None:
        return out
    for tokens in _matching(rules, Key.of(desired)):
        found, value = pointer_get(live, tokens)
        if found:
            pointer_set(out, tokens, copy.deepcopy(value))
        else:
            pointer_remove(out, tokens)
    return out


def normalize(obj: Obj, rules: Iterable[IgnoreRule] = ()) -> Obj:
    """A copy of ``obj`` for comparison: no server-managed fields, no ignored fields."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for field in SERVER_METADATA:
            meta.pop(field, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            for name in SERVER_ANNOTATIONS:
                annotations.pop(name, None)
            if not annotations:
                meta.pop("annotations", None)
        if meta.get("labels") == {}:
            meta.pop("labels", None)
    for tokens in _matching(rules, Key.of(obj)):
        pointer_remove(out, tokens)
    return out


# ----------------------------------------------------------------------------- fast path
def desired_hash(obj: Obj) -> str:
    """A digest of a desired object (without its own hash annotation)."""
    import hashlib
    import json

    clean = copy.copy(obj)
    meta = dict(clean.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != HASH_ANNOTATION}
    meta["annotations"] = annotations
    clean["metadata"] = meta
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def is_subset(desired: Any, live: Any) -> bool:
    """True when every field of ``desired`` has the same value in ``live`` (lists must have
    the same length and match item by item; ``live`` may have more fields)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            k in live and is_subset(v, live[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(is_subset(d, v) for d, v in zip(desired, live, strict=True))
        )
    return bool(desired == live) and type(desired) is type(live)


def unchanged_fast(prepared: Obj, live: Obj, field_manager: str = "ciliumctl") -> bool:
    """True when a server-side apply of ``prepared`` (as ``field_manager``) is certainly a
    no-op, so the dry run can be skipped.

    Every desired field must already hold its value live (nothing would be set), and the
    apply must not remove anything: either ciliumctl last applied exactly this desired
    object (the hash annotation matches, so it owns no field the object lacks) or it has
    never applied the object (no ``Apply`` entry of its own in managedFields). Anything
    else needs the dry run.
    """
    if not is_subset(prepared, live):
        return False
    wanted = ((prepared.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)
    current = ((live.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)
    if wanted is not None:
        return bool(wanted == current)
    managed = (live.get("metadata") or {}).get("managedFields") or []
    return not any(
        m.get("manager") == field_manager and m.get("operation") == "Apply"
        for m in managed
        if isinstance(m, dict)
    )


# ----------------------------------------------------------------------------- display
MASK = "***"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def mask_secrets(before: Obj | None, after: Obj | None) -> tuple[Obj | None, Obj | None]:
    """Copies with Secret values replaced by ``***`` (``*** (before)``/``*** (after)`` where
    they differ, as ``kubectl diff`` does); other kinds are returned unchanged."""
    sample = after if after is not None else before
    if sample is None or sample.get("kind") != "Secret" or group_of(sample["apiVersion"]) != "":
        return before, after
    b = copy.deepcopy(before) if before is not None else None
    a = copy.deepcopy(after) if after is not None else None
    for field in ("data", "stringData"):
        bd = b.get(field) if b is not None else None
        ad = a.get(field) if a is not None else None
        bd = bd if isinstance(bd, dict) else {}
        ad = ad if isinstance(ad, dict) else {}
        for key in set(bd) | set(ad):
            if key in bd and key in ad and bd[key] == ad[key]:
                bd[key] = ad[key] = MASK
                continue
            if key in bd:
                bd[key] = f"{MASK} (before)"
            if key in ad:
                ad[key] = f"{MASK} (after)"
    for obj in (b, a):
        annotations = ((obj or {}).get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            annotations[LAST_APPLIED] = MASK
    return b, a


def json_patch(before: Obj, after: Obj) -> list[dict[str, Any]]:
    """The RFC 6902 patch that turns ``before`` into ``after`` (Secret values masked)."""
    import jsonpatch

    b, a = mask_secrets(before, after)
    patch: list[dict[str, Any]] = jsonpatch.make_patch(b, a).patch
    return patch


def unified_diff(key: Key, before: Obj | None, after: Obj | None) -> str:
    """A unified diff of two object views (Secrets masked); empty when they are equal."""
    b, a = mask_secrets(before, after)
    old = yamlio.dump(b, sort_keys=True).splitlines(keepends=True) if b is not None else []
    new = yamlio.dump(a, sort_keys=True).splitlines(keepends=True) if a is not None else []
    name = f"{key.kind}/{key.namespace + '/' if key.namespace else ''}{key.name}"
    return "".join(difflib.unified_diff(old, new, f"live/{name}", f"desired/{name}"))
