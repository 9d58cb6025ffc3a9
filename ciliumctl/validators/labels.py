"""Identity-relevant label patterns: parse them as the agent does and count identities.

A pattern is ``[source:][!]regex``. Regexes are implicitly anchored at the start of the
label key. Exclusions (``!``) and the default patterns below always apply; once the user
adds one inclusive pattern, only labels matching an inclusive pattern stay relevant (the
default inclusive patterns keep namespaces, service accounts, cluster names,
``app.kubernetes.io`` and reserved labels). When an inclusive and an exclusive pattern
both match, the longer match wins.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ciliumctl.validators import re2check
from ciliumctl.validators.findings import Finding, Severity

#: Label keys Cilium adds to every pod's labels (source k8s).
NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
SERVICE_ACCOUNT_LABEL = "io.cilium.k8s.policy.serviceaccount"
CLUSTER_LABEL = "io.cilium.k8s.policy.cluster"

#: Inclusive patterns that are part of the configuration from the start.
DEFAULT_INCLUSIVE: tuple[str, ...] = (
    "reserved:.*",
    r"io\.kubernetes\.pod\.namespace",
    r"io\.cilium\.k8s\.namespace\.labels",
    r"io\.cilium\.k8s\.policy\.cluster",
    r"io\.cilium\.k8s\.policy\.serviceaccount",
    r"app\.kubernetes\.io",
)
#: Exclusive patterns that are part of the configuration from the start.
DEFAULT_EXCLUSIVE: tuple[str, ...] = (
    r"!io\.kubernetes",
    r"!kubernetes\.io",
    r"!statefulset\.kubernetes\.io/pod-name",
    r"!apps\.kubernetes\.io/pod-index",
    r"!batch\.kubernetes\.io/job-completion-index",
    r"!batch\.kubernetes\.io/controller-uid",
    r"!.*beta\.kubernetes\.io",
    r"!k8s\.io",
    r"!pod-template-generation",
    r"!pod-template-hash",
    r"!controller-revision-hash",
    r"!annotation.*",
    r"!controller-uid",
    r"!etcd_node",
)
#: Label sources a pattern may name.
SOURCES = frozenset({"k8s", "container", "reserved", "unspec", "cilium-generated"})
#: Cluster-local security identities available (16 bits, 0 and reserved ones excluded).
IDENTITY_LIMIT = 65535
#: Warn when the identity count reaches this share of the limit.
WARN_SHARE = 0.8
_UNESCAPED_DOT = re.compile(r"(?<![\\])[A-Za-z0-9]\.[A-Za-z]")


@dataclass(frozen=True)
class LabelPattern:
    """One parsed pattern."""

    text: str
    source: str
    regex: str
    exclude: bool
    origin: str  # "default" or "user"

    def match_length(self, source: str, key: str) -> int | None:
        """Length of the match at the start of ``key``, or None when it does not match."""
        if self.source and self.source != source:
            return None
        span = re2check.search_span(self.regex, key)
        if span is None or span[0] != 0:
            return None
        return span[1]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``-o json``."""
        return {
            "pattern": self.text,
            "source": self.source or None,
            "regex": self.regex,
            "type": "exclude" if self.exclude else "include",
            "origin": self.origin,
        }


def parse_pattern(text: str) -> tuple[LabelPattern | None, str | None]:
    """Parse ``[source:][!]regex``; returns (pattern, None) or (None, why it is invalid)."""
    source, sep, prefix = text.partition(":")
    if not sep:
        source, prefix = "", text
    if not prefix:
        return None, f"pattern {text!r} has no regular expression after the source"
    exclude = prefix.startswith("!")
    if exclude:
        prefix = prefix[1:]
    why = re2check.check(prefix)
    if why:
        return None, f"pattern {text!r} is not a valid RE2 regular expression: {why}"
    return LabelPattern(text, source, prefix, exclude, "user"), None


def split_config(value: str) -> list[str]:
    """The space-separated patterns of the ``labels`` setting."""
    return [part for part in value.split() if part]


@dataclass
class LabelFilter:
    """Default plus user patterns, and whether an inclusive user pattern turned on allow-listing.

    ``allow_list`` is True once a user pattern is inclusive.
    """

    patterns: list[LabelPattern]
    allow_list: bool
    #: answers by (key, source): the agent asks for every label of every pod update
    _seen: dict[tuple[str, str], bool] = field(default_factory=dict, repr=False, compare=False)

    def relevant(self, key: str, source: str = "k8s") -> bool:
        """Whether the label ``source:key`` is identity-relevant."""
        seen = self._seen.get((key, source))
        if seen is None:
            if len(self._seen) > 65536:
                self._seen.clear()  # bounded: label keys are few, but nothing is assumed
            seen = self._seen[(key, source)] = self._relevant(key, source)
        return seen

    def _relevant(self, key: str, source: str) -> bool:
        included, ignored = 0, 0
        for pattern in self.patterns:
            length = pattern.match_length(source, key)
            if length is None:
                continue
            if pattern.exclude:
                if ignored == 0 or length < ignored:
                    ignored = length
            elif length > included:
                included = length
        return (not self.allow_list and ignored == 0) or included > ignored

    def identity_labels(self, labels: dict[str, str], source: str = "k8s") -> frozenset[str]:
        """The identity-relevant ``key=value`` strings of one endpoint."""
        return frozenset(f"{k}={v}" for k, v in labels.items() if self.relevant(k, source))


def default_filter() -> LabelFilter:
    """The configuration without any user pattern."""
    return build_filter([])[0]


def build_filter(user: Iterable[str], source: str = "") -> tuple[LabelFilter, list[Finding]]:
    """The filter for ``user`` patterns (added to the defaults) and the problems found.

    ``source`` names where the patterns came from (the ``file`` of each finding).
    """
    patterns: list[LabelPattern] = []
    for text in (*DEFAULT_INCLUSIVE, *DEFAULT_EXCLUSIVE):
        parsed, _ = parse_pattern(text)
        assert parsed is not None, text
        patterns.append(LabelPattern(text, parsed.source, parsed.regex, parsed.exclude, "default"))
    defaults = {p.text for p in patterns}
    findings: list[Finding] = []
    allow_list = False
    for index, text in enumerate(user):
        where = ("labels", index)
        parsed, why = parse_pattern(text)
        if parsed is None:
            findings.append(
                Finding(
                    Severity.ERROR,
                    "label-pattern",
                    str(why),
                    "write [source:][!]regex with RE2 syntax, e.g. k8s:!controller-uid",
                    path=where,
                    file=source,
                )
            )
            continue
        findings.extend(_pattern_warnings(parsed, where, defaults, source))
        patterns.append(parsed)
        if not parsed.exclude:
            allow_list = True
    label_filter = LabelFilter(patterns, allow_list)
    findings.extend(_without_effect(label_filter, source))
    if allow_list:
        findings.append(
            Finding(
                Severity.NOTE,
                "allow-list",
                "an inclusive pattern is configured: only labels matching an inclusive "
                "pattern (yours and the defaults: " + ", ".join(DEFAULT_INCLUSIVE) + ") are "
                "identity-relevant",
                "add inclusive patterns for every label your policies select on",
                file=source,
            )
        )
    for key, what in (
        (NAMESPACE_LABEL, "namespace"),
        (SERVICE_ACCOUNT_LABEL, "service account"),
    ):
        if not label_filter.relevant(key):
            severity = Severity.ERROR if key == NAMESPACE_LABEL else Severity.WARNING
            findings.append(
                Finding(
                    severity,
                    "label-core",
                    f"the {what} label {key} is no longer identity-relevant: pods of "
                    f"different {what}s share identities and policies selecting by {what} "
                    "stop working",
                    f"remove the pattern that excludes {key}",
                    file=source,
                )
            )
    return label_filter, findings


_LITERAL = re.compile(r"^(?:[A-Za-z0-9_/-]|\\\.)+\$?$")


def _without_effect(label_filter: LabelFilter, source: str) -> list[Finding]:
    """User exclusions of a literal key that a longer inclusive pattern still keeps."""
    out = []
    for pattern in label_filter.patterns:
        if pattern.origin != "user" or not pattern.exclude or not _LITERAL.match(pattern.regex):
            continue
        key = pattern.regex.rstrip("$").replace("\\.", ".")
        if label_filter.relevant(key, pattern.source or "k8s"):
            out.append(
                Finding(
                    Severity.WARNING,
                    "label-no-effect",
                    f"exclusion {pattern.text!r} has no effect: a longer inclusive pattern "
                    f"keeps {key} identity-relevant",
                    "remove the exclusion (this label cannot be excluded)",
                    file=source,
                )
            )
    return out


def _pattern_warnings(
    pattern: LabelPattern, where: tuple[str | int, ...], defaults: set[str], source: str
) -> list[Finding]:
    out: list[Finding] = []
    text = pattern.text
    if pattern.source and pattern.source not in SOURCES:
        fix = f"use one of the sources {', '.join(sorted(SOURCES))}, or no source"
        if pattern.source.startswith("!"):
            fix = f"put '!' after the colon: {pattern.source[1:]}:!{pattern.regex}"
        out.append(
            Finding(
                Severity.WARNING,
                "label-source",
                f"pattern {text!r} names source {pattern.source!r}, which no label has: it "
                "never matches",
                fix,
                path=where,
                file=source,
            )
        )
    if text in defaults:
        out.append(
            Finding(
                Severity.NOTE,
                "label-default",
                f"pattern {text!r} is already a default pattern",
                "remove it",
                path=where,
                file=source,
            )
        )
    empty_match = not pattern.regex or re2check.search_span(pattern.regex, "") == (0, 0)
    if empty_match and pattern.exclude:
        out.append(
            Finding(
                Severity.WARNING,
                "label-empty-match",
                f"exclusion {text!r} can match zero characters; a zero-length match "
                "excludes nothing",
                "make the pattern match at least one character",
                path=where,
                file=source,
            )
        )
    if _UNESCAPED_DOT.search(pattern.regex):
        escaped = re.sub(r"(?<!\\)\.", r"\\.", pattern.regex)
        out.append(
            Finding(
                Severity.WARNING,
                "label-unescaped-dot",
                f"pattern {text!r} has an unescaped '.', which matches any character",
                f"escape dots in label keys: {escaped}",
                path=where,
                file=source,
            )
        )
    return out


# ----------------------------------------------------------------- identities of pods


class LabelsClient(Protocol):
    """Client calls ``validate labels --from-cluster`` needs (subset of ciliumctl.k8s.Client)."""

    def list(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object of ``kind``."""
        ...

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """One object or None."""
        ...


@dataclass
class KeyImpact:
    """How much one label key multiplies identities."""

    key: str
    identities_saved: int
    distinct_values: int
    pods: int
    kind: str  # "per-pod", "hash", "timestamp" or "other"
    examples: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``-o json``."""
        return {
            "key": self.key,
            "identitiesSaved": self.identities_saved,
            "distinctValues": self.distinct_values,
            "pods": self.pods,
            "kind": self.kind,
            "examples": self.examples,
            "suggestedPattern": "!" + quote_meta(self.key),
        }


@dataclass
class IdentityCount:
    """Identities today's pods get under one configuration."""

    identities: int
    pods: int
    impacts: list[KeyImpact] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``-o json``."""
        return {
            "identities": self.identities,
            "pods": self.pods,
            "multipliers": [i.to_dict() for i in self.impacts],
        }


@dataclass
class LabelsResult:
    """The outcome of ``validate labels``."""

    source: str
    user_patterns: list[str]
    filter: LabelFilter
    findings: list[Finding]
    configured: IdentityCount | None = None
    defaults: IdentityCount | None = None

    def failed(self, warnings_as_errors: bool = False) -> bool:
        """True when the command must exit 1."""
        bad = {Severity.ERROR, Severity.WARNING} if warnings_as_errors else {Severity.ERROR}
        return any(f.severity in bad for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``-o json``."""
        return {
            "source": self.source,
            "patterns": [p.to_dict() for p in self.filter.patterns],
            "allowList": self.filter.allow_list,
            "findings": [f.to_dict() for f in self.findings],
            "identityLimit": IDENTITY_LIMIT,
            "configured": self.configured.to_dict() if self.configured else None,
            "defaults": self.defaults.to_dict() if self.defaults else None,
        }


def quote_meta(text: str) -> str:
    """Escape regex metacharacters the way Go's regexp.QuoteMeta does."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def pod_labels(
    pod: dict[str, Any], namespace_labels: dict[str, str], cluster: str
) -> dict[str, str]:
    """The k8s-source labels Cilium derives for a pod's endpoint."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    labels[NAMESPACE_LABEL] = str(meta.get("namespace", "default"))
    for key, value in namespace_labels.items():
        labels[NAMESPACE_LABELS_PREFIX + key] = value
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    labels[SERVICE_ACCOUNT_LABEL] = str(account)
    labels[CLUSTER_LABEL] = cluster
    return labels


def has_identity(pod: dict[str, Any]) -> bool:
    """Pods that get a Cilium endpoint: not host-network, not finished."""
    spec = pod.get("spec") or {}
    phase = (pod.get("status") or {}).get("phase")
    return not spec.get("hostNetwork") and phase not in ("Succeeded", "Failed")


def count_identities(endpoints: list[dict[str, str]], label_filter: LabelFilter) -> IdentityCount:
    """Distinct identity-relevant label sets, and which keys multiply them."""
    relevant_keys: dict[str, bool] = {}

    def is_relevant(key: str) -> bool:
        if key not in relevant_keys:
            relevant_keys[key] = label_filter.relevant(key)
        return relevant_keys[key]

    sets = [frozenset((k, v) for k, v in labels.items() if is_relevant(k)) for labels in endpoints]
    total = len(set(sets))
    values: dict[str, Counter[str]] = defaultdict(Counter)
    for labels in sets:
        for key, value in labels:
            values[key][value] += 1
    impacts = []
    for key, counter in values.items():
        without = len({frozenset(item for item in s if item[0] != key) for s in sets})
        saved = total - without
        if saved <= 0:
            continue
        pods = sum(counter.values())
        impacts.append(
            KeyImpact(
                key=key,
                identities_saved=saved,
                distinct_values=len(counter),
                pods=pods,
                kind=_classify(list(counter), pods),
                examples=sorted(counter)[:3],
            )
        )
    impacts.sort(key=lambda i: (-i.identities_saved, i.key))
    return IdentityCount(identities=total, pods=len(endpoints), impacts=impacts)


_HASH = re.compile(r"^(?=.*[0-9])[0-9a-f]{7,}$|^(?=.*[0-9])(?=.*[a-z])[a-z0-9]{8,10}$")
_TIMESTAMP = re.compile(
    r"^\d{9,13}$|^\d{4}-?\d{2}-?\d{2}([Tt_ -]?\d{2}[:.-]?\d{2}([:.-]?\d{2})?)?[Zz]?$"
)


def _classify(values: list[str], pods: int) -> str:
    if values and sum(1 for v in values if _TIMESTAMP.match(v)) * 2 > len(values):
        return "timestamp"
    if values and sum(1 for v in values if _HASH.match(v)) * 2 > len(values):
        return "hash"
    if pods >= 3 and len(values) == pods:
        return "per-pod"
    return "other"


def analyse_cluster(
    client: LabelsClient, cilium_namespace: str, labels_flag: str | None
) -> LabelsResult:
    """Identities today's pods get with the configured patterns and with the defaults.

    Patterns come from ``labels_flag`` or the ``labels`` key of the ``cilium-config``
    ConfigMap in ``cilium_namespace``.
    """
    from ciliumctl.errors import CiliumctlError

    config = client.get_or_none("v1", "ConfigMap", "cilium-config", cilium_namespace)
    data = (config or {}).get("data") or {}
    if labels_flag is not None:
        source, text = "--labels", labels_flag
    elif config is None:
        raise CiliumctlError(
            f"ConfigMap {cilium_namespace}/cilium-config not found, so the label patterns "
            "are unknown",
            "pass --labels '<patterns>' or -n with the namespace Cilium runs in",
        )
    else:
        source, text = (
            f"ConfigMap {cilium_namespace}/cilium-config key labels",
            str(data.get("labels", "")),
        )
    cluster = str(data.get("cluster-name") or "default")
    user = split_config(text)
    label_filter, findings = build_filter(user, source)
    namespaces = {
        (ns.get("metadata") or {}).get("name"): {
            str(k): str(v) for k, v in ((ns.get("metadata") or {}).get("labels") or {}).items()
        }
        for ns in client.list("v1", "Namespace")
    }
    endpoints = []
    for pod in client.list("v1", "Pod"):
        if not has_identity(pod):
            continue
        namespace = (pod.get("metadata") or {}).get("namespace", "default")
        endpoints.append(pod_labels(pod, namespaces.get(namespace, {}), cluster))
    configured = count_identities(endpoints, label_filter)
    defaults = count_identities(endpoints, default_filter())
    findings.extend(_identity_findings(configured, source))
    return LabelsResult(source, user, label_filter, findings, configured, defaults)


def _identity_findings(count: IdentityCount, source: str) -> list[Finding]:
    out = []
    share = count.identities / IDENTITY_LIMIT
    if count.identities >= IDENTITY_LIMIT or share >= WARN_SHARE:
        severity = Severity.ERROR if count.identities >= IDENTITY_LIMIT else Severity.WARNING
        out.append(
            Finding(
                severity,
                "identity-limit",
                f"{count.identities} identities for {count.pods} pods: {share:.0%} of the "
                f"{IDENTITY_LIMIT} identity limit",
                "exclude the label keys that multiply identities (see the multipliers)",
                file=source,
            )
        )
    for impact in count.impacts:
        if impact.kind in ("per-pod", "hash", "timestamp"):
            out.append(
                Finding(
                    Severity.WARNING,
                    "identity-multiplier",
                    f"label {impact.key} ({impact.kind} values, {impact.distinct_values} "
                    f"distinct on {impact.pods} pods) adds {impact.identities_saved} "
                    "identities",
                    f"exclude it: add !{quote_meta(impact.key)} to the labels setting",
                    file=source,
                )
            )
    return out


def validate_patterns(user: list[str], source: str = "--labels") -> LabelsResult:
    """Check patterns without a cluster."""
    label_filter, findings = build_filter(user, source)
    return LabelsResult(source, user, label_filter, findings)
