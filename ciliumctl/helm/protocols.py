"""The Helm operations domain packages depend on, as Protocols (:class:`ciliumctl.helm.Helm`
implements them; unit tests pass small fakes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class HelmRenderer(Protocol):
    """Rendering a chart to objects."""

    def template(
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
    ) -> list[dict[str, Any]]: ...


class HelmWriter(Protocol):
    """Changing a release."""

    def install_or_upgrade(
        self,
        release: str,
        namespace: str,
        chart: Path,
        values: dict[str, Any],
        *,
        reset_values: bool = False,
        reuse_values: bool = False,
        wait: bool = False,
        timeout: str | None = None,
        dry_run: bool = False,
        description: str | None = None,
        skip_crds: bool = False,
    ) -> dict[str, Any]: ...

    def rollback(
        self,
        release: str,
        namespace: str,
        revision: int | None = None,
        *,
        wait: bool = False,
        timeout: str | None = None,
    ) -> None: ...

    def uninstall(
        self, release: str, namespace: str, *, wait: bool = False, timeout: str | None = None
    ) -> None: ...


class HelmPuller(Protocol):
    """Fetching a chart from a Helm repository or an OCI registry."""

    def pull(
        self,
        reference: str,
        version: str,
        destination: Path,
        *,
        repo: str | None = None,
        plain_http: bool = False,
    ) -> None: ...
