"""Versions: this client's, the Cilium version the bundled chart installs, and the running one.

Kept free of heavy imports: `cilium version --client` reads only the chart's Chart.yaml.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ciliumctl import __version__

CLIENT_VERSION = __version__
#: What the project's runtime (cilium-agent, cilium-dbg) reports as its Cilium version: the
#: release whose agent it stands in for, marked as this project's build. Tools strip the
#: suffix (cilium-cli gates its tests on the numeric part).
RUNTIME_VERSION = "1.18.0-ciliumctl"


def chart_dir() -> Path:
    """The bundled chart: package data in a wheel, ``charts/cilium`` in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_charts" / "cilium", here.parent / "charts" / "cilium"):
        if (candidate / "Chart.yaml").is_file():
            return candidate
    from ciliumctl.errors import ConfigError

    raise ConfigError(
        f"the bundled Helm chart is missing (looked in {here / '_charts' / 'cilium'})",
        "reinstall ciliumctl, or pass --chart-directory",
    )


def default_cilium_version() -> str:
    """The ``appVersion`` of the bundled chart, e.g. ``1.18.5``."""
    text = (chart_dir() / "Chart.yaml").read_text(encoding="utf-8")
    match = re.search(r"^appVersion:\s*[\"']?([^\"'\s]+)", text, re.M)
    if not match:
        from ciliumctl.errors import ConfigError

        raise ConfigError(f"{chart_dir() / 'Chart.yaml'} has no appVersion", "reinstall ciliumctl")
    return match.group(1)


class VersionClient(Protocol):
    """The cluster reads that finding the running version needs."""

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class RunningVersion:
    """The Cilium version found in the cluster and where it came from."""

    version: str | None
    source: str  # "helm-release", "daemonset" or "none"
    detail: str = ""


def decode_helm_release(data: str) -> dict[str, Any]:
    """Decode the ``release`` field of a Helm 3 release Secret (base64 of gzipped JSON)."""
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    decoded: dict[str, Any] = json.loads(raw)
    return decoded


def image_version(image: str) -> str | None:
    """The version tag of an image reference (``quay.io/cilium/cilium:v1.18.5@sha256:..``)."""
    ref = image.split("@", 1)[0]
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:
        return None
    return tag.lstrip("v") or None


def running_version(client: VersionClient, namespace: str, release: str) -> RunningVersion:
    """The Cilium version installed: Helm release metadata first, else the agent image."""
    from ciliumctl.k8s.errors import ForbiddenError

    try:
        secrets = client.list(
            "v1", "Secret", namespace, label_selector=f"owner=helm,name={release},status=deployed"
        )
    except ForbiddenError:
        secrets = []
    if secrets:
        latest = max(
            secrets, key=lambda s: int(s["metadata"].get("labels", {}).get("version", "0"))
        )
        try:
            rel = decode_helm_release(latest.get("data", {}).get("release", ""))
            meta = rel.get("chart", {}).get("metadata", {})
            # ciliumctl's chart installs the release named by the ciliumVersion value; other
            # charts (upstream's) install their appVersion.
            configured = (rel.get("config") or {}).get("ciliumVersion")
            version = configured or meta.get("appVersion") or meta.get("version")
            if version:
                return RunningVersion(
                    str(version).lstrip("v"),
                    "helm-release",
                    f"{namespace}/{release} revision {rel.get('version')}",
                )
        except (ValueError, KeyError, OSError):
            pass
    ds = client.get_or_none("apps/v1", "DaemonSet", "cilium", namespace)
    if ds is not None:
        containers = ds.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        for container in containers:
            if container.get("name") == "cilium-agent":
                version = image_version(str(container.get("image", "")))
                if version:
                    return RunningVersion(
                        version, "daemonset", f"{namespace}/cilium {container.get('image')}"
                    )
    return RunningVersion(None, "none")
