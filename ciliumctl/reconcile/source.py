"""The desired-state directory: load it, check it, and say exactly what is wrong.

Layout::

    cilium.yaml          version, release, namespace, values / valuesFiles, ignoreDifferences
    nodeconfigs/*.yaml   CiliumNodeConfig objects
    policies/*.yaml      CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy objects
    extra/*.yaml         any other objects (optional)

Every problem names the file, line and field. Nothing here touches a cluster, so an invalid
directory is refused before anything is applied.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ciliumctl.errors import CiliumctlError
from ciliumctl.reconcile.errors import DesiredStateError, Problem
from ciliumctl.reconcile.objects import (
    IgnoreRule,
    Key,
    PointerError,
    builtin_ignore_rules,
    group_of,
    is_generated,
    parse_pointer,
)
from ciliumctl.validators.findings import Path as JsonPath
from ciliumctl.validators.findings import Severity, format_path
from ciliumctl.validators.yamlsrc import Document, load_documents

CONFIG_FILE = "cilium.yaml"
SECTIONS = ("nodeconfigs", "policies", "extra")
CNC_API_VERSION = "cilium.io/v2"
POLICY_KINDS = ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
#: Kinds that are cluster-scoped among those a user is likely to put in extra/ or policies/.
_CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "StorageClass",
        "CiliumClusterwideNetworkPolicy",
        "CiliumClusterwideEnvoyConfig",
        "CiliumLoadBalancerIPPool",
        "CiliumCIDRGroup",
        "CiliumEgressGatewayPolicy",
        "CiliumL2AnnouncementPolicy",
        "CiliumPodIPPool",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "IngressClass",
    }
)
_KEYS = (
    "version",
    "release",
    "namespace",
    "values",
    "valuesFiles",
    "ignoreDifferences",
    "inventory",
)
_IGNORE_KEYS = ("group", "kind", "name", "namespace", "jsonPointers")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class Origin:
    """Where a desired object was read: file, document index and line."""

    file: str
    document: int
    line: int | None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class DesiredObject:
    """One object of the desired state and where it came from (``chart`` or a section)."""

    obj: dict[str, Any]
    source: str
    origin: Origin | None = None
    #: From the render cache with ignored fields (certificates) left out: not creatable as is.
    partial: bool = False

    @property
    def key(self) -> Key:
        """The object's identity."""
        return Key.of(self.obj)


@dataclass
class DesiredState:
    """A loaded and checked desired-state directory."""

    directory: Path
    version: str
    release: str
    namespace: str
    values: dict[str, Any]
    inventory: str
    value_sources: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    objects: list[DesiredObject] = field(default_factory=list)
    ignore: list[IgnoreRule] = field(default_factory=list)
    user_ignore: list[IgnoreRule] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def section(self, name: str) -> list[DesiredObject]:
        """The objects read from one section (nodeconfigs, policies, extra)."""
        return [o for o in self.objects if o.source == name]


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(
        self, file: str, message: str, path: JsonPath = (), doc: Document | None = None
    ) -> None:
        line = doc.line_of(path) if doc is not None else None
        self.problems.append(Problem(file, message, format_path(path), line))


def _closest(word: str, choices: tuple[str, ...]) -> str:
    match = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _rel(directory: Path, path: Path) -> str:
    try:
        return str(path.relative_to(directory.parent)) if directory.parent != path else str(path)
    except ValueError:
        return str(path)


def load(
    directory: str | Path,
    chart: Path,
    *,
    default_release: str = "cilium",
    default_namespace: str = "kube-system",
) -> DesiredState:
    """Read and check the desired-state directory; raise :class:`DesiredStateError`."""
    state = load_config(
        directory, chart, default_release=default_release, default_namespace=default_namespace
    )
    load_sections(state)
    return state


def load_config(
    directory: str | Path,
    chart: Path,
    *,
    default_release: str = "cilium",
    default_namespace: str = "kube-system",
) -> DesiredState:
    """The first half of :func:`load`: cilium.yaml and the values (checked), no sections.

    Enough to render the chart, so callers can render while :func:`load_sections` reads
    and validates the node configs, policies and extra objects.
    """
    root = Path(directory)
    if not root.is_dir():
        raise DesiredStateError(
            [Problem(str(root), "not a directory")],
            "pass --source with the desired-state directory (it holds cilium.yaml)",
        )
    config_path = root / CONFIG_FILE
    name = str(config_path)
    if not config_path.is_file():
        raise DesiredStateError(
            [Problem(name, "missing: the desired state needs a cilium.yaml")],
            "create cilium.yaml with at least `version: 1.18.5`",
        )
    problems = _Collector()
    config, doc = _read_config(config_path, problems)
    if problems.problems:
        raise DesiredStateError(problems.problems)
    state = _config(root, name, config, doc, chart, problems, default_release, default_namespace)
    if problems.problems:
        raise DesiredStateError(problems.problems)
    assert state is not None
    return state


def load_sections(state: DesiredState) -> None:
    """The second half of :func:`load`: nodeconfigs/, policies/ and extra/, validated."""
    problems = _Collector()
    for section in SECTIONS:
        folder = state.directory / section
        if not folder.exists():
            continue
        if not folder.is_dir():
            problems.add(str(folder), "must be a directory of .yaml files")
            continue
        for path in sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")):
            if section != "policies" or not _read_fast(state, section, path):
                _read_section_file(state, section, path, problems)
    _check_policies(state, problems)
    _check_duplicates(state, problems)
    if problems.problems:
        raise DesiredStateError(problems.problems)


class _DuplicateKeyError(Exception):
    """A mapping repeats a key (the line-tracking parser then reports where)."""


def _strict_loader() -> Any:
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Strict(base):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            keys = [k.value for k, _ in node.value if hasattr(k, "value")]
            if len(keys) != len(set(map(str, keys))):
                raise _DuplicateKeyError
            return super().construct_mapping(node, deep=deep)

    Strict.add_constructor("tag:yaml.org,2002:map", Strict.construct_yaml_map)
    return Strict


def _read_fast(state: DesiredState, section: str, path: Path) -> bool:
    """Read a file with libyaml (policies come by the dozen); False when it needs the
    line-tracking parser, which then reports every problem with its line."""
    import yaml

    from ciliumctl.validators.yamlsrc import split_documents

    try:
        text = path.read_text(encoding="utf-8")
        loader = _strict_loader()
        docs = [(start, yaml.load(chunk, Loader=loader)) for start, chunk in split_documents(text)]  # noqa: S506
    except (OSError, UnicodeDecodeError, yaml.YAMLError, _DuplicateKeyError, ValueError, TypeError):
        return False
    trial = _Collector()
    objects, warnings = len(state.objects), len(state.warnings)
    for index, (start, data) in enumerate(docs):
        if data is None:
            continue
        doc = Document(source=str(path), index=index, start_line=start)
        items = data.get("items") if isinstance(data, dict) else None
        if str((data or {}).get("kind", "")).endswith("List") and isinstance(items, list):
            for item_index, item in enumerate(items):
                _add_object(state, section, item, str(path), doc, ("items", item_index), trial)
        else:
            _add_object(state, section, data, str(path), doc, (), trial)
    if trial.problems:
        del state.objects[objects:]
        del state.warnings[warnings:]
        return False
    return True


def _read_config(path: Path, problems: _Collector) -> tuple[dict[str, Any], Document | None]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(name, f"cannot read: {exc}")
        return {}, None
    docs = [d for d in load_documents(text, name) if not d.empty]
    if len(docs) != 1:
        problems.add(name, f"must hold exactly one YAML document, found {len(docs)}")
        return {}, docs[0] if docs else None
    doc = docs[0]
    if doc.error is not None:
        problems.problems.append(
            Problem(name, f"invalid YAML: {doc.error.message}", "", doc.error.line)
        )
        return {}, doc
    for dup, line in doc.duplicates:
        problems.problems.append(
            Problem(name, "key appears more than once", format_path(dup), line)
        )
    if not isinstance(doc.data, dict):
        problems.add(name, "must be a mapping (version: ..., values: ...)")
        return {}, doc
    return doc.data, doc


def _string(
    config: dict[str, Any],
    key: str,
    default: str | None,
    name: str,
    doc: Document | None,
    problems: _Collector,
) -> str | None:
    value = config.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        problems.add(name, f"must be a non-empty string, not {value!r}", (key,), doc)
        return None
    return value


def _config(
    root: Path,
    name: str,
    config: dict[str, Any],
    doc: Document | None,
    chart: Path,
    problems: _Collector,
    default_release: str,
    default_namespace: str,
) -> DesiredState | None:
    from ciliumctl.install import releases

    for key in config:
        if key not in _KEYS:
            problems.add(
                name,
                f"unknown key{_closest(str(key), _KEYS)}; known keys: {', '.join(_KEYS)}",
                (str(key),),
                doc,
            )
    if "version" not in config:
        problems.add(name, "missing: pin the Cilium version, e.g. `version: 1.18.5`", ("version",))
    raw_version = config.get("version")
    version = None
    if raw_version is not None:
        try:
            version = releases.check_supported(str(raw_version))
        except CiliumctlError as exc:
            problems.add(name, f"{exc.message} ({exc.hint})", ("version",), doc)
    release = _string(config, "release", default_release, name, doc, problems)
    namespace = _string(config, "namespace", default_namespace, name, doc, problems)
    inventory = _string(config, "inventory", release, name, doc, problems)
    for key, value in (("release", release), ("namespace", namespace), ("inventory", inventory)):
        if value is not None and not _DNS_LABEL.match(value):
            problems.add(name, f"{value!r} is not a valid DNS label", (key,), doc)
    sources = _value_sources(root, name, config, doc, problems)
    user_ignore = _ignore_rules(name, config, doc, problems)
    if problems.problems or version is None:
        return None
    assert release is not None and namespace is not None and inventory is not None
    from ciliumctl.helm.values import merge

    values: dict[str, Any] = {}
    for _, part in sources:
        values = merge(values, part)
    _check_values(values, sources, chart, version, problems)
    return DesiredState(
        directory=root,
        version=version,
        release=release,
        namespace=namespace,
        values=values,
        inventory=inventory,
        value_sources=sources,
        ignore=[*builtin_ignore_rules(namespace), *user_ignore],
        user_ignore=user_ignore,
    )


def _value_sources(
    root: Path, name: str, config: dict[str, Any], doc: Document | None, problems: _Collector
) -> list[tuple[str, dict[str, Any]]]:
    """Values files in order, then the inline ``values`` (which win), as Helm's -f then --set."""
    from ciliumctl.helm.values import ValuesError, load_values_file

    sources: list[tuple[str, dict[str, Any]]] = []
    files = config.get("valuesFiles", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        problems.add(name, "must be a list of file paths (relative to the directory)",
                     ("valuesFiles",), doc)  # fmt: skip
        files = []
    for index, rel in enumerate(files):
        path = root / rel
        if not path.is_file():
            problems.add(name, f"values file {path} does not exist", ("valuesFiles", index), doc)
            continue
        try:
            sources.append((str(path), load_values_file(path)))
        except ValuesError as exc:
            problems.problems.append(Problem(str(path), exc.message))
    inline = config.get("values", {})
    if inline is None:
        inline = {}
    if not isinstance(inline, dict):
        problems.add(name, "must be a mapping of Helm values", ("values",), doc)
    elif inline:
        sources.append((f"{name} (values)", inline))
    return sources


def _check_values(
    values: dict[str, Any],
    sources: list[tuple[str, dict[str, Any]]],
    chart: Path,
    version: str,
    problems: _Collector,
) -> None:
    from ciliumctl.helm.values import flatten
    from ciliumctl.install.install import ValuesCheckError, check_user_values

    try:
        check_user_values(values, chart, version)
    except ValuesCheckError as exc:
        flat = [(file, set(flatten(part))) for file, part in sources]
        for finding in exc.findings:
            if finding.severity != "error":
                continue
            files = (
                [
                    f
                    for f, keys in flat
                    if finding.key in keys or any(k.startswith(finding.key + ".") for k in keys)
                ]
                or [s[0] for s in sources]
                or ["values"]
            )
            text = finding.message + (f" ({finding.fix})" if finding.fix else "")
            for file in files:
                field = "values." + finding.key if file.endswith("(values)") else finding.key
                problems.problems.append(Problem(file.removesuffix(" (values)"), text, field))


def _ignore_rules(
    name: str, config: dict[str, Any], doc: Document | None, problems: _Collector
) -> list[IgnoreRule]:
    raw = config.get("ignoreDifferences", [])
    if not isinstance(raw, list):
        problems.add(name, "must be a list of {group, kind, name, namespace, jsonPointers}",
                     ("ignoreDifferences",), doc)  # fmt: skip
        return []
    rules = []
    for index, entry in enumerate(raw):
        path: JsonPath = ("ignoreDifferences", index)
        if not isinstance(entry, dict):
            problems.add(name, "must be a mapping", path, doc)
            continue
        for key in entry:
            if key not in _IGNORE_KEYS:
                problems.add(name, f"unknown key{_closest(str(key), _IGNORE_KEYS)}",
                             (*path, str(key)), doc)  # fmt: skip
        pointers = entry.get("jsonPointers")
        if not isinstance(pointers, list) or not pointers:
            problems.add(name, "must be a non-empty list of JSON pointers such as /data/key",
                         (*path, "jsonPointers"), doc)  # fmt: skip
            continue
        ok = True
        for pi, pointer in enumerate(pointers):
            try:
                if not isinstance(pointer, str):
                    raise PointerError(f"{pointer!r} is not a string")
                if not parse_pointer(pointer):
                    raise PointerError("the empty pointer would ignore the whole object")
            except PointerError as exc:
                problems.add(name, str(exc), (*path, "jsonPointers", pi), doc)
                ok = False
        target = {}
        for key in ("group", "kind", "name", "namespace"):
            value = entry.get(key)
            if value is not None and not isinstance(value, str):
                problems.add(name, "must be a string", (*path, key), doc)
                ok = False
            target[key] = value if value not in ("", "*") or key == "group" else None
        if target["kind"] is None:
            problems.add(name, "missing: name the kind the rule applies to", (*path, "kind"), doc)
            ok = False
        if ok:
            rules.append(
                IgnoreRule(
                    tuple(pointers),
                    kind=target["kind"],
                    group=target["group"] if target["group"] is not None else None,
                    name=target["name"],
                    namespace=target["namespace"],
                )
            )
    return rules


# ----------------------------------------------------------------------------- sections
def _read_section_file(state: DesiredState, section: str, path: Path, problems: _Collector) -> None:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(name, f"cannot read: {exc}")
        return
    for doc in load_documents(text, name):
        if doc.empty:
            continue
        if doc.error is not None:
            problems.problems.append(
                Problem(name, f"invalid YAML: {doc.error.message}", "", doc.error.line)
            )
            continue
        for dup, line in doc.duplicates:
            problems.problems.append(
                Problem(name, "key appears more than once", format_path(dup), line)
            )
        data = doc.data
        if isinstance(data, dict) and str(data.get("kind", "")).endswith("List"):
            items = data.get("items")
            if isinstance(items, list):
                for index, item in enumerate(items):
                    _add_object(state, section, item, name, doc, ("items", index), problems)
                continue
        _add_object(state, section, data, name, doc, (), problems)


def _add_object(
    state: DesiredState,
    section: str,
    data: Any,
    name: str,
    doc: Document,
    prefix: JsonPath,
    problems: _Collector,
) -> None:
    if not isinstance(data, dict):
        problems.add(name, "not a Kubernetes object (expected apiVersion, kind, metadata)",
                     prefix, doc)  # fmt: skip
        return
    ok = True
    for key in ("apiVersion", "kind"):
        if not isinstance(data.get(key), str) or not data.get(key):
            problems.add(name, "missing or not a string", (*prefix, key), doc)
            ok = False
    meta = data.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        problems.add(name, "missing: every object needs metadata.name",
                     (*prefix, "metadata", "name"), doc)  # fmt: skip
        ok = False
    if not ok or not isinstance(meta, dict):
        return
    kind, api_version = str(data["kind"]), str(data["apiVersion"])
    origin = Origin(name, doc.index, doc.line_of(prefix))
    if is_generated(group_of(api_version), kind):
        state.warnings.append(
            f"{origin}: skipped {kind} {meta['name']}: Cilium generates {kind} objects itself; "
            "reconcile never reads them as desired and never touches them"
        )
        return
    if section == "nodeconfigs":
        if kind != "CiliumNodeConfig" or api_version != CNC_API_VERSION:
            problems.add(name, f"nodeconfigs/ holds only {CNC_API_VERSION} CiliumNodeConfig, "
                         f"not {api_version} {kind}", (*prefix, "kind"), doc)  # fmt: skip
            return
        _check_cnc(state, data, name, doc, prefix, problems)
    if section == "policies" and kind not in POLICY_KINDS:
        problems.add(name, f"policies/ holds only {' and '.join(POLICY_KINDS)}, not {kind} "
                     "(put other objects in extra/)", (*prefix, "kind"), doc)  # fmt: skip
        return
    obj = dict(data)
    obj["metadata"] = dict(meta)
    namespace = meta.get("namespace")
    if kind in _CLUSTER_SCOPED:
        if namespace:
            problems.add(name, f"{kind} is cluster-scoped; remove metadata.namespace",
                         (*prefix, "metadata", "namespace"), doc)  # fmt: skip
    elif not namespace:
        # As `kubectl apply` in a context without a namespace; CNCs live with Cilium.
        obj["metadata"]["namespace"] = state.namespace if section == "nodeconfigs" else "default"
    state.objects.append(DesiredObject(obj, section, origin))


def _check_cnc(
    state: DesiredState,
    data: dict[str, Any],
    name: str,
    doc: Document,
    prefix: JsonPath,
    problems: _Collector,
) -> None:
    namespace = (data.get("metadata") or {}).get("namespace")
    if namespace and namespace != state.namespace:
        problems.add(name, f"the agents read CiliumNodeConfigs only from Cilium's namespace "
                     f"{state.namespace!r}, not {namespace!r}", (*prefix, "metadata", "namespace"),
                     doc)  # fmt: skip
    spec = data.get("spec")
    if not isinstance(spec, dict):
        problems.add(name, "missing: spec with nodeSelector and defaults", (*prefix, "spec"), doc)
        return
    for key in spec:
        if key not in ("nodeSelector", "defaults"):
            problems.add(name, f"unknown field{_closest(str(key), ('nodeSelector', 'defaults'))}",
                         (*prefix, "spec", str(key)), doc)  # fmt: skip
    defaults = spec.get("defaults")
    if not isinstance(defaults, dict):
        problems.add(name, "missing: a mapping of cilium-config keys to string values",
                     (*prefix, "spec", "defaults"), doc)  # fmt: skip
    else:
        for key, value in defaults.items():
            if not isinstance(value, str):
                problems.add(name, f"must be a string (quote it: \"{value}\")",
                             (*prefix, "spec", "defaults", str(key)), doc)  # fmt: skip
    selector = spec.get("nodeSelector")
    if not isinstance(selector, dict):
        problems.add(name, "missing: a label selector ({} selects every node)",
                     (*prefix, "spec", "nodeSelector"), doc)  # fmt: skip
        return
    for key in selector:
        if key not in ("matchLabels", "matchExpressions"):
            hint = _closest(str(key), ("matchLabels", "matchExpressions"))
            problems.add(name, f"unknown field{hint}", (*prefix, "spec", "nodeSelector", str(key)),
                         doc)  # fmt: skip
    labels = selector.get("matchLabels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        problems.add(name, "must map label keys to string values",
                     (*prefix, "spec", "nodeSelector", "matchLabels"), doc)  # fmt: skip
    exprs = selector.get("matchExpressions", [])
    if not isinstance(exprs, list):
        problems.add(
            name, "must be a list", (*prefix, "spec", "nodeSelector", "matchExpressions"), doc
        )
        return
    for index, expr in enumerate(exprs):
        where: JsonPath = (*prefix, "spec", "nodeSelector", "matchExpressions", index)
        if not isinstance(expr, dict) or not isinstance(expr.get("key"), str):
            problems.add(name, "needs key and operator", where, doc)
            continue
        operator = expr.get("operator")
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            problems.add(name, f"operator {operator!r} is not In, NotIn, Exists or DoesNotExist",
                         (*where, "operator"), doc)  # fmt: skip
        values = expr.get("values", [])
        if operator in ("In", "NotIn") and (not isinstance(values, list) or not values):
            problems.add(name, f"{operator} needs a non-empty values list", (*where, "values"), doc)
        if operator in ("Exists", "DoesNotExist") and values:
            problems.add(name, f"{operator} takes no values", (*where, "values"), doc)


def _check_policies(state: DesiredState, problems: _Collector) -> None:
    """Run the CNP/CCNP validator (schema + agent rules); its errors stop a reconcile.

    The parsed objects are validated first; only files with findings are validated again
    as text, which gives every finding its line.
    """
    from ciliumctl.validators.cnp import validate_cluster, validate_texts

    policies = state.section("policies")
    if not policies:
        return
    by_kind: dict[str, list[dict[str, Any]]] = {}
    origins: dict[tuple[str, str, str], str] = {}
    for item in policies:
        assert item.origin is not None
        by_kind.setdefault(item.key.kind, []).append(copy.deepcopy(item.obj))
        origins[(item.key.kind, item.key.namespace, item.key.name)] = item.origin.file
    quick = validate_cluster(_Objects(by_kind))
    flagged = sorted(
        {
            origins.get((f.kind or "", f.namespace or "", f.name or ""), "")
            for f in quick.findings
            if f.severity in (Severity.ERROR, Severity.WARNING)
        }
        - {""}
    )
    if not flagged:
        return
    texts = []
    for file in flagged:
        try:
            texts.append((file, Path(file).read_text(encoding="utf-8")))
        except OSError as exc:
            problems.add(file, f"cannot read: {exc}")
    for finding in validate_texts(texts).findings:
        if finding.severity is Severity.WARNING:
            state.warnings.append(
                f"{finding.file}:{finding.line or ''} {format_path(finding.path)}: "
                f"{finding.message}"
            )
        if finding.severity is not Severity.ERROR:
            continue
        problems.problems.append(
            Problem(
                finding.file,
                finding.message + (f" ({finding.fix})" if finding.fix else ""),
                format_path(finding.path),
                finding.line,
            )
        )


class _Objects:
    """Parsed policies served as the validator's ``--from-cluster`` lister."""

    def __init__(self, by_kind: dict[str, list[dict[str, Any]]]) -> None:
        self.by_kind = by_kind

    def list(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        return self.by_kind.get(kind, [])


def _check_duplicates(state: DesiredState, problems: _Collector) -> None:
    seen: dict[Key, DesiredObject] = {}
    for item in state.objects:
        first = seen.setdefault(item.key, item)
        if first is not item:
            problems.problems.append(
                Problem(
                    str(item.origin.file if item.origin else item.source),
                    f"{item.key} is also defined in {first.origin}",
                    "metadata.name",
                    item.origin.line if item.origin else None,
                )
            )
