"""Locate, read and check kubeconfig files before the kubernetes client sees them.

The kubernetes client's own errors for a missing file, bad YAML or an unknown context are
terse; these checks name the file, line or context and say what to do instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ciliumctl.k8s.errors import KubeconfigError

DEFAULT_PATH = Path("~/.kube/config")


@dataclass(frozen=True)
class KubeconfigInfo:
    """What the tool needs to know about the selected kubeconfig and context."""

    paths: list[Path]
    context: str
    cluster: str
    server: str
    namespace: str | None = None
    contexts: list[str] = field(default_factory=list)


def kubeconfig_paths(explicit: str | None) -> list[Path]:
    """The kubeconfig files in effect: ``--kubeconfig``, else ``$KUBECONFIG``, else default."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise KubeconfigError(
                f"kubeconfig file {path} does not exist",
                "pass an existing file with --kubeconfig or unset it to use $KUBECONFIG",
            )
        return [path]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
        existing = [p for p in paths if p.exists()]
        if not existing:
            raise KubeconfigError(
                f"none of the kubeconfig files in $KUBECONFIG exist: {env}",
                "fix $KUBECONFIG or pass --kubeconfig",
            )
        return existing
    default = DEFAULT_PATH.expanduser()
    if default.exists():
        return [default]
    return []


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KubeconfigError(
            f"cannot read kubeconfig {path}: {exc.strerror or exc}",
            "check the file's permissions or pass another file with --kubeconfig",
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise KubeconfigError(
            f"kubeconfig {path} is not valid YAML{where}",
            "fix the file or pass another one with --kubeconfig",
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeconfigError(
            f"kubeconfig {path} is not a kubeconfig (top level is not a mapping)",
            "pass a kubeconfig file with --kubeconfig",
        )
    return data


def _named(entries: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in entries or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            out.setdefault(entry["name"], entry)
    return out


def inspect(paths: list[Path], context: str | None) -> KubeconfigInfo:
    """Merge ``paths`` as kubectl does (first wins) and resolve ``context`` or the current one."""
    contexts: dict[str, dict[str, Any]] = {}
    clusters: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for path in paths:
        data = _read(path)
        for ctx_name, entry in _named(data.get("contexts")).items():
            contexts.setdefault(ctx_name, entry)
        for cluster_key, entry in _named(data.get("clusters")).items():
            clusters.setdefault(cluster_key, entry)
        if current is None and data.get("current-context"):
            current = str(data["current-context"])
    where = ", ".join(str(p) for p in paths)
    selected = context or current
    if not selected:
        raise KubeconfigError(
            f"kubeconfig {where} sets no current-context",
            "pick one with --context or run `kubectl config use-context NAME`",
        )
    name: str = selected
    if name not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise KubeconfigError(
            f"context {name!r} not found in kubeconfig {where}",
            f"available contexts: {known}; pick one with --context",
        )
    ctx = contexts[name].get("context") or {}
    cluster_name = str(ctx.get("cluster", ""))
    cluster = (clusters.get(cluster_name) or {}).get("cluster") or {}
    server = str(cluster.get("server", ""))
    if not server:
        raise KubeconfigError(
            f"context {name!r} in kubeconfig {where} refers to cluster {cluster_name!r} "
            "which has no server URL",
            "fix the clusters section of the kubeconfig",
        )
    return KubeconfigInfo(
        paths=paths,
        context=name,
        cluster=cluster_name,
        server=server,
        namespace=ctx.get("namespace"),
        contexts=sorted(contexts),
    )
