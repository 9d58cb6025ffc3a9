"""`cilium reconcile export argocd|flux`: the same desired state for another GitOps engine.

Argo CD: an Application with two sources (Cilium's Helm chart at the pinned version with the
values, and the directory's nodeconfigs/, policies/ and extra/), the ``ignoreDifferences``
that the "Troubleshooting Cilium deployed with Argo CD" page prescribes for the Hubble
certificates (plus the other certificates our chart generates and the user's rules),
``ServerSideApply=true`` and ``RespectIgnoreDifferences=true``, and the ``argocd-cm``
resource exclusions for the kinds Cilium generates (CiliumIdentity first of all).

Flux: a HelmRepository and HelmRelease (CRDs created and replaced, drift detection with the
same ignore rules) and one Kustomization per section of the directory.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ciliumctl import yamlio
from ciliumctl.reconcile.errors import ReconcileError
from ciliumctl.reconcile.objects import GENERATED_KINDS, IgnoreRule, builtin_ignore_rules
from ciliumctl.reconcile.source import SECTIONS, DesiredState

CHART_REPO = "https://helm.cilium.io/"
TARGETS = ("argocd", "flux")


@dataclass(frozen=True)
class GitSource:
    """Where the desired-state directory lives in git."""

    url: str
    revision: str
    path: str


def git_source(
    directory: Path, url: str | None = None, revision: str | None = None, path: str | None = None
) -> GitSource:
    """The repository URL and path of ``directory`` (from its git checkout unless given)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(directory), *args],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if path is None:
        top = git("rev-parse", "--show-toplevel")
        if top:
            rel = directory.resolve().relative_to(Path(top).resolve()).as_posix()
            path = rel or "."
    if url is None:
        url = git("remote", "get-url", "origin")
    if not url or path is None:
        raise ReconcileError(
            f"cannot tell which git repository holds {directory}",
            "pass --repo-url (and --path) or export from a clone with an 'origin' remote",
        )
    return GitSource(url, revision or "HEAD", path)


def _present_sections(state: DesiredState) -> list[str]:
    return [s for s in SECTIONS if (state.directory / s).is_dir()]


def _rules(state: DesiredState) -> list[IgnoreRule]:
    return [*builtin_ignore_rules(state.namespace), *state.user_ignore]


def argocd(
    state: DesiredState, git: GitSource, *, namespace: str = "argocd", chart_repo: str = CHART_REPO
) -> list[dict[str, Any]]:
    """The Argo CD Application and the argocd-cm resource exclusions."""
    sections = _present_sections(state)
    sources: list[dict[str, Any]] = [
        {
            "repoURL": chart_repo,
            "chart": "cilium",
            "targetRevision": state.version,
            "helm": {"releaseName": state.release, "valuesObject": state.values},
        }
    ]
    if sections:
        include = ",".join(f"{s}/*.yaml,{s}/*.yml" for s in sections)
        sources.append(
            {
                "repoURL": git.url,
                "targetRevision": git.revision,
                "path": git.path,
                "directory": {"recurse": True, "include": "{" + include + "}"},
            }
        )
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": state.release, "namespace": namespace},
        "spec": {
            "project": "default",
            "destination": {
                "server": "https://kubernetes.default.svc",
                "namespace": state.namespace,
            },
            "sources": sources,
            "ignoreDifferences": [r.as_argocd() for r in _rules(state)],
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["ServerSideApply=true", "RespectIgnoreDifferences=true"],
            },
        },
    }
    exclusions = [
        {"apiGroups": ["cilium.io"], "kinds": sorted(k for _, k in GENERATED_KINDS),
         "clusters": ["*"]}
    ]  # fmt: skip
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "argocd-cm",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "argocd"},
        },
        "data": {"resource.exclusions": yamlio.dump(exclusions)},
    }
    return [application, config]


def flux(
    state: DesiredState,
    git: GitSource,
    *,
    namespace: str = "flux-system",
    git_repository: str = "flux-system",
    interval: str = "10m",
    chart_repo: str = CHART_REPO,
) -> list[dict[str, Any]]:
    """A HelmRepository, the HelmRelease and one Kustomization per section."""
    ignore = [
        {
            "paths": list(r.pointers),
            "target": {
                k: v
                for k, v in (
                    ("group", r.group), ("kind", r.kind), ("name", r.name),
                    ("namespace", r.namespace),
                )
                if v is not None
            },
        }
        for r in _rules(state)
    ]  # fmt: skip
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": "cilium", "namespace": namespace},
            "spec": {"url": chart_repo, "interval": "1h"},
        },
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": state.release, "namespace": namespace},
            "spec": {
                "interval": interval,
                "releaseName": state.release,
                "targetNamespace": state.namespace,
                "storageNamespace": state.namespace,
                "chart": {
                    "spec": {
                        "chart": "cilium",
                        "version": state.version,
                        "sourceRef": {"kind": "HelmRepository", "name": "cilium"},
                    }
                },
                "install": {"crds": "CreateReplace"},
                "upgrade": {"crds": "CreateReplace"},
                "driftDetection": {"mode": "enabled", "ignore": ignore},
                "values": state.values,
            },
        },
    ]
    for section in _present_sections(state):
        path = section if git.path in ("", ".") else f"{git.path}/{section}"
        objects.append(
            {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {"name": f"{state.release}-{section}", "namespace": namespace},
                "spec": {
                    "interval": interval,
                    "retryInterval": "1m",
                    "path": f"./{path}",
                    "prune": True,
                    "sourceRef": {"kind": "GitRepository", "name": git_repository},
                },
            }
        )
    return objects


def render(target: str, objects: list[dict[str, Any]]) -> str:
    """The objects as one YAML stream with a header saying how to use it."""
    header = {
        "argocd": "# Argo CD: apply the Application; the argocd-cm part adds resource.exclusions\n"
        "# (kubectl apply merges it into your argocd-cm). Restart Argo CD afterwards.\n",
        "flux": "# Flux: commit next to your flux-system Kustomization, or kubectl apply it.\n",
    }[target]
    import yaml

    base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[misc]
        """Multi-line strings (argocd-cm's resource.exclusions) as literal blocks."""

    def literal(dumper: Any, text: str) -> Any:
        style = "|" if "\n" in text else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    Dumper.add_representer(str, literal)
    body: str = yaml.dump_all(objects, Dumper=Dumper, sort_keys=False, default_flow_style=False)
    return header + body
