"""The effective agent configuration of a node, computed as the 1.18 agent's build-config step.

The agent's ``config`` init container (``cilium-dbg build-config``) merges its configuration
sources into the directory the agent reads. The rules, reproduced here over plain data so
they can be tested rule by rule and run for thousands of nodes without a cluster:

* Sources come from ``--source`` (default ``config-map:cilium-config`` then
  ``cilium-node-config:<namespace>``), applied in order; a later source overrides keys of
  an earlier one. ``node:<name>`` reads ``config.cilium.io/KEY`` labels then annotations.
* A ``config-map`` source that is missing or empty contributes nothing.
* A ``cilium-node-config`` source takes the CiliumNodeConfigs of its namespace whose
  ``nodeSelector`` matches the node's labels (one named CNC when the source names one,
  whatever its selector); a CNC with empty ``defaults`` or without a selector is ignored;
  matching CNCs are applied in lexicographic name order, later names winning. v2 objects
  override v2alpha1 objects key by key. Keys that are not valid ConfigMap keys are skipped.
* ``--allow-config-keys`` (when non-empty) or else ``--deny-config-keys`` filter the keys of
  every source except the first.
* The result also carries ``config-sources``: the descriptions of the sources that
  contributed, in order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ciliumctl.errors import CiliumctlError, UsageError
from ciliumctl.nodeconfig.selectors import Selector, SelectorError, compile_selector

KIND_CONFIGMAP = "config-map"
KIND_NODECONFIG = "cilium-node-config"
KIND_NODE = "node"
KINDS = (KIND_CONFIGMAP, KIND_NODECONFIG, KIND_NODE)
CONFIG_PREFIX = "config.cilium.io"
CONFIG_SOURCES_KEY = "config-sources"
V2 = "cilium.io/v2"
V2ALPHA1 = "cilium.io/v2alpha1"
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class NodeConfigError(CiliumctlError):
    """Per-node configuration that cannot be computed or applied."""


def is_configmap_key(key: str) -> bool:
    """The Kubernetes ConfigMap key rule the agent applies to override keys."""
    return (
        0 < len(key) <= 253
        and bool(_CONFIGMAP_KEY.match(key))
        and key not in (".", "..")
        and not key.startswith("..")
    )


@dataclass(frozen=True)
class ConfigSource:
    """One ``--source`` of build-config; ``name`` empty for a node source means "this node"."""

    kind: str
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}"


def default_sources(namespace: str) -> list[ConfigSource]:
    """The sources build-config uses when the DaemonSet passes no ``--source``."""
    return [
        ConfigSource(KIND_CONFIGMAP, namespace, "cilium-config"),
        ConfigSource(KIND_NODECONFIG, namespace, ""),
    ]


def parse_sources(specs: Iterable[str], namespace: str) -> list[ConfigSource]:
    """``--source`` values (each may hold a comma-separated list) as sources, as the agent does.

    ``namespace`` is the agent's namespace (``CILIUM_K8S_NAMESPACE``); a node source without
    a name refers to the node the agent runs on.
    """
    out: list[ConfigSource] = []
    for spec in specs:
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            kind, _, rest = item.partition(":")
            if kind == KIND_CONFIGMAP:
                ns, name = namespace, "cilium-config"
            elif kind == KIND_NODECONFIG:
                ns, name = namespace, ""
            elif kind == KIND_NODE:
                ns, name = "", ""
            else:
                raise UsageError(
                    f"unknown config source {item!r}",
                    f"a source is one of {', '.join(k + ':...' for k in KINDS)}",
                )
            if rest:
                first, slash, second = rest.partition("/")
                if slash:
                    ns, name = first, second
                elif kind == KIND_CONFIGMAP:
                    name = first
                elif kind == KIND_NODECONFIG:
                    ns = first
                else:
                    name = first
            out.append(ConfigSource(kind, ns, name))
    return out


@dataclass(frozen=True)
class Setting:
    """The value of one key and the source description that set it."""

    value: str
    source: str


@dataclass
class Effective:
    """A node's effective configuration with provenance."""

    node: str
    values: dict[str, Setting]
    sources: list[str]
    warnings: list[str] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)
    digest: str = ""

    def plain(self) -> dict[str, str]:
        """Key -> value, without provenance."""
        return {k: s.value for k, s in self.values.items()}

    def fingerprint(self) -> str:
        """A digest of the values the agent runs with (``config-sources`` excluded)."""
        if not self.digest:
            self.digest = fingerprint(self.plain())
        return self.digest

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: key -> {value, source}, plus sources and warnings."""
        return {
            "node": self.node,
            "sources": list(self.sources),
            "config": {
                k: {"value": s.value, "source": s.source} for k, s in sorted(self.values.items())
            },
            "warnings": list(self.warnings),
            "ignored": list(self.ignored),
        }


def fingerprint(values: Mapping[str, str]) -> str:
    """A stable digest of a configuration (``config-sources`` excluded)."""
    digest = hashlib.sha256()
    for key in sorted(values):
        if key == CONFIG_SOURCES_KEY:
            continue
        digest.update(key.encode() + b"\0" + values[key].encode() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class NodeInfo:
    """The parts of a Node that build-config reads."""

    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _CNC:
    name: str
    namespace: str
    version: str
    defaults: tuple[tuple[str, str], ...]
    selector: Selector | None


def _compile_cncs(cncs: Iterable[Mapping[str, Any]]) -> list[_CNC]:
    out: list[_CNC] = []
    for obj in cncs:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        name = str(meta.get("name", ""))
        defaults = spec.get("defaults") or {}
        if not isinstance(defaults, dict):
            defaults = {}
        raw = spec.get("nodeSelector")
        selector: Selector | None = None
        if raw is not None and defaults:
            try:
                selector = compile_selector(raw, f"CiliumNodeConfig {name} spec.nodeSelector")
            except SelectorError as exc:
                raise NodeConfigError(
                    f"{exc.message}; the agents' build-config step fails on every node "
                    "while this CiliumNodeConfig exists",
                    f"fix or delete CiliumNodeConfig {meta.get('namespace', '')}/{name}",
                ) from exc
        version = V2ALPHA1 if str(obj.get("apiVersion", V2)) == V2ALPHA1 else V2
        out.append(
            _CNC(
                name,
                str(meta.get("namespace", "")),
                version,
                tuple((str(k), str(v)) for k, v in defaults.items()),
                selector,
            )
        )
    out.sort(key=lambda c: c.name)
    return out


@dataclass(frozen=True)
class Inputs:
    """Everything build-config reads, as plain data.

    ``configmaps`` maps (namespace, name) to ConfigMap data for the ConfigMaps that exist;
    ``cncs`` holds CiliumNodeConfig objects (dicts with apiVersion, metadata, spec).
    """

    namespace: str
    configmaps: Mapping[tuple[str, str], Mapping[str, str]]
    cncs: Sequence[Mapping[str, Any]] = ()
    sources: Sequence[ConfigSource] | None = None
    allow_keys: Sequence[str] = ()
    deny_keys: Sequence[str] = ()


class Engine:
    """Resolves nodes against one set of inputs; selectors are compiled once."""

    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.sources = (
            list(inputs.sources)
            if inputs.sources is not None
            else default_sources(inputs.namespace)
        )
        self._cncs = _compile_cncs(inputs.cncs)
        self._allow = frozenset(k for k in inputs.allow_keys if k)
        self._deny = frozenset(k for k in inputs.deny_keys if k)
        self._cache: dict[tuple[Any, ...], Effective] = {}
        self._cm_layers: dict[ConfigSource, dict[str, Setting]] = {}
        self._by_namespace: dict[str, list[_CNC]] = {}
        for cnc in self._cncs:
            if cnc.defaults:
                self._by_namespace.setdefault(cnc.namespace, []).append(cnc)

    # ------------------------------------------------------------------ filters
    def overridable(self, key: str) -> bool:
        """Whether a source other than the first may set ``key``."""
        if self._allow:
            return key in self._allow
        if self._deny:
            return key not in self._deny
        return True

    def blocked_reason(self, key: str) -> str | None:
        """Why a CiliumNodeConfig cannot set ``key`` (None when it can)."""
        if self._allow and key not in self._allow:
            return f"{key} is not in the agent's --allow-config-keys"
        if not self._allow and key in self._deny:
            return f"{key} is in the agent's --deny-config-keys"
        return None

    # ------------------------------------------------------------------ matching
    def matching_cncs(self, source: ConfigSource, labels: Mapping[str, str]) -> list[_CNC]:
        """The CNCs a node-config source applies to a node with ``labels``, by name."""
        candidates = self._by_namespace.get(source.namespace, ())
        if source.name:
            return [c for c in candidates if c.name == source.name]
        return [c for c in candidates if c.selector is not None and c.selector.matches(labels)]

    def matching_names(self, labels: Mapping[str, str]) -> list[str]:
        """Names of every CNC (any node-config source) that applies to these labels."""
        names: list[str] = []
        for source in self.sources:
            if source.kind == KIND_NODECONFIG:
                names.extend(c.name for c in self.matching_cncs(source, labels))
        return sorted(set(names))

    # ------------------------------------------------------------------ resolve
    def resolve(self, node: NodeInfo, nodes: Mapping[str, NodeInfo] | None = None) -> Effective:
        """The effective configuration of ``node``.

        ``nodes`` is needed only for ``node:<other>`` sources that name another node. Nodes
        that match the same CiliumNodeConfigs share one computation.
        """
        matches: list[list[_CNC]] = []
        key_parts: list[Any] = []
        for source in self.sources:
            if source.kind == KIND_NODECONFIG:
                found = self.matching_cncs(source, node.labels)
                matches.append(found)
                key_parts.append(tuple(id(c) for c in found))
            else:
                matches.append([])
                if source.kind == KIND_NODE:
                    key_parts.append(node.name)
        key = tuple(key_parts)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._resolve(node, nodes or {}, matches)
            cached.fingerprint()
            self._cache[key] = cached
        return Effective(
            node.name,
            cached.values,
            cached.sources,
            list(cached.warnings),
            list(cached.ignored),
            cached.digest,
        )

    def _resolve(
        self, node: NodeInfo, nodes: Mapping[str, NodeInfo], matches: list[list[_CNC]]
    ) -> Effective:
        values: dict[str, Setting] = {}
        used: list[str] = []
        warnings: list[str] = []
        ignored: list[dict[str, str]] = []
        for index, source in enumerate(self.sources):
            pairs, descs = self._read(source, node, nodes, warnings, matches[index])
            if index > 0:
                for key in list(pairs):
                    if not self.overridable(key):
                        ignored.append(
                            {
                                "key": key,
                                "value": pairs[key].value,
                                "source": pairs[key].source,
                                "reason": self.blocked_reason(key) or "",
                            }
                        )
                        del pairs[key]
            if pairs:
                values.update(pairs)
                used.extend(descs)
        values[CONFIG_SOURCES_KEY] = Setting(",".join(used), "build-config")
        return Effective(node.name, values, used, warnings, ignored)

    def _read(
        self,
        source: ConfigSource,
        node: NodeInfo,
        nodes: Mapping[str, NodeInfo],
        warnings: list[str],
        matching: list[_CNC],
    ) -> tuple[dict[str, Setting], list[str]]:
        if source.kind == KIND_CONFIGMAP:
            layer = self._cm_layers.get(source)
            if layer is None:
                data = self.inputs.configmaps.get((source.namespace, source.name)) or {}
                desc = str(source)
                layer = {str(k): Setting(str(v), desc) for k, v in data.items()}
                self._cm_layers[source] = layer
            return (dict(layer), [str(source)]) if layer else ({}, [])
        if source.kind == KIND_NODE:
            target = node if not source.name or source.name == node.name else nodes.get(source.name)
            if target is None:
                raise NodeConfigError(
                    f"config source {source} names node {source.name!r}, which does not exist",
                    "fix the agent's --source flag (daemon.configSources)",
                )
            return _node_overrides(target, warnings)
        return self._read_cncs(source, warnings, matching)

    def _read_cncs(
        self, source: ConfigSource, warnings: list[str], matching: list[_CNC]
    ) -> tuple[dict[str, Setting], list[str]]:
        merged: dict[str, Setting] = {}
        descs: dict[str, list[str]] = {V2: [], V2ALPHA1: []}
        for version in (V2ALPHA1, V2):
            layer: dict[str, Setting] = {}
            setters: dict[str, list[str]] = {}
            for cnc in (c for c in matching if c.version == version):
                desc = f"{KIND_NODECONFIG}:{source.namespace}/{cnc.name}"
                descs[version].append(desc)
                for key, value in cnc.defaults:
                    if not is_configmap_key(key):
                        warnings.append(
                            f"CiliumNodeConfig {cnc.name}: key {key!r} is not a valid "
                            "ConfigMap key; the agent skips it"
                        )
                        continue
                    layer[key] = Setting(value, desc)
                    setters.setdefault(key, []).append(cnc.name)
            for key, names in sorted(setters.items()):
                if len(names) > 1:
                    warnings.append(
                        f"{key} is set by several CiliumNodeConfigs ({', '.join(names)}); "
                        f"{names[-1]} wins (last in name order)"
                    )
            merged.update(layer)
        if not merged and not descs[V2] and not descs[V2ALPHA1]:
            return {}, []
        return merged, descs[V2] + descs[V2ALPHA1]


def _node_overrides(node: NodeInfo, warnings: list[str]) -> tuple[dict[str, Setting], list[str]]:
    out: dict[str, Setting] = {}
    desc = f"{KIND_NODE}:{node.name}"
    for kind, mapping in (("label", node.labels), ("annotation", node.annotations)):
        for name, value in mapping.items():
            if not name.startswith(CONFIG_PREFIX):
                continue
            _, slash, key = name.partition("/")
            if not slash:
                warnings.append(f"node {node.name}: {kind} {name} has no /KEY; the agent skips it")
                continue
            if not is_configmap_key(key):
                warnings.append(
                    f"node {node.name}: {kind} {name}: {key!r} is not a valid ConfigMap key"
                )
                continue
            out[key] = Setting(str(value), desc)
    if not out:
        return {}, []
    return out, [desc]


def resolve(
    node: NodeInfo, inputs: Inputs, nodes: Mapping[str, NodeInfo] | None = None
) -> Effective:
    """The effective configuration of one node (see the module docstring for the rules)."""
    return Engine(inputs).resolve(node, nodes)


def resolve_all(nodes: Sequence[NodeInfo], inputs: Inputs) -> dict[str, Effective]:
    """Effective configurations of many nodes; nodes with the same matches share work."""
    engine = Engine(inputs)
    by_name = {n.name: n for n in nodes}
    return {n.name: engine.resolve(n, by_name) for n in nodes}


def differences(effective: Effective, configmap: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Keys whose effective value differs from ``configmap`` (``config-sources`` excluded)."""
    out: dict[str, dict[str, Any]] = {}
    for key, setting in effective.values.items():
        if key == CONFIG_SOURCES_KEY:
            continue
        if configmap.get(key) != setting.value:
            out[key] = {
                "configmap": configmap.get(key),
                "effective": setting.value,
                "source": setting.source,
            }
    for key, value in configmap.items():
        if key not in effective.values:
            out[key] = {"configmap": value, "effective": None, "source": None}
    return dict(sorted(out.items()))
