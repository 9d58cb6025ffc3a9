"""CRD registration: the operator creates the Cilium CRDs the API server does not serve yet.

The CRDs are the chart's (``charts/cilium/crds``, shipped in the wheel), so the operator and
``cilium install`` register the same definitions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from ciliumctl import yamlio
from ciliumctl.versions import chart_dir

log = logging.getLogger("cilium-operator.crds")
CRD_API = "apiextensions.k8s.io/v1"
CRD_KIND = "CustomResourceDefinition"


class CRDClient(Protocol):
    """The API calls CRD registration needs."""

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """Read one object or None."""
        ...

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create one object."""
        ...


def chart_crds(chart: Path | None = None) -> list[dict[str, Any]]:
    """The CRD objects of the chart."""
    out = []
    for path in sorted(((chart or chart_dir()) / "crds").glob("*.yaml")):
        for doc in yamlio.load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == CRD_KIND:
                out.append(doc)
    return out


def register_missing(client: CRDClient, chart: Path | None = None) -> list[str]:
    """Create every chart CRD the cluster lacks; the names created."""
    from ciliumctl.k8s.errors import ConflictError

    created = []
    for crd in chart_crds(chart):
        name = crd["metadata"]["name"]
        if client.get_or_none(CRD_API, CRD_KIND, name) is not None:
            continue
        try:
            client.create(crd)
        except ConflictError:  # another operator replica was quicker
            continue
        log.info("registered CRD %s", name)
        created.append(name)
    return created
