"""`cilium preflight check` and `cilium preflight cleanup`.

The check renders the chart with ``preflight.enabled=true`` for the target version (with
``k8sServiceHost/Port`` when kube-proxy is replaced), applies the objects, waits until the
``cilium-pre-flight-check`` DaemonSet is ready on every node that runs an agent and the
validator Deployment is 1/1, then validates every CNP/CCNP in the cluster and the release's
values against the target version, and returns one verdict. Only the pre-flight objects
are created, each marked with :data:`MARK`, and cleanup deletes exactly those.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ciliumctl.errors import CiliumctlError
from ciliumctl.helm.values import merge
from ciliumctl.install import releases
from ciliumctl.install.detect import detect
from ciliumctl.install.install import (
    HelmLike,
    Target,
    chart_defaults,
    unmodelled_defaults,
    unmodelled_keys,
)

Progress = Callable[[str], None]
NAME = "cilium-pre-flight-check"
MARK = "ciliumctl.io/preflight"
#: Kinds the pre-flight rendering may contain, and whether they are namespaced.
KINDS = (
    ("apps/v1", "DaemonSet", True),
    ("apps/v1", "Deployment", True),
    ("v1", "ServiceAccount", True),
    ("v1", "ConfigMap", True),
    ("rbac.authorization.k8s.io/v1", "Role", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", False),
)


@dataclass
class Verdict:
    """The outcome of the pre-flight check."""

    version: str
    ready: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    policies_checked: int = 0
    applied: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the cluster is ready for the upgrade."""
        return self.ready and not self.problems


def _running_agents(client: Any, namespace: str) -> int:
    pods = client.list("v1", "Pod", namespace, label_selector="k8s-app=cilium")
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")


def _wait(client: Any, namespace: str, timeout: float, progress: Progress) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        agents = _running_agents(client, namespace)
        ds = client.get_or_none("apps/v1", "DaemonSet", NAME, namespace) or {}
        dep = client.get_or_none("apps/v1", "Deployment", NAME, namespace) or {}
        ds_status, dep_status = ds.get("status") or {}, dep.get("status") or {}
        want = agents or int(ds_status.get("desiredNumberScheduled", 0))
        ready = int(ds_status.get("numberReady", 0))
        dep_ready = int(dep_status.get("readyReplicas", 0))
        progress(f"pre-flight DaemonSet {ready}/{want} ready, validator {dep_ready}/1")
        if want and ready >= want and dep_ready >= 1:
            return []
        if time.monotonic() >= deadline:
            problems = []
            if not want or ready < want:
                problems.append(
                    f"pre-flight DaemonSet ready on {ready} of {want} agent nodes "
                    f"after {timeout:.0f}s: the new image may not be pullable "
                    "everywhere"
                )
            if dep_ready < 1:
                problems.append(
                    "the CNP validator Deployment is not ready: a policy in the "
                    "cluster may be rejected by the new version"
                )
            return problems
        time.sleep(1.0)


def check(
    client: Any,
    helm: HelmLike,
    target: Target,
    *,
    version: str | None,
    user: dict[str, Any] | None = None,
    timeout: float = 300.0,
    progress: Progress = lambda _: None,
) -> Verdict:
    """Run the pre-flight check for upgrading to ``version``."""
    from ciliumctl.validators.cnp import parse_target, validate_cluster
    from ciliumctl.validators.findings import Severity
    from ciliumctl.validators.values import check_values

    norm = releases.check_supported(version or releases.default_version())
    verdict = Verdict(norm, ready=False)
    release = helm.status(target.release, target.namespace)
    current_values = (
        helm.get_values(target.release, target.namespace) if release is not None else {}
    )
    detection = detect(client)
    kpr = {
        k: v
        for k, v in detection.values.items()
        if k in ("k8sServiceHost", "k8sServicePort", "kubeProxyReplacement")
    }
    values = merge(merge(kpr, current_values), user or {})
    values = merge(values, {"ciliumVersion": norm, "preflight": {"enabled": True}})
    objects = helm.template(
        target.release,
        target.namespace,
        target.chart,
        values,
        kube_version=str(client.server_version().get("gitVersion", "")),
    )
    if not any(o.get("kind") == "DaemonSet" and o["metadata"]["name"] == NAME for o in objects):
        raise CiliumctlError(
            f"the chart at {target.chart} rendered no {NAME} DaemonSet with preflight.enabled=true",
            "use the bundled chart",
        )
    progress(f"applying {len(objects)} pre-flight objects for Cilium {norm}")
    for obj in objects:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("annotations", {})[MARK] = "true"
        meta.setdefault("labels", {})[MARK] = "true"
        if _namespaced(obj):
            meta.setdefault("namespace", target.namespace)
        client.apply(obj, force=True)
        verdict.applied.append(f"{obj['kind']} {meta['name']}")
    verdict.problems += _wait(client, target.namespace, timeout, progress)
    verdict.ready = not verdict.problems

    progress("validating CiliumNetworkPolicies and CiliumClusterwideNetworkPolicies")
    major, minor, _ = releases.parse(norm)
    report = validate_cluster(client, parse_target(f"{major}.{minor}"))
    verdict.policies_checked = report.documents
    for finding in report.sorted():
        where = finding.file.removeprefix("cluster:")
        text = f"{where}: {finding.message} ({finding.fix})"
        if finding.severity is Severity.ERROR:
            verdict.problems.append(text)
        elif finding.severity is Severity.WARNING:
            verdict.warnings.append(text)
    if release is not None:
        installed = str(
            current_values.get("ciliumVersion")
            or (release.get("chart", {}).get("metadata", {}) or {}).get("appVersion")
            or norm
        )
        for value_finding in check_values(
            current_values,
            chart_defaults(target.chart),
            target_version=norm,
            from_version=installed,
            unmodelled=unmodelled_keys(target.chart),
            unmodelled_defaults=unmodelled_defaults(target.chart),
            effective=merge(chart_defaults(target.chart), current_values),
        ):
            text = f"values {value_finding.key}: {value_finding.message}" + (
                f" ({value_finding.fix})" if value_finding.fix else ""
            )
            (verdict.problems if value_finding.severity == "error" else verdict.warnings).append(
                text
            )
    return verdict


def _namespaced(obj: dict[str, Any]) -> bool:
    return not any(obj.get("kind") == kind and not namespaced for _, kind, namespaced in KINDS)


def cleanup(client: Any, namespace: str) -> list[str]:
    """Delete every object the pre-flight check created (and nothing else)."""
    from ciliumctl.k8s.errors import NotFoundError

    deleted = []
    for api_version, kind, namespaced in KINDS:
        try:
            objects = client.list(
                api_version, kind, namespace if namespaced else None, label_selector=f"{MARK}=true"
            )
        except NotFoundError:
            continue
        for obj in objects:
            meta = obj["metadata"]
            if (meta.get("annotations") or {}).get(MARK) != "true":
                continue
            client.delete(api_version, kind, meta["name"], meta.get("namespace"))
            deleted.append(f"{kind} {meta['name']}")
    return deleted
