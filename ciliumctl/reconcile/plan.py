"""Compare the desired state with the cluster: `cilium reconcile diff`.

The chart is rendered at the pinned version with the desired values (over what `cilium
install` detects for this cluster), the node configs, policies and extra objects are added,
and every object goes through a server-side-apply dry run (field manager ``ciliumctl``):
what the API server answers is what the object would become, defaults and admission
included. An object is ``changed`` only when that answer differs from the live object once
server-managed and ignored fields are dropped. The dry runs run in parallel.
"""

from __future__ import annotations

import concurrent.futures
import copy
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ciliumctl.errors import CiliumctlError
from ciliumctl.helm.protocols import HelmRenderer
from ciliumctl.reconcile import inventory as inv
from ciliumctl.reconcile import release as rel
from ciliumctl.reconcile.errors import DesiredStateError, Problem
from ciliumctl.reconcile.objects import (
    HASH_ANNOTATION,
    INVENTORY_ANNOTATION,
    IgnoreRule,
    Key,
    desired_hash,
    group_of,
    is_generated,
    json_patch,
    normalize,
    respect_ignored,
    stage_of,
    unchanged_fast,
    unified_diff,
)
from ciliumctl.reconcile.source import CONFIG_FILE, DesiredObject, DesiredState

Obj = dict[str, Any]
Progress = Callable[[str], None]
_FETCH = object()  # compare(): read the live object itself
ACTIONS = ("created", "changed", "deleted", "unchanged")
WORKERS = 8


class PlanClient(Protocol):
    """The cluster calls the comparison needs (a subset of :class:`ciliumctl.k8s.Client`)."""

    server: str
    context: str | None

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None: ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[Obj]: ...

    def apply(
        self,
        obj: Obj,
        *,
        field_manager: str = ...,
        force: bool = False,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> Obj: ...

    def request(self, method: str, path: str, *, what: str) -> Any: ...

    def server_version(self) -> Obj: ...

    def resource(self, api_version: str, kind: str) -> Any: ...


#: What the plan needs from Helm (see :class:`ciliumctl.helm.Helm`).
Renderer = HelmRenderer


@dataclass
class Change:
    """The comparison of one object: what reconcile would do to it and the diff."""

    key: Key
    api_version: str
    action: str
    source: str
    via: str
    origin: str | None = None
    diff: str = ""
    desired: Obj | None = None
    live: Obj | None = None
    #: For a changed object: the RFC 6902 patch from the live to the desired view.
    patch: list[dict[str, Any]] | None = None

    @property
    def stage(self) -> str:
        """The apply stage of this object."""
        return stage_of(self.api_version, self.key.kind)

    def as_dict(self, *, with_diff: bool = True) -> dict[str, Any]:
        """JSON-friendly form (Secret values are already masked in ``diff``)."""
        out: dict[str, Any] = {
            "action": self.action,
            "apiVersion": self.api_version,
            "kind": self.key.kind,
            "namespace": self.key.namespace or None,
            "name": self.key.name,
            "source": self.source,
            "via": self.via,
            "origin": self.origin,
        }
        if with_diff:
            out["diff"] = self.diff
            if self.patch is not None:
                out["patch"] = self.patch
        return out


@dataclass
class Plan:
    """The whole comparison."""

    state: DesiredState
    changes: list[Change]
    chart_values: dict[str, Any]
    release: rel.Release | None
    inventory: inv.Inventory | None
    kept: list[tuple[Key, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        """How many objects per action."""
        out = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            out[change.action] += 1
        return out

    @property
    def in_sync(self) -> bool:
        """True when nothing would change."""
        return all(c.action == "unchanged" for c in self.changes)

    @property
    def drifted(self) -> list[Change]:
        """The objects that differ (created, changed or deleted)."""
        return [c for c in self.changes if c.action != "unchanged"]

    @property
    def helm_needed(self) -> bool:
        """True when the chart part must go through Helm (install, upgrade or repair)."""
        if self.release is None or self.release.status != "deployed":
            return True
        if self.release.config != self.chart_values:
            return True
        return any(c.via == "helm" and c.action != "unchanged" for c in self.changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form for ``-o json``."""
        return {
            "source": str(self.state.directory),
            "version": self.state.version,
            "release": self.state.release,
            "namespace": self.state.namespace,
            "inSync": self.in_sync,
            "summary": self.counts(),
            "helmRelease": None
            if self.release is None
            else {
                "revision": self.release.revision,
                "status": self.release.status,
                "version": self.release.cilium_version,
            },
            "objects": [c.as_dict() for c in self.changes],
            "kept": [{"object": str(k), "reason": r} for k, r in self.kept],
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


# ----------------------------------------------------------------------------- values
def chart_values(state: DesiredState, detected: dict[str, Any]) -> dict[str, Any]:
    """Values the chart is rendered with: detected < pinned version < the desired values."""
    from ciliumctl.helm.values import merge

    values = merge(detected, {"ciliumVersion": state.version})
    return merge(values, state.values)


def detected_values(client: PlanClient) -> dict[str, Any]:
    """What `cilium install` would detect for this cluster (flavor, kube-proxy, name)."""
    from ciliumctl.install.detect import detect

    found: dict[str, Any] = detect(client).values
    return found


def chart_crds(chart: Path) -> list[Obj]:
    """The chart's CRDs (what ``helm template --include-crds`` adds), parsed once per file
    content and cached as JSON: the policy CRDs are large and YAML is slow to build."""
    from ciliumctl import yamlio

    out: list[Obj] = []
    for path in sorted((chart / "crds").glob("*.yaml")):
        data = path.read_bytes()
        cached = _cache_dir("crds") / f"{hashlib.sha256(data).hexdigest()}.json"
        try:
            docs = json.loads(cached.read_text())
        except (OSError, ValueError):
            docs = [d for d in yamlio.load_all(data) if isinstance(d, dict)]
            _write_cache(cached, docs, keep=256)
        out += [d for d in docs if isinstance(d, dict)]
    return out


def _render(
    renderer: Renderer,
    state: DesiredState,
    chart: Path,
    values: dict[str, Any],
    kube_version: str | None,
) -> list[tuple[Obj, bool]]:
    """The chart's objects for ``values``, each with whether it is partial: from the render
    cache (ignored fields left out), or rendered by Helm."""
    key = _render_key(renderer, state, chart, values, kube_version)
    cached = _cache_dir("renders") / f"{key}.json"
    crds = [(crd, False) for crd in chart_crds(chart)]
    try:
        entry = json.loads(cached.read_text())
        partial = set(entry["partial"])
        return crds + [(o, i in partial) for i, o in enumerate(entry["objects"])]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    rendered = renderer.template(
        state.release, state.namespace, chart, values, include_crds=False,
        kube_version=kube_version,
    )  # fmt: skip
    stripped = _without_secrets(rendered, state.ignore)
    if stripped is not None:
        _write_cache(cached, stripped)
    return crds + [(o, False) for o in rendered]


def _render_key(
    renderer: Renderer,
    state: DesiredState,
    chart: Path,
    values: dict[str, Any],
    kube_version: str | None,
) -> str:
    """Everything a render depends on: chart files, values, release, namespace, cluster
    version, the helm binary and the ignore rules (they decide what the cache strips)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in chart.rglob("*") if p.is_file() and "crds" not in p.parts):
        digest.update(str(path.relative_to(chart)).encode() + b"\0" + path.read_bytes() + b"\0")
    executable = str(getattr(renderer, "executable", type(renderer).__name__))
    try:
        stamp = os.stat(executable).st_mtime_ns
    except OSError:
        stamp = 0
    rules = [(r.kind, r.group, r.name, r.namespace, r.pointers) for r in state.ignore]
    extra = [values, state.release, state.namespace, kube_version, executable, stamp, rules]
    digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _without_secrets(rendered: list[Obj], rules: list[IgnoreRule]) -> dict[str, Any] | None:
    """The render with every ignored field removed (and which objects lost fields), if that
    leaves no Secret value in it: the Hubble certificates are ignored; a render with a
    Secret carrying anything else is never cached."""
    out, partial = [], []
    for index, obj in enumerate(rendered):
        if (
            obj.get("kind") in ("Secret", "ConfigMap")
            and group_of(str(obj.get("apiVersion"))) == ""
        ):
            kept = normalize(obj, rules)
            if kept.get("kind") == "Secret" and (kept.get("data") or kept.get("stringData")):
                return None
            if kept != obj:
                partial.append(index)
            obj = kept
        out.append(obj)
    return {"objects": out, "partial": partial}


#: Overrides where renders and parsed CRDs are cached (default ~/.cache/ciliumctl/reconcile).
CACHE_ENV = "CILIUMCTL_RECONCILE_CACHE"


def _cache_dir(kind: str) -> Path:
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root) / kind
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return home / "ciliumctl" / "reconcile" / kind


def _write_cache(path: Path, data: Any, keep: int = 32) -> None:
    """Write atomically; keep the ``keep`` newest entries; a read-only cache is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
        entries = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-keep]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


# ----------------------------------------------------------------------------- compare
def _fix_scope(client: PlanClient, obj: Obj, default_namespace: str) -> Obj:
    """Drop metadata.namespace of cluster-scoped kinds; default it for namespaced ones."""
    from ciliumctl.k8s.errors import NotFoundError

    try:
        info = client.resource(str(obj["apiVersion"]), str(obj["kind"]))
    except NotFoundError:
        return obj  # kind not served yet (its CRD comes with this apply)
    meta = obj.setdefault("metadata", {})
    if not info.namespaced:
        meta.pop("namespace", None)
    elif not meta.get("namespace"):
        meta["namespace"] = default_namespace
    return obj


def _origin_problem(item: DesiredObject, exc: CiliumctlError) -> Problem:
    from ciliumctl.k8s.errors import InvalidError

    file = item.origin.file if item.origin else f"chart ({CONFIG_FILE} values)"
    line = item.origin.line if item.origin else None
    if isinstance(exc, InvalidError) and exc.causes:
        fields = "; ".join(f"{c.field}: {c.message}" for c in exc.causes)
        return Problem(file, f"{item.key} rejected by the API server: {fields}", "", line)
    return Problem(file, f"{item.key}: {exc.message}", "", line)


def compare(
    client: PlanClient,
    item: DesiredObject,
    via: str,
    rules: list[IgnoreRule],
    released: Obj | None = None,
    live: Obj | object | None = _FETCH,
) -> Change:
    """Dry-run one desired object and compare the answer with the live object.

    ``live`` is the live object when the caller fetched it already (``None``: absent);
    by default it is read here."""
    from ciliumctl.k8s.errors import NotFoundError

    obj = item.obj
    meta = obj.get("metadata") or {}
    api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
    name, namespace = str(meta["name"]), meta.get("namespace")
    key = Key.of(obj)
    origin = str(item.origin) if item.origin else None
    if live is _FETCH:
        live = client.get_or_none(api_version, kind, name, namespace)
    assert live is None or isinstance(live, dict)
    prepared = respect_ignored(obj, live, rules)
    change = Change(key, api_version, "unchanged", item.source, via, origin, "", prepared, live)
    if live is not None and unchanged_fast(prepared, live):
        answer: Obj = live  # the server would answer with the live object: no request
    elif live is None and item.partial:
        answer = prepared  # Helm creates it from a full render; its certificates are ignored
    else:
        try:
            answer = client.apply(prepared, force=True, dry_run=True)
        except NotFoundError:
            if live is not None:
                raise
            # The kind or namespace does not exist yet: both come earlier in the same apply.
            answer = prepared
    if live is None:
        change.action = "created"
        change.diff = unified_diff(key, None, normalize(answer))
        return change
    after = normalize(answer, rules)
    before = normalize(live, rules)
    if before != after:
        change.action = "changed"
        change.diff = unified_diff(key, before, after)
        change.patch = json_patch(before, after)
    elif released is not None:
        # Helm also removes what the previous manifest had and this one drops.
        old, new = normalize(released, rules), normalize(obj, rules)
        if old != new:
            change.action = "changed"
            change.diff = unified_diff(key, old, new)
            change.patch = json_patch(old, new)
    return change


def _deleted(
    key: Key, api_version: str, live: Obj, source: str, via: str, rules: list[IgnoreRule]
) -> Change:
    return Change(
        key, api_version, "deleted", source, via, None,
        unified_diff(key, normalize(live, rules), None), None, live,
    )  # fmt: skip


def compute(
    client: PlanClient,
    renderer: Renderer,
    state: DesiredState,
    chart: Path,
    *,
    detected: dict[str, Any] | None = None,
    workers: int = WORKERS,
    progress: Progress = lambda _: None,
) -> Plan:
    """The plan for ``state``: every object created, changed, deleted or unchanged.

    Raises :class:`DesiredStateError` when the API server rejects a desired object (the
    error names the file and field), before anything is changed. While Helm renders the
    chart, the node configs, policies and extra objects are compared and the live copies
    of the objects the release already has are fetched.
    """
    from ciliumctl.install.install import kube_version_of

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        f_detect = pool.submit(detected_values, client) if detected is None else None
        f_kube = pool.submit(kube_version_of, client)
        f_release = pool.submit(rel.read, client, state.release, state.namespace)
        f_inventory = pool.submit(inv.read, client, state.namespace, state.inventory)
        values = chart_values(state, f_detect.result() if f_detect else detected or {})
        progress(f"rendering the chart for Cilium {state.version}")
        f_render = pool.submit(_render, renderer, state, chart, values, f_kube.result())
        user_items = []
        for user in state.objects:
            obj = mark(
                _fix_scope(client, copy.deepcopy(user.obj), state.namespace), state.inventory
            )
            user_items.append((DesiredObject(obj, user.source, user.origin), "ssa"))
        user_futures = [
            (item, pool.submit(compare, client, item, via, state.ignore))
            for item, via in user_items
        ]
        release = f_release.result()
        released: dict[Key, Obj] = {}
        if release is not None:
            for obj in release.objects():
                if obj.get("kind") and (obj.get("metadata") or {}).get("name"):
                    released[Key.of(_fix_scope(client, obj, state.namespace))] = obj
        prefetched = {
            key: pool.submit(
                client.get_or_none, str(obj["apiVersion"]), key.kind, key.name,
                key.namespace or None,
            )
            for key, obj in released.items()
        }  # fmt: skip
        inventory = f_inventory.result()
        plan = Plan(state, [], values, release, inventory, warnings=list(state.warnings))
        _check_release_path(state, release)
        chart_items = _chart_items(client, state, f_render.result())
        problems = [
            Problem(str(item.origin), f"{item.key} is rendered by the chart; set it through "
                    f"values in {CONFIG_FILE} instead", "metadata.name",
                    item.origin.line if item.origin else None)
            for item, _ in user_items if item.key in {i.key for i, _ in chart_items}
        ]  # fmt: skip
        if problems:
            raise DesiredStateError(problems)
        progress(f"comparing {len(chart_items) + len(user_items)} objects with the cluster")
        futures = user_futures + [
            (
                item,
                pool.submit(
                    compare, client, item, via, state.ignore, released.get(item.key),
                    prefetched[item.key].result() if item.key in prefetched else _FETCH,
                ),
            )
            for item, via in chart_items
        ]  # fmt: skip
        errors = []
        for item, future in futures:
            try:
                plan.changes.append(future.result())
            except CiliumctlError as exc:
                from ciliumctl.k8s.errors import InvalidError

                if not isinstance(exc, InvalidError):
                    raise
                errors.append(_origin_problem(item, exc))
        if errors:
            raise DesiredStateError(errors)
        desired_keys = {item.key for item, _ in chart_items + user_items}
        _deletions(client, plan, released, desired_keys, pool)
    plan.changes.sort(key=lambda c: (ACTIONS.index(c.action), c.key))
    plan.seconds = time.monotonic() - started
    return plan


def mark(obj: Obj, inventory: str) -> Obj:
    """Add the inventory and desired-hash annotations to an object applied by SSA."""
    annotations = obj.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[INVENTORY_ANNOTATION] = inventory
    annotations[HASH_ANNOTATION] = desired_hash(obj)
    return obj


def _chart_items(
    client: PlanClient, state: DesiredState, rendered: list[tuple[Obj, bool]]
) -> list[tuple[DesiredObject, str]]:
    """The rendered objects: CRDs go through server-side apply, the rest through Helm."""
    items = []
    for obj, partial in rendered:
        if not obj.get("kind") or is_generated(group_of(str(obj["apiVersion"])), str(obj["kind"])):
            continue
        item = DesiredObject(_fix_scope(client, obj, state.namespace), "chart", partial=partial)
        via = "ssa" if item.key.kind == "CustomResourceDefinition" else "helm"
        if via == "ssa":
            mark(item.obj, state.inventory)
        items.append((item, via))
    return items


def _check_release_path(state: DesiredState, release: rel.Release | None) -> None:
    from ciliumctl.install import releases

    if release is None or not release.cilium_version:
        return
    try:
        problem = releases.upgrade_path_problem(release.cilium_version, state.version)
    except CiliumctlError:
        return
    if problem:
        raise DesiredStateError(
            [Problem(str(state.directory / CONFIG_FILE), problem, "version")],
            "change the version one minor release at a time, as the upgrade guide says",
        )


def _deletions(
    client: PlanClient,
    plan: Plan,
    released: dict[Key, Obj],
    desired_keys: set[Key],
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """Chart objects the release has and the render drops (Helm deletes them), and objects
    of the previous inventory no longer desired that may be pruned."""
    rules = plan.state.ignore
    gone: list[tuple[Key, str, str, str, str | None]] = []
    for key, obj in released.items():
        if key not in desired_keys and not is_generated(key.group, key.kind):
            gone.append((key, str(obj["apiVersion"]), "chart", "helm", None))
    entries = plan.inventory.entries if plan.inventory is not None else []
    for entry in entries:
        if entry.key in desired_keys or entry.via != "ssa":
            continue
        gone.append((entry.key, entry.api_version, "inventory", "ssa", None))
    lives = pool.map(
        lambda g: client.get_or_none(g[1], g[0].kind, g[0].name, g[0].namespace or None), gone
    )
    for (key, api_version, source, via, _), live in zip(gone, lives, strict=True):
        if via == "helm":
            if live is not None:
                plan.changes.append(_deleted(key, api_version, live, source, via, rules))
            continue
        entry = inv.Entry(api_version, key.kind, key.namespace, key.name, via)
        allowed, reason = inv.prune_decision(entry, live, plan.state.inventory)
        if allowed and live is not None:
            plan.changes.append(_deleted(key, api_version, live, source, via, rules))
        elif live is not None:
            plan.kept.append((key, reason))
