"""Validate CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy objects.

Sources are files (multi-document YAML, ``List`` objects), standard input or the cluster.
Each object is checked against the structural schema of the CRD and then against the
semantic rules the Cilium agent applies when it sanitizes a rule. Findings name the file,
document index, line, JSON path, message and fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path as FsPath
from typing import Any, NamedTuple, Protocol

from ciliumctl.errors import UsageError
from ciliumctl.validators import policy_model as pm
from ciliumctl.validators.findings import Finding, Path, Report, Severity
from ciliumctl.validators.policy_rules import check_policy
from ciliumctl.validators.yamlsrc import (
    Document,
    has_odd_breaks,
    parse_document,
    split_documents,
)

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


class _Place(NamedTuple):
    """Where an object came from, for findings (a tuple: one is made per document)."""

    file: str
    document: int | None
    doc: Document | None
    prefix: Path


#: From this many documents on, validation is spread over the CPUs (forked workers).
PARALLEL_DOCUMENTS = 2000
#: (source index, first character, end character): a piece of one source's text that starts
#: at a line (a ``---`` marker line, or the text's start) and ends where the next piece starts.
_Piece = tuple[int, int, int]
#: The sources forked workers read: inherited with the process, never pickled.
_SHARED: list[tuple[str, str]] = []
#: A ``---`` line, where a text may be cut between two workers (what split_documents' own
#: marker regex calls a document start).
_CUT = re.compile(r"^---(?:[ \t][^\n]*)?$", re.MULTILINE)


def validate_texts(
    sources: Iterable[tuple[str, str]], target: tuple[int, int] = DEFAULT_TARGET
) -> Report:
    """Validate YAML texts given as (file name, text) pairs.

    Many documents are validated by forked worker processes. Each gets contiguous pieces
    of the texts (whole small files, or a large file cut at ``---`` lines) and splits,
    parses and checks them itself; their reports are joined in order, with the document
    numbers of a cut file carried on, so the report is the same as a single process gives.
    """
    sources = list(sources)
    workers = _workers(sum(text.count("\n---") + 1 for _, text in sources))
    if workers < 2:
        report = Report()
        for name, text in sources:
            _join(report, _validate_text(name, text, 0, len(text), target)[0], 0)
        return report
    import gc
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _SHARED
    batches = _batches(sources, workers * 4)
    _warm_up(sources, target)
    _SHARED = sources
    # What exists now lives as long as the workers: keep it out of their collections (and
    # give it back to the collector afterwards, for callers that live on).
    gc.freeze()
    report = Report()
    documents_before = [0] * len(sources)
    context = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for batch, parts in zip(
                batches, pool.map(_validate_batch, batches, [target] * len(batches)), strict=True
            ):
                for (source, _, _), (part, documents) in zip(batch, parts, strict=True):
                    _join(report, part, documents_before[source])
                    documents_before[source] += documents
    finally:
        _SHARED = []
        gc.unfreeze()
    return report


#: The largest first document :func:`_warm_up` validates (a larger one is not worth it).
_WARM_UP_CHARS = 65536


def _warm_up(sources: list[tuple[str, str]], target: tuple[int, int]) -> None:
    """Validate the first document once before the workers are forked (the report is
    dropped): what validation sets up on first use (imports, compiled patterns, the schema's
    checkers, memos) then happens once here instead of once in every worker."""
    for name, text in sources:
        if not text:
            continue
        cut = _CUT.search(text, 1)
        end = cut.start() if cut is not None else len(text)
        if end <= _WARM_UP_CHARS:
            _validate_text(name, text, 0, end, target)
        return


def _join(report: Report, part: Report, first_document: int) -> None:
    """Add ``part`` (whose documents are numbered from 0) to ``report``, numbering its
    documents from ``first_document``."""
    if first_document:
        report.findings.extend(
            f if f.document is None else replace(f, document=f.document + first_document)
            for f in part.findings
        )
    else:
        report.findings.extend(part.findings)
    report.documents += part.documents
    report.policies += part.policies


def _batches(sources: list[tuple[str, str]], count: int) -> list[list[_Piece]]:
    """About ``count`` batches of pieces of about equal size, in source order."""
    total = sum(len(text) for _, text in sources)
    size = max(1, -(-total // count))
    batches: list[list[_Piece]] = [[]]
    filled = 0
    for index, (_, text) in enumerate(sources):
        begin = 0
        # Only texts whose one line break is "\n" are cut (split_documents reads the others
        # line by line, with every Unicode break).
        cuttable = len(text) > size and not has_odd_breaks(text)
        while begin < len(text):
            end = len(text)
            if cuttable and len(text) - begin > size - filled:
                cut = _CUT.search(text, begin + max(1, size - filled))
                if cut is not None:
                    end = cut.start()
            batches[-1].append((index, begin, end))
            filled += end - begin
            begin = end
            if filled >= size:
                batches.append([])
                filled = 0
        if not text:
            batches[-1].append((index, 0, 0))
    return [batch for batch in batches if batch]


def _workers(documents: int) -> int:
    """How many processes validate ``documents`` documents (1: this one)."""
    import os
    import sys

    if documents < PARALLEL_DOCUMENTS or not sys.platform.startswith("linux"):
        return 1
    return min(len(os.sched_getaffinity(0)), 8)


def _validate_batch(batch: list[_Piece], target: tuple[int, int]) -> list[tuple[Report, int]]:
    """In a worker: the report of each piece of ``batch`` (of :data:`_SHARED`)."""
    return [_validate_text(*_SHARED[index], begin, end, target) for index, begin, end in batch]


def _validate_text(
    name: str, text: str, begin: int, end: int, target: tuple[int, int]
) -> tuple[Report, int]:
    """The report of ``text[begin:end]`` (documents numbered from 0, lines those of the
    whole text) and how many documents split_documents found in it."""
    report = Report()
    lines_before = text.count("\n", 0, begin) if begin else 0
    piece = text if begin == 0 and end == len(text) else text[begin:end]
    count = 0
    for index, (start, chunk) in enumerate(split_documents(piece)):
        doc = parse_document(name, index, start + lines_before, chunk)
        _validate_document(report, doc, target)
        count += 1
    return report, count


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
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
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
