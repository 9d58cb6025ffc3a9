"""Read Helm's release record straight from its storage Secret.

Helm 3 keeps each revision in a Secret ``sh.helm.release.v1.<release>.v<N>`` labelled
``owner=helm,name=<release>``; ``data.release`` is base64(gzip(JSON)) on top of the Secret's
own base64. Reading it through the API (one list call) tells the reconciler whether a
release exists, its status, the values it was given and the manifest it applied, without
running the helm binary on every diff.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from ciliumctl import yamlio

_GZIP_MAGIC = b"\x1f\x8b"


class SecretLister(Protocol):
    """The one call this module needs."""

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...


@dataclass
class Release:
    """One revision of a Helm release."""

    name: str
    namespace: str
    revision: int
    status: str
    config: dict[str, Any]
    manifest: str
    app_version: str = ""
    history: list[tuple[int, str]] = field(default_factory=list)

    @property
    def cilium_version(self) -> str:
        """The Cilium version this revision runs (``ciliumVersion`` value, else appVersion)."""
        return str(self.config.get("ciliumVersion") or self.app_version).lstrip("v")

    def objects(self) -> list[dict[str, Any]]:
        """The objects of the applied manifest (CRDs from crds/ are not part of it)."""
        return [d for d in yamlio.load_all(self.manifest) if isinstance(d, dict)]

    def last_deployed(self) -> int | None:
        """The newest revision whose status is ``deployed`` or ``superseded``."""
        good = [rev for rev, status in self.history if status in ("deployed", "superseded")]
        return max(good) if good else None


def decode(data: str) -> dict[str, Any]:
    """The release JSON from a storage Secret's ``data.release`` field."""
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    record: dict[str, Any] = json.loads(raw)
    return record


def encode(record: dict[str, Any]) -> str:
    """The inverse of :func:`decode` (for tests and fixtures)."""
    packed = base64.b64encode(gzip.compress(json.dumps(record).encode()))
    return base64.b64encode(packed).decode()


def read(client: SecretLister, name: str, namespace: str) -> Release | None:
    """The newest revision of release ``name`` (with the deployed one's manifest), or None."""
    secrets = client.list("v1", "Secret", namespace, label_selector=f"owner=helm,name={name}")
    revisions: list[tuple[int, dict[str, Any]]] = []
    for secret in secrets:
        labels = (secret.get("metadata") or {}).get("labels") or {}
        try:
            revisions.append((int(labels.get("version", "0")), secret))
        except ValueError:
            continue
    if not revisions:
        return None
    revisions.sort(key=lambda r: r[0])
    history = [
        (rev, str(((s.get("metadata") or {}).get("labels") or {}).get("status", "")))
        for rev, s in revisions
    ]
    revision, secret = revisions[-1]
    record = decode(str((secret.get("data") or {}).get("release", "")))
    info = record.get("info") or {}
    chart_meta = (record.get("chart") or {}).get("metadata") or {}
    return Release(
        name=name,
        namespace=namespace,
        revision=revision,
        status=str(info.get("status", "")),
        config=record.get("config") or {},
        manifest=str(record.get("manifest") or ""),
        app_version=str(chart_meta.get("appVersion") or ""),
        history=history,
    )
