"""Install, upgrade, roll back and uninstall Cilium with the bundled Helm chart.

Every command checks its input (version, values files, --set expressions, the values
themselves) before it changes anything in the cluster. Upgrades keep the user's values
(reset-then-reuse by default), keep the CRDs current (Helm does not upgrade ``crds/``),
and roll back to the previous revision by themselves when the new agents do not become
ready in time.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from ciliumctl import yamlio
from ciliumctl.errors import CiliumctlError, UsageError
from ciliumctl.helm.protocols import HelmPuller, HelmRenderer, HelmWriter
from ciliumctl.helm.values import diff_from_defaults, merge
from ciliumctl.install import releases
from ciliumctl.install.detect import Detection, detect
from ciliumctl.validators.values import ValueFinding, check_values

Progress = Callable[[str], None]
#: Receives the images a rendering deploys; raises to stop before anything is applied.
ImageCheck = Callable[[list[str]], None]
AGENT = ("apps/v1", "DaemonSet", "cilium")
OPERATOR = ("apps/v1", "Deployment", "cilium-operator")
DATAPATH_MODES: dict[str, dict[str, Any]] = {
    "tunnel": {"routingMode": "tunnel", "tunnelProtocol": "vxlan"},
    "native": {"routingMode": "native"},
    "aws-eni": {"eni": {"enabled": True}, "ipam": {"mode": "eni"}, "routingMode": "native"},
    "gke": {"gke": {"enabled": True}, "ipam": {"mode": "kubernetes"}, "routingMode": "native"},
    "azure": {"azure": {"enabled": True}, "ipam": {"mode": "azure"}, "routingMode": "native"},
    "aks-byocni": {"aksbyocni": {"enabled": True}, "routingMode": "tunnel"},
}


class ValuesCheckError(CiliumctlError):
    """The values failed the check; nothing was changed in the cluster."""

    def __init__(self, findings: list[ValueFinding]) -> None:
        errors = [f for f in findings if f.severity == "error"]
        lines = [f"{f.key}: {f.message}" + (f" ({f.fix})" if f.fix else "") for f in errors]
        super().__init__(
            "invalid values, nothing was changed:\n  " + "\n  ".join(lines),
            "fix the keys above in your -f files or --set flags",
        )
        self.findings = findings


class HelmLike(HelmRenderer, HelmWriter, Protocol):
    """The Helm operations install and upgrade use (see :class:`ciliumctl.helm.Helm`)."""

    def status(self, release: str, namespace: str) -> dict[str, Any] | None: ...

    def get_values(
        self, release: str, namespace: str, *, all_values: bool = False, revision: int | None = None
    ) -> dict[str, Any]: ...

    def history(self, release: str, namespace: str) -> list[dict[str, Any]]: ...

    def template_text(
        self,
        release: str,
        namespace: str,
        chart: Path,
        values: dict[str, Any],
        *,
        include_crds: bool = False,
        is_upgrade: bool = False,
        kube_version: str | None = None,
        api_versions: list[str] | None = None,
    ) -> str: ...


@dataclass
class Target:
    """Where the release lives and which chart renders it."""

    release: str
    namespace: str
    chart: Path


@dataclass
class Outcome:
    """What an install/upgrade did, for the CLI to render."""

    action: str
    version: str
    revision: int | None = None
    manifests: str | None = None
    values: dict[str, Any] | None = None
    findings: list[ValueFinding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rolled_back_to: int | None = None


# ---------------------------------------------------------------------------- chart data
def chart_defaults(chart: Path) -> dict[str, Any]:
    """The chart's values.yaml (a private copy: callers may change it)."""
    return copy.deepcopy(_load_defaults(chart))


@cache
def _load_defaults(chart: Path) -> dict[str, Any]:
    # Parsed once per process: upgrade and preflight consult the defaults several times.
    data: dict[str, Any] = yamlio.load((chart / "values.yaml").read_text()) or {}
    return data


#: Values only this project's chart has; another chart (upstream's) never receives them.
OWN_KEYS = ("ciliumVersion", "imageRegistry")


def is_own_chart(chart: Path) -> bool:
    """True for ciliumctl's chart (it selects the Cilium release by ``ciliumVersion``)."""
    return "ciliumVersion" in _load_defaults(chart)


def chart_app_version(chart: Path) -> str:
    """The chart's ``appVersion`` (or ``version``), without a leading v."""
    meta: dict[str, Any] = yamlio.load((chart / "Chart.yaml").read_text()) or {}
    version = str(meta.get("appVersion") or meta.get("version") or "").lstrip("v")
    if not version:
        raise UsageError(
            f"{chart / 'Chart.yaml'} has neither appVersion nor version",
            "point --chart-directory at a Cilium chart",
        )
    return version


def target_version(chart: Path, version: str | None) -> str:
    """The Cilium release ``chart`` installs for ``--version``.

    This project's chart installs any supported release; another chart (upstream's, from
    --chart-directory or --repository) installs its own appVersion only.
    """
    if is_own_chart(chart):
        return releases.check_supported(version or releases.default_version())
    own = chart_app_version(chart)
    if version is not None and version.lstrip("v") != own:
        raise UsageError(
            f"--version {version} does not match the chart in {chart} (Cilium {own})",
            "drop --version, or use that version's chart",
        )
    return own


def for_chart(values: dict[str, Any], chart: Path, version: str) -> dict[str, Any]:
    """``values`` as ``chart`` takes them: ``ciliumVersion`` set for this project's chart,
    this project's own keys dropped for any other chart (whose schema would reject them)."""
    out = dict(values)
    if is_own_chart(chart):
        out["ciliumVersion"] = version
        return out
    for key in OWN_KEYS:
        if key not in _load_defaults(chart):
            out.pop(key, None)
    return out


#: The chart's name in a repository (cilium-cli's, and upstream's, is "cilium").
CHART_NAME = "cilium"


def fetch_chart(helm: HelmPuller, repository: str, version: str, directory: Path) -> Path:
    """Pull the ``cilium`` chart of ``version`` from ``repository`` into ``directory``.

    ``repository`` is a Helm HTTP(S) repository (like cilium-cli's default
    https://helm.cilium.io) or an ``oci://`` registry path; a loopback registry is spoken to
    over plain HTTP. The chart pulled must be the chart version asked for.
    """
    from urllib.parse import urlparse

    url = urlparse(repository)
    if url.scheme == "oci" and url.netloc:
        host = url.hostname or ""
        loopback = host == "localhost" or host.startswith("127.") or host == "::1"
        reference = f"{repository.rstrip('/')}/{CHART_NAME}"
        helm.pull(reference, version, directory, plain_http=loopback)
    elif url.scheme in ("http", "https") and url.netloc:
        helm.pull(CHART_NAME, version, directory, repo=repository)
    else:
        raise UsageError(
            f"--repository {repository!r} is neither an http(s):// Helm repository nor an "
            "oci:// registry",
            "use e.g. https://helm.cilium.io or oci://registry.example.com/charts",
        )
    chart = directory / CHART_NAME
    meta: dict[str, Any] = yamlio.load((chart / "Chart.yaml").read_text()) or {}
    if str(meta.get("version", "")).lstrip("v") != version:
        raise CiliumctlError(
            f"{repository} served chart version {meta.get('version')} for {version}",
            "check the repository's index (or the registry tag)",
        )
    return chart


def unmodelled_lines(chart: Path) -> dict[str, str]:
    """``key -> reason`` of unmodelled-keys.txt (lines ``key  # reason``; ``#`` lines are
    comments)."""
    path = chart / "unmodelled-keys.txt"
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, _, reason = line.partition("#")
        if key.strip():
            out[key.strip()] = reason.strip()
    return out


def unmodelled_keys(chart: Path) -> set[str]:
    """Upstream chart keys that this chart does not model: setting one is an error."""
    return set(unmodelled_lines(chart))


def unmodelled_defaults(chart: Path) -> dict[str, Any]:
    """Upstream 1.18's defaults of unmodelled keys (unmodelled-defaults.yaml): setting a key
    to exactly its upstream default changes nothing upstream renders, so it is accepted."""
    path = chart / "unmodelled-defaults.yaml"
    if not path.exists():
        return {}
    loaded = yamlio.load(path.read_text()) or {}
    return loaded if isinstance(loaded, dict) else {}


def check_user_values(
    user: dict[str, Any],
    chart: Path,
    target_version: str,
    *,
    from_version: str | None = None,
    effective: dict[str, Any] | None = None,
) -> list[ValueFinding]:
    """Run the values check; raise :class:`ValuesCheckError` when it finds errors."""
    findings = check_values(
        user,
        chart_defaults(chart),
        target_version=target_version,
        from_version=from_version,
        unmodelled=unmodelled_keys(chart),
        unmodelled_defaults=unmodelled_defaults(chart),
        effective=effective,
    )
    if any(f.severity == "error" for f in findings):
        raise ValuesCheckError(findings)
    return findings


def precheck(user: dict[str, Any], chart: Path, version: str | None) -> None:
    """Check the version and the user's values before any cluster is contacted.

    Unknown keys, keys removed in the target version and upstream keys this chart would
    ignore fail here, so a bad request never reaches the cluster (not even its API server).
    """
    check_user_values(user, chart, target_version(chart, version))


def render(
    helm: HelmLike,
    target: Target,
    values: dict[str, Any],
    *,
    is_upgrade: bool = False,
    kube_version: str | None = None,
) -> list[dict[str, Any]]:
    """The objects the chart renders for ``values`` (CRDs included) for this cluster."""
    return helm.template(
        target.release,
        target.namespace,
        target.chart,
        values,
        include_crds=True,
        is_upgrade=is_upgrade,
        kube_version=kube_version,
    )


def check_images(
    client: Any,
    helm: HelmLike,
    target: Target,
    values: dict[str, Any],
    image_check: ImageCheck,
    progress: Progress,
) -> None:
    """Render ``values`` and hand every deployed image to ``image_check`` (may raise)."""
    from ciliumctl.verify.images import rendered_images

    objects = render(helm, target, values, kube_version=kube_version_of(client))
    images = rendered_images(objects)
    progress(f"verifying the signatures of {len(images)} images")
    image_check(images)


def kube_version_of(client: Any) -> str | None:
    """The cluster's Kubernetes version (for rendering as the cluster would)."""
    try:
        return str(client.server_version().get("gitVersion") or "") or None
    except CiliumctlError:
        return None


# ---------------------------------------------------------------------------- install
def plan_install(
    client: Any,
    target: Target,
    user: dict[str, Any],
    *,
    version: str | None,
    datapath_mode: str | None = None,
    detection: Detection | None = None,
) -> tuple[dict[str, Any], list[ValueFinding], Detection]:
    """Final values for a new install: detected < datapath mode < version < user values."""
    norm = target_version(target.chart, version)
    if datapath_mode is not None and datapath_mode not in DATAPATH_MODES:
        raise UsageError(
            f"invalid --datapath-mode {datapath_mode!r}", f"use one of: {', '.join(DATAPATH_MODES)}"
        )
    findings = check_user_values(user, target.chart, norm)
    found = detection or detect(client)
    values = merge(found.values, DATAPATH_MODES.get(datapath_mode or "", {}))
    values = merge(for_chart(values, target.chart, norm), user)
    return values, findings, found


def install(
    client: Any,
    helm: HelmLike,
    target: Target,
    user: dict[str, Any],
    *,
    version: str | None = None,
    datapath_mode: str | None = None,
    dry_run: bool = False,
    dry_run_helm_values: bool = False,
    wait: bool = False,
    wait_duration: float = 300.0,
    progress: Progress = lambda _: None,
    image_check: ImageCheck | None = None,
) -> Outcome:
    """`cilium install`: refuse an existing release, check, render, install, wait.

    ``image_check`` (``--verify-images``) receives every image the rendered chart deploys
    and raises to stop the install before anything is applied.
    """
    values, findings, detection = plan_install(
        client, target, user, version=version, datapath_mode=datapath_mode
    )
    norm = str(values.get("ciliumVersion") or target_version(target.chart, version))
    existing = helm.status(target.release, target.namespace)
    if existing is not None and not dry_run and not dry_run_helm_values:
        state = str(existing.get("info", {}).get("status", ""))
        if state in ("pending-install", "failed") and int(existing.get("version", 1)) == 1:
            progress(f"removing the interrupted first install ({state}) to start over")
            helm.uninstall(target.release, target.namespace, wait=True)
        elif state == "deployed" and helm.get_values(target.release, target.namespace) == values:
            # The same install already went through (e.g. a re-run after an interruption).
            progress("Cilium is already installed with these values")
            if wait:
                wait_for_cilium(client, target.namespace, timeout=wait_duration, progress=progress)
            return Outcome(
                "unchanged",
                norm,
                revision=int(existing.get("version", 1)),
                findings=findings,
                notes=detection.notes,
            )
        else:
            raise CiliumctlError(
                f"Cilium is already installed: Helm release {target.release!r} in "
                f"{target.namespace} (revision {existing.get('version')}, {state})",
                "use `cilium upgrade` to change it",
            )
    if dry_run_helm_values:
        return Outcome(
            "dry-run-helm-values",
            norm,
            values=diff_from_defaults(values, chart_defaults(target.chart)),
            findings=findings,
            notes=detection.notes,
        )
    if dry_run:
        manifests = helm.template_text(
            target.release,
            target.namespace,
            target.chart,
            values,
            include_crds=True,
            kube_version=kube_version_of(client),
        )
        return Outcome(
            "dry-run", norm, manifests=manifests, findings=findings, notes=detection.notes
        )
    if image_check is not None:
        check_images(client, helm, target, values, image_check, progress)
    progress(
        f"installing Cilium {norm} ({detection.flavor} cluster, "
        f"cluster name {detection.cluster_name})"
    )
    status = helm.install_or_upgrade(
        target.release, target.namespace, target.chart, values, description=f"cilium install {norm}"
    )
    outcome = Outcome(
        "install",
        norm,
        revision=int(status.get("version", 1)),
        findings=findings,
        notes=detection.notes,
    )
    if wait:
        wait_for_cilium(client, target.namespace, timeout=wait_duration, progress=progress)
    return outcome


# ---------------------------------------------------------------------------- readiness
def cilium_refs(client: Any, namespace: str) -> list[Any]:
    """The workloads `--wait` waits for: the agent, the operator, and Hubble if deployed."""
    from ciliumctl.k8s import ObjectRef

    refs = [
        ObjectRef(AGENT[0], AGENT[1], AGENT[2], namespace),
        ObjectRef(OPERATOR[0], OPERATOR[1], OPERATOR[2], namespace),
    ]
    for name in ("hubble-relay", "hubble-ui"):
        if client.get_or_none("apps/v1", "Deployment", name, namespace) is not None:
            refs.append(ObjectRef("apps/v1", "Deployment", name, namespace))
    return refs


def failing_pods(client: Any, namespace: str) -> list[str]:
    """Cilium pods that kstatus calls Failed (crash-looping agents or operators)."""
    from ciliumctl.k8s.readiness import Status, compute

    bad = []
    for selector in ("k8s-app=cilium", "io.cilium/app=operator"):
        for pod in client.list("v1", "Pod", namespace, label_selector=selector):
            result = compute(pod)
            if result.status is Status.FAILED and not pod["metadata"].get("deletionTimestamp"):
                bad.append(f"{pod['metadata']['name']}: {result.message}")
    return bad


def wait_for_cilium(
    client: Any,
    namespace: str,
    *,
    timeout: float,
    progress: Progress = lambda _: None,
    interval: float = 1.0,
) -> None:
    """Wait until the agent and operator are Current; fail fast on crash-looping pods."""
    from ciliumctl.k8s import KubeTimeoutError
    from ciliumctl.k8s.readiness import Status

    deadline = time.monotonic() + timeout
    refs = cilium_refs(client, namespace)
    while True:
        results = {ref: client.status_of(ref) for ref in refs}
        pending = [
            f"{ref.kind} {ref.name}: {r.message}"
            for ref, r in results.items()
            if r.status is not Status.CURRENT
        ]
        if not pending:
            progress("Cilium is ready")
            return
        progress("waiting: " + "; ".join(pending))
        broken = failing_pods(client, namespace)
        if broken:
            raise CiliumRolloutError("Cilium pods are failing: " + "; ".join(broken[:5]))
        if time.monotonic() >= deadline:
            raise KubeTimeoutError(
                f"Cilium not ready after {timeout:.0f}s: " + "; ".join(pending),
                "raise --wait-duration or run `cilium status`",
            )
        time.sleep(interval)


class CiliumRolloutError(CiliumctlError):
    """Cilium's pods failed during a rollout."""


# ---------------------------------------------------------------------------- upgrade
def _release_version(helm: HelmLike, target: Target, status: dict[str, Any]) -> str:
    values = helm.get_values(target.release, target.namespace, all_values=True)
    version = values.get("ciliumVersion") or status.get("chart", {}).get("metadata", {}).get(
        "appVersion"
    )
    if not version:
        # Another chart (upstream's) installs its appVersion, which the history records.
        history = helm.history(target.release, target.namespace)
        version = history[-1].get("app_version") if history else None
    if not version:
        raise CiliumctlError(
            f"cannot tell which Cilium version release {target.release!r} runs",
            "pass --version explicitly",
        )
    return str(version).lstrip("v")


def _original_minor(helm: HelmLike, target: Target) -> str | None:
    history = helm.history(target.release, target.namespace)
    if not history:
        return None
    first = int(history[0].get("revision", 1))
    try:
        values = helm.get_values(target.release, target.namespace, all_values=True, revision=first)
    except CiliumctlError:
        return None
    version = values.get("ciliumVersion") or history[0].get("app_version")
    if not version:
        return None
    major, minor, _ = releases.parse(str(version))
    return f"{major}.{minor}"


def apply_crds(client: Any, chart: Path, *, dry_run: bool = False) -> list[str]:
    """Server-side apply the chart's CRDs (Helm never upgrades ``crds/``)."""
    applied = []
    for path in sorted((chart / "crds").glob("*.yaml")):
        for doc in yamlio.load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                client.apply(doc, force=True, dry_run=dry_run)
                applied.append(doc["metadata"]["name"])
    return applied


def manifest_diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    """A per-object unified diff of two renderings."""
    import difflib

    def key(obj: dict[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        ns = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
        return f"{obj.get('kind')} {ns}{meta.get('name')}"

    before = {key(o): yamlio.dump(o, sort_keys=True) for o in old if isinstance(o, dict)}
    after = {key(o): yamlio.dump(o, sort_keys=True) for o in new if isinstance(o, dict)}
    chunks = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name, ""), after.get(name, "")
        if a == b:
            continue
        label = "created" if not a else "deleted" if not b else "changed"
        diff = difflib.unified_diff(
            a.splitlines(keepends=True),
            b.splitlines(keepends=True),
            f"{name} (current)",
            f"{name} (upgrade)",
        )
        chunks.append(f"# {name}: {label}\n" + "".join(diff))
    return "\n".join(chunks) if chunks else "# no changes\n"


def upgrade(
    client: Any,
    helm: HelmLike,
    target: Target,
    user: dict[str, Any],
    *,
    version: str | None = None,
    values_mode: str = "reset-then-reuse",
    force_version: bool = False,
    dry_run: bool = False,
    dry_run_helm_values: bool = False,
    wait: bool = True,
    wait_duration: float = 300.0,
    restart: bool = False,
    progress: Progress = lambda _: None,
    image_check: ImageCheck | None = None,
) -> Outcome:
    """`cilium upgrade`: check path and values, refresh CRDs, upgrade, roll back on failure."""
    if values_mode not in ("reset-then-reuse", "reset", "reuse"):
        raise UsageError(
            f"invalid values mode {values_mode!r}",
            "use --reset-values, --reuse-values or --reset-then-reuse-values",
        )
    status = helm.status(target.release, target.namespace)
    if status is None:
        raise CiliumctlError(
            f"no Helm release {target.release!r} in namespace {target.namespace}",
            "install Cilium first with `cilium install` (or pass --helm-release-name/-n)",
        )
    state = str(status.get("info", {}).get("status", ""))
    if state.startswith("pending-"):
        raise CiliumctlError(
            f"release {target.release!r} is {state}: another operation is in progress or "
            "was interrupted",
            "wait for it, or run `cilium upgrade --rollback`",
        )
    current = _release_version(helm, target, status)
    norm = target_version(target.chart, version)
    notes: list[str] = []
    problem = releases.upgrade_path_problem(current, norm)
    if problem and not force_version:
        raise UsageError(problem, "pass --force-version to do it anyway")
    if problem:
        notes.append(f"forced: {problem}")
    newest = releases.newest_patch_of(current)
    if newest != current:
        notes.append(
            f"the installed {current} is not the newest patch of its minor "
            f"({newest}); the upgrade guide recommends upgrading to it first"
        )

    previous = helm.get_values(target.release, target.namespace)
    if values_mode == "reset-then-reuse":
        values = merge(previous, user)
    elif values_mode == "reuse":
        values = dict(user)
    else:
        values = dict(user)
    values = for_chart(values, target.chart, norm)
    if "upgradeCompatibility" not in values and "upgradeCompatibility" in _load_defaults(
        target.chart
    ):
        # Keep a pin from an earlier upgrade even when --reset-values drops the old values.
        original = previous.get("upgradeCompatibility") or _original_minor(helm, target)
        if original is not None:
            values["upgradeCompatibility"] = original
            if "upgradeCompatibility" not in previous:
                notes.append(f"upgradeCompatibility={original} (the version first installed)")
    effective = merge(chart_defaults(target.chart), values)
    findings = check_user_values(
        for_chart(merge(previous, user) if values_mode != "reset" else user, target.chart, norm),
        target.chart,
        norm,
        from_version=current,
        effective=effective,
    )
    if dry_run_helm_values:
        return Outcome(
            "dry-run-helm-values",
            norm,
            values=diff_from_defaults(values, chart_defaults(target.chart)),
            findings=findings,
            notes=notes,
        )
    if dry_run:
        old = helm.get_values(target.release, target.namespace, all_values=True)
        kube = kube_version_of(client)
        before = render(helm, target, old, is_upgrade=True, kube_version=kube)
        after = render(helm, target, values, is_upgrade=True, kube_version=kube)
        return Outcome(
            "dry-run", norm, manifests=manifest_diff(before, after), findings=findings, notes=notes
        )

    if image_check is not None:
        check_images(client, helm, target, values, image_check, progress)
    progress("updating CRDs")
    apply_crds(client, target.chart)
    progress(f"upgrading Cilium {current} -> {norm}")
    revision_before = int(status.get("version", 0))
    moved = _moved_under_us(helm, target, revision_before, finished_ok=True)
    if moved is not None:
        raise ConcurrentOperationError.of(target, moved)
    try:
        new = helm.install_or_upgrade(
            target.release,
            target.namespace,
            target.chart,
            values,
            reset_values=values_mode != "reuse",
            reuse_values=values_mode == "reuse",
            description=f"cilium upgrade {current} -> {norm}",
        )
    except CiliumctlError as exc:
        moved = _moved_under_us(helm, target, revision_before, error=exc.message)
        if moved is not None:
            raise ConcurrentOperationError.of(target, moved) from exc
        raise
    outcome = Outcome(
        "upgrade", norm, revision=int(new.get("version", 0)), findings=findings, notes=notes
    )
    if restart:
        restart_agents(client, target.namespace)
    if wait:
        try:
            wait_for_cilium(client, target.namespace, timeout=wait_duration, progress=progress)
        except CiliumctlError as exc:
            progress(f"upgrade failed ({exc.message}); rolling back to revision {revision_before}")
            helm.rollback(target.release, target.namespace, revision_before)
            wait_for_cilium(client, target.namespace, timeout=wait_duration, progress=progress)
            raise CiliumRolloutError(
                f"upgrade to {norm} failed and was rolled back to revision {revision_before} "
                f"(Cilium {current}): {exc.message}",
                "inspect the new version's pods (`cilium status`, pod logs) before retrying",
            ) from exc
    return outcome


class ConcurrentOperationError(CiliumctlError):
    """Another operation changed the release while this one was preparing or running."""

    @classmethod
    def of(cls, target: Target, detail: str) -> ConcurrentOperationError:
        return cls(
            f"another upgrade of release {target.release!r} in {target.namespace} is in "
            f"progress or just finished ({detail}); nothing was changed by this run",
            "wait for it to finish (`cilium status`), then re-run `cilium upgrade`",
        )


#: What helm says when two operations on one release overlap.
_HELM_CONCURRENCY = (
    "another operation (install/upgrade/rollback) is in progress",
    "already exists",
)


def _moved_under_us(
    helm: HelmLike,
    target: Target,
    revision: int,
    *,
    finished_ok: bool = False,
    error: str = "",
) -> str | None:
    """How the release changed since it was read at ``revision`` by someone else, or None.

    A pending-* state is another operation under way. A newer revision counts when it was
    certainly not made by this run: before this run's own helm call (``finished_ok``), or
    one that deployed while this run's call failed (a failed call leaves at most a failed
    revision of its own). Helm's own words for overlapping operations count too.
    """
    now = helm.status(target.release, target.namespace)
    if now is None:
        return f"the release was removed after revision {revision}"
    state = str(now.get("info", {}).get("status", ""))
    current = int(now.get("version", 0))
    if state.startswith("pending-"):
        return f"revision {current} is {state}"
    if current != revision and (finished_ok or state in ("deployed", "superseded")):
        return f"the release moved from revision {revision} to {current} ({state})"
    if any(words in error for words in _HELM_CONCURRENCY):
        return f"helm: {error.strip().splitlines()[-1]}"
    return None


def installed_version(helm: HelmLike, target: Target) -> str:
    """The Cilium version of the deployed release (error when there is none)."""
    status = helm.status(target.release, target.namespace)
    if status is None:
        raise CiliumctlError(
            f"no Helm release {target.release!r} in namespace {target.namespace}",
            "install Cilium first with `cilium install` (or pass --helm-release-name/-n)",
        )
    return _release_version(helm, target, status)


def reconfigure(
    client: Any,
    helm: HelmLike,
    target: Target,
    values: dict[str, Any],
    *,
    wait: bool = True,
    wait_duration: float = 300.0,
    progress: Progress = lambda _: None,
) -> Outcome:
    """Change values of the release without changing its Cilium version (hubble enable)."""
    return upgrade(
        client,
        helm,
        target,
        values,
        version=installed_version(helm, target),
        wait=wait,
        wait_duration=wait_duration,
        progress=progress,
    )


def rollback(
    helm: HelmLike,
    client: Any,
    target: Target,
    *,
    wait: bool = True,
    wait_duration: float = 300.0,
    progress: Progress = lambda _: None,
) -> int:
    """`cilium upgrade --rollback`: back to the previous revision; returns its number."""
    history = helm.history(target.release, target.namespace)
    if len(history) < 2:
        raise CiliumctlError(
            f"release {target.release!r} has no previous revision", "nothing to roll back to"
        )
    previous = int(history[-2]["revision"])
    progress(f"rolling back to revision {previous}")
    helm.rollback(target.release, target.namespace, previous)
    if wait:
        wait_for_cilium(client, target.namespace, timeout=wait_duration, progress=progress)
    return previous


def restart_agents(client: Any, namespace: str) -> None:
    """Roll the agent DaemonSet (as `kubectl rollout restart`)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    client.patch(
        AGENT[0],
        AGENT[1],
        AGENT[2],
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}
                }
            }
        },
        namespace,
    )


# ---------------------------------------------------------------------------- uninstall
CILIUM_GROUPS = ("cilium.io",)


#: What `uninstall` removes: the key of each list it returns -> how one item is named.
REMOVED_KINDS: dict[str, str] = {
    "release": "Helm release",
    "namespaces": "namespace",
    "crds": "CRD",
}


def uninstall(
    client: Any,
    helm: HelmLike,
    target: Target,
    *,
    wait: bool = False,
    purge: bool = False,
    timeout: float = 300.0,
    progress: Progress = lambda _: None,
) -> dict[str, list[str]]:
    """`cilium uninstall`: the release, the test namespaces, and with ``purge`` the CRDs."""
    removed: dict[str, list[str]] = {kind: [] for kind in REMOVED_KINDS}
    if helm.status(target.release, target.namespace) is not None:
        progress(f"uninstalling Helm release {target.release}")
        helm.uninstall(target.release, target.namespace, wait=wait, timeout=f"{int(timeout)}s")
        removed["release"].append(target.release)
    for ns in client.list("v1", "Namespace"):
        name = ns["metadata"]["name"]
        if name.startswith("cilium-test"):
            client.delete("v1", "Namespace", name)
            removed["namespaces"].append(name)
    if purge:
        for crd in client.list("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
            if crd.get("spec", {}).get("group") in CILIUM_GROUPS:
                client.delete(
                    "apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"]
                )
                removed["crds"].append(crd["metadata"]["name"])
    if wait:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = [
                n
                for n in removed["namespaces"]
                if client.get_or_none("v1", "Namespace", n) is not None
            ]
            left += [
                p["metadata"]["name"]
                for p in client.list("v1", "Pod", target.namespace, label_selector="k8s-app=cilium")
            ]
            # A purged CRD lingers until the API server has deleted all its custom resources.
            left += [
                n
                for n in removed["crds"]
                if client.get_or_none("apiextensions.k8s.io/v1", "CustomResourceDefinition", n)
                is not None
            ]
            if not left:
                break
            progress(f"waiting for {len(left)} object(s) to go")
            time.sleep(1)
    if not any(removed.values()):
        raise CiliumctlError(
            f"nothing to uninstall: no release {target.release!r} in "
            f"{target.namespace} and no cilium-test namespaces",
            "check --namespace and --helm-release-name",
        )
    return removed
