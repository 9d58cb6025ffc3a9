"""Client, default and running Cilium versions."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from ciliumctl import versions
from ciliumctl.k8s.errors import ForbiddenError


def helm_secret(version: int, app_version: str) -> dict[str, Any]:
    release = {
        "name": "cilium",
        "version": version,
        "chart": {
            "metadata": {"name": "cilium", "version": app_version, "appVersion": app_version}
        },
    }
    inner = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return {
        "metadata": {
            "name": f"sh.helm.release.v1.cilium.v{version}",
            "labels": {"version": str(version)},
        },
        "data": {"release": base64.b64encode(inner).decode()},
    }


class FakeClient:
    def __init__(
        self,
        secrets: list[dict[str, Any]] | None = None,
        ds: dict[str, Any] | None = None,
        forbidden: bool = False,
    ) -> None:
        self.secrets = secrets or []
        self.ds = ds
        self.forbidden = forbidden
        self.selectors: list[str | None] = []

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        self.selectors.append(label_selector)
        if self.forbidden:
            raise ForbiddenError("list secrets: forbidden")
        return self.secrets

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self.ds


def agent_ds(image: str) -> dict[str, Any]:
    return {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "other", "image": "busybox:1"},
                        {"name": "cilium-agent", "image": image},
                    ]
                }
            }
        }
    }


def test_default_version_comes_from_chart() -> None:
    assert versions.default_cilium_version() == "1.18.5"
    assert (versions.chart_dir() / "Chart.yaml").is_file()


def test_helm_release_wins_and_latest_revision_is_used() -> None:
    client = FakeClient(
        [helm_secret(1, "1.17.9"), helm_secret(2, "1.18.5")],
        agent_ds("quay.io/cilium/cilium:v1.16.0"),
    )
    running = versions.running_version(client, "kube-system", "cilium")
    assert (running.version, running.source) == ("1.18.5", "helm-release")
    assert client.selectors == ["owner=helm,name=cilium,status=deployed"]


def test_configured_cilium_version_beats_chart_app_version() -> None:
    secret = helm_secret(3, "1.18.5")
    release = {
        "name": "cilium",
        "version": 3,
        "config": {"ciliumVersion": "1.17.12"},
        "chart": {"metadata": {"version": "1.18.5", "appVersion": "1.18.5"}},
    }
    inner = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    secret["data"]["release"] = base64.b64encode(inner).decode()
    running = versions.running_version(FakeClient([secret]), "kube-system", "cilium")
    assert running.version == "1.17.12"


def test_daemonset_image_when_no_release() -> None:
    client = FakeClient([], agent_ds("quay.io/cilium/cilium:v1.18.3@sha256:abc"))
    assert versions.running_version(client, "kube-system", "cilium").version == "1.18.3"


def test_forbidden_secrets_fall_back_to_daemonset() -> None:
    client = FakeClient(forbidden=True, ds=agent_ds("quay.io/cilium/cilium:v1.18.1"))
    assert versions.running_version(client, "kube-system", "cilium").source == "daemonset"


def test_not_installed() -> None:
    running = versions.running_version(FakeClient(), "kube-system", "cilium")
    assert running.version is None and running.source == "none"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("quay.io/cilium/cilium:v1.18.5", "1.18.5"),
        ("quay.io/cilium/cilium:v1.18.5@sha256:00", "1.18.5"),
        ("localhost:5000/cilium/cilium:1.17.2", "1.17.2"),
        ("localhost:5000/cilium/cilium", None),
        ("quay.io/cilium/cilium@sha256:00", None),
    ],
)
def test_image_version(image: str, expected: str | None) -> None:
    assert versions.image_version(image) == expected
