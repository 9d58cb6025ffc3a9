"""Validate CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy objects.

Sources are files (multi-document YAML, ``List`` objects), standard input or the cluster.
Each object is checked against the structural schema of the CRD and then against the
semantic rules the Cilium agent applies when it sanitizes a rule. Findings name the file,
document index, line, JSON path, message and fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any, Protocol

from ciliumctl.errors import UsageError
from ciliumctl.validators import policy_model as pm
from ciliumctl.validators.findings import Finding, Path, Report, Severity
from ciliumctl.validators.policy_rules import check_policy
from ciliumctl.validators.yamlsrc import Document, parse_document, split_documents

POLICY_KINDS = (pm.CNP_KIND, pm.CCNP_KIND)
#: Oldest and newest Cilium minor versions --target-version accepts.
OLDEST_TARGET = (1, 14)
NEWEST_TARGET = (1, 18)
DEFAULT_TARGET = NEWEST_TARGET
STDIN = "-"


class PolicyLister(Protocol):
    """The client calls ``--from-cluster`` needs (a subset of :class:`ciliumctl.k8s.Client`)."""

    def list(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object of ``kind`` (all namespaces when ``namespace`` is None)."""
        ...


def parse_target(text: str | None) -> tuple[int, int]:
    """``1.18`` / ``v1.17.3`` -> (1, 18); raises UsageError for unsupported versions."""
    if text is None:
        return DEFAULT_TARGET
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?", text.strip())
    if not match:
        raise UsageError(
            f"--target-version {text!r} is not a version",
            "use MAJOR.MINOR[.PATCH], e.g. --target-version 1.18",
        )
    version = (int(match.group(1)), int(match.group(2)))
    if not OLDEST_TARGET <= version <= NEWEST_TARGET:
        raise UsageError(
            f"--target-version {text} is not supported",
            f"use a version from {OLDEST_TARGET[0]}.{OLDEST_TARGET[1]} to "
            f"{NEWEST_TARGET[0]}.{NEWEST_TARGET[1]}",
        )
    return version


@dataclass(frozen=True)
class _Place:
    """Where an object came from, for findings."""

    file: str
    document: int | None
    doc: Document | None
    prefix: Path


#: From this many documents on, validation is spread over the CPUs (forked workers).
PARALLEL_DOCUMENTS = 2000
#: (file name, document index, first line, text) of one document of a file.
_Unit = tuple[str, int, int, str]


def validate_texts(
    sources: Iterable[tuple[str, str]], target: tuple[int, int] = DEFAULT_TARGET
) -> Report:
    """Validate YAML texts given as (file name, text) pairs.

    Many documents are validated by forked worker processes, in contiguous batches whose
    reports are joined in order: the report is the same as a single process gives.
    """
    units: list[_Unit] = [
        (name, index, start, chunk)
        for name, text in sources
        for index, (start, chunk) in enumerate(split_documents(text))
    ]
    workers = _workers(len(units))
    if workers < 2:
        return _validate_units(units, target)
    import gc
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # What exists now lives as long as the workers: keep it out of their collections (and
    # give it back to the collector afterwards, for callers that live on).
    gc.freeze()

    size = -(-len(units) // (workers * 4))
    batches = [units[i : i + size] for i in range(0, len(units), size)]
    report = Report()
    context = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for part in pool.map(_validate_units, batches, [target] * len(batches)):
                report.findings.extend(part.findings)
                report.documents += part.documents
                report.policies += part.policies
    finally:
        gc.unfreeze()
    return report


def _workers(documents: int) -> int:
    """How many processes validate ``documents`` documents (1: this one)."""
    import os
    import sys

    if documents < PARALLEL_DOCUMENTS or not sys.platform.startswith("linux"):
        return 1
    return min(len(os.sched_getaffinity(0)), 8)


def _validate_units(units: list[_Unit], target: tuple[int, int]) -> Report:
    report = Report()
    for name, index, start, chunk in units:
        _validate_document(report, parse_document(name, index, start, chunk), target)
    return report


def validate_paths(
    paths: list[str], target: tuple[int, int] = DEFAULT_TARGET, stdin_text: str | None = None
) -> Report:
    """Validate files (``-`` reads ``stdin_text``); directories contribute *.yaml / *.yml.

    Raises :class:`UsageError` when a path does not exist or cannot be read, before any
    file is validated.
    """
    sources: list[tuple[str, str]] = []
    for raw in paths:
        if raw == STDIN:
            sources.append(("<stdin>", stdin_text or ""))
            continue
        path = FsPath(raw)
        files = _expand(path)
        for file in files:
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise UsageError(
                    f"cannot read {file}: {exc.strerror or exc}",
                    "check the path and its permissions",
                ) from exc
            sources.append((str(file), data.decode("utf-8", errors="replace")))
    return validate_texts(sources, target)


def _expand(path: FsPath) -> list[FsPath]:
    if path.is_dir():
        found = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json")
        )
        if not found:
            raise UsageError(
                f"directory {path} contains no .yaml, .yml or .json files",
                "pass policy files or a directory containing them",
            )
        return found
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory", "check the path")
    return [path]


def validate_cluster(client: PolicyLister, target: tuple[int, int] = DEFAULT_TARGET) -> Report:
    """Validate every CNP and CCNP stored in the cluster.

    A kind whose CRD is not installed gives a note, not an error.
    """
    from ciliumctl.k8s.errors import NotFoundError

    report = Report()
    for kind in POLICY_KINDS:
        try:
            objects = client.list(pm.API_VERSION, kind)
        except NotFoundError as exc:
            report.findings.append(
                Finding(
                    Severity.NOTE,
                    "crd-missing",
                    f"{kind} is not served by this cluster ({exc.message}); nothing to check",
                    "install the Cilium CRDs if policies are expected here",
                    file="cluster",
                    kind=kind,
                )
            )
            continue
        for obj in objects:
            obj.setdefault("apiVersion", pm.API_VERSION)
            obj.setdefault("kind", kind)
            report.documents += 1
            _validate_stored(report, obj, target)
    return report


def validate_object(obj: dict[str, Any], target: tuple[int, int] = DEFAULT_TARGET) -> Report:
    """Validate one CNP/CCNP object as the API serves it (the agent rejects what fails here)."""
    report = Report(documents=1)
    _validate_stored(report, obj, target)
    return report


def _validate_stored(report: Report, obj: dict[str, Any], target: tuple[int, int]) -> None:
    meta = obj.get("metadata") or {}
    where = (
        f"{meta.get('namespace')}/{meta.get('name')}"
        if meta.get("namespace")
        else (str(meta.get("name")))
    )
    place = _Place(f"cluster:{obj.get('kind')}/{where}", None, None, ())
    _validate_object(report, obj, place, target)


def _validate_document(report: Report, doc: Document, target: tuple[int, int]) -> None:
    """Findings of one parsed document: its YAML problems, then its objects'."""
    name = doc.source
    if doc.empty:
        return
    report.documents += 1
    if doc.error is not None:
        report.findings.append(
            Finding(
                Severity.ERROR,
                "yaml",
                f"invalid YAML: {doc.error.message}",
                "fix the YAML syntax (indentation, quoting, ':' after keys)",
                file=name,
                document=doc.index,
                line=doc.error.line,
            )
        )
        return
    place = _Place(name, doc.index, doc, ())
    for path, line in doc.duplicates:
        report.findings.append(
            Finding(
                Severity.ERROR,
                "duplicate-key",
                f"key {path[-1]!r} appears more than once; only the last one counts",
                "remove or merge the duplicate key",
                path=path,
                file=name,
                document=doc.index,
                line=line,
            )
        )
    _validate_any(report, doc.data, place, target)


def _validate_any(report: Report, data: Any, place: _Place, target: tuple[int, int]) -> None:
    if not isinstance(data, dict):
        _add(
            report,
            place,
            Severity.ERROR,
            "not-an-object",
            "the document is not a Kubernetes object (expected a mapping with apiVersion and kind)",
            "make the document a mapping with apiVersion, kind, metadata and spec",
            (),
        )
        return
    kind = data.get("kind")
    items = data.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        item_kind = kind[: -len("List")] if kind != "List" else None
        for index, item in enumerate(items):
            sub = _Place(place.file, place.document, place.doc, (*place.prefix, "items", index))
            if isinstance(item, dict) and item_kind and "kind" not in item:
                item = {**item, "kind": item_kind}
            _validate_any(report, item, sub, target)
        return
    if not isinstance(kind, str) or not kind:
        _add(
            report,
            place,
            Severity.ERROR,
            "no-kind",
            "the object has no kind",
            "add kind: CiliumNetworkPolicy (or CiliumClusterwideNetworkPolicy)",
            ("kind",),
        )
        return
    if kind not in POLICY_KINDS:
        _add(
            report,
            place,
            Severity.NOTE,
            "skipped-kind",
            f"skipped {kind}: only {' and '.join(POLICY_KINDS)} are validated",
            "nothing to do",
            ("kind",),
        )
        return
    _validate_object(report, data, place, target)


def _validate_object(
    report: Report, obj: dict[str, Any], place: _Place, target: tuple[int, int]
) -> None:
    kind = str(obj.get("kind"))
    report.policies += 1
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    name = meta.get("name") if isinstance(meta.get("name"), str) else None
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else None
    ident = {"kind": kind, "name": name, "namespace": namespace}

    api_version = obj.get("apiVersion")
    if api_version != pm.API_VERSION:
        _add(
            report,
            place,
            Severity.ERROR,
            "api-version",
            f"apiVersion {api_version!r} is not served for {kind}",
            f"use apiVersion: {pm.API_VERSION}",
            ("apiVersion",),
            **ident,
        )
    if kind == pm.CCNP_KIND and namespace:
        _add(
            report,
            place,
            Severity.WARNING,
            "ccnp-namespace",
            f"{kind} is cluster-scoped; metadata.namespace {namespace!r} is ignored",
            "remove metadata.namespace",
            ("metadata", "namespace"),
            **ident,
        )
    schema_paths: set[Path] = set()
    schema = pm.schema_for(kind)
    for issue in () if schema.ok(obj) else schema.validate(obj, ()):
        schema_paths.add(issue.path)
        _add(report, place, Severity.ERROR, issue.rule, issue.message, issue.fix, issue.path,
             **ident)  # fmt: skip
    for problem in check_policy(obj, kind, target):
        if problem.path in schema_paths and problem.severity is Severity.ERROR:
            continue  # the schema already reported this value
        _add(report, place, problem.severity, problem.rule, problem.message, problem.fix,
             problem.path, **ident)  # fmt: skip


def _add(
    report: Report,
    place: _Place,
    severity: Severity,
    rule: str,
    message: str,
    fix: str,
    path: Path,
    kind: str | None = None,
    name: str | None = None,
    namespace: str | None = None,
) -> None:
    full = (*place.prefix, *path)
    line = place.doc.line_of(full) if place.doc is not None else None
    report.findings.append(
        Finding(
            severity,
            rule,
            message,
            fix,
            path=full,
            file=place.file,
            document=place.document,
            line=line,
            kind=kind,
            name=name,
            namespace=namespace,
        )
    )


def iter_errors(report: Report) -> Iterator[Finding]:
    """The error findings of a report."""
    return (f for f in report.findings if f.severity is Severity.ERROR)
