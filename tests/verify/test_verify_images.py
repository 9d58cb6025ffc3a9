"""`cilium verify images`: the chart's images for a release (from charts/cilium/values.yaml)
and a cluster's running images, checked in parallel against the real registry."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from ciliumctl import versions
from ciliumctl.verify import oci
from ciliumctl.verify.images import CHART_IMAGES, chart_images, cluster_images
from ciliumctl.verify.policy import GITHUB_ISSUER
from tests.verify.conftest import Keys, cilium
from tests.verify.registry import Registry, push_image
from tests.verify.test_verify_key import assert_failed

CHART = versions.chart_dir()


def test_chart_images_follow_values_and_known_digests() -> None:
    specs = {s.component: s for s in chart_images("1.18.5", CHART)}
    assert set(specs) == set(CHART_IMAGES)
    agent = oci.Reference.parse(specs["cilium"].image)
    assert (agent.name, agent.tag) == ("quay.io/cilium/cilium", "v1.18.5")
    operator = oci.Reference.parse(specs["operator-generic"].image)
    assert operator.name == "quay.io/cilium/operator-generic"
    import yaml

    known = yaml.safe_load((CHART / "files" / "image-digests.yaml").read_text())["1.18.5"]
    assert agent.digest == known["cilium"] and operator.digest == known["operator-generic"]
    policy = specs["cilium"].policy
    assert policy is not None and policy.identity is not None
    assert policy.identity.endswith("build-images-releases.yaml@refs/tags/v1.18.5")
    assert policy.issuer == GITHUB_ISSUER and policy.github_workflow_ref == "refs/tags/v1.18.5"
    ui = specs["hubble-ui"].policy
    assert ui is not None and ui.github_workflow_repository == "cilium/hubble-ui"


def test_chart_images_registry_override_and_unknown_release() -> None:
    specs = {s.component: s for s in chart_images("1.17.9", CHART, registry="mirror.example:5000")}
    agent = oci.Reference.parse(specs["cilium"].image)
    # no digests known for 1.17.9: tag only, on the mirror
    assert (agent.registry, agent.repository, agent.tag, agent.digest) == (
        "mirror.example:5000",
        "cilium/cilium",
        "v1.17.9",
        None,
    )
    with pytest.raises(Exception, match="unknown image component nope"):
        chart_images("1.17.9", CHART, overrides={"nope": "x"})
    with pytest.raises(Exception, match="invalid Cilium version"):
        chart_images("latest", CHART)


def test_cluster_images_prefer_running_digests() -> None:
    digest = "sha256:" + "c" * 64

    class Pods:
        def list(
            self,
            api_version: str,
            kind: str,
            namespace: str | None = None,
            *,
            label_selector: str | None = None,
        ) -> list[dict[str, Any]]:
            assert (api_version, kind, namespace) == ("v1", "Pod", "kube-system")
            pod = {
                "spec": {
                    "initContainers": [{"name": "init", "image": "quay.io/cilium/cilium:v1.18.5"}],
                    "containers": [
                        {"name": "cilium-agent", "image": "quay.io/cilium/cilium:v1.18.5"},
                        {"name": "side", "image": "busybox:1.36"},
                    ],
                },
                "status": {
                    "containerStatuses": [
                        {"name": "cilium-agent", "imageID": f"quay.io/cilium/cilium@{digest}"}
                    ]
                },
            }
            return [pod, pod]

    specs = cluster_images(Pods(), "kube-system")
    images = [s.image for s in specs]
    assert images == [
        "quay.io/cilium/cilium:v1.18.5",
        f"quay.io/cilium/cilium:v1.18.5@{digest}",
        "busybox:1.36",
    ]
    assert specs[1].policy is not None and specs[2].policy is None


def publish_release(
    registry: Registry,
    client: oci.RegistryClient,
    sign,
    version: str,  # type: ignore[no-untyped-def]
    unsigned: tuple[str, ...] = (),
) -> tuple[str, list[str]]:
    """Push and sign every chart image under a fresh registry prefix; returns (prefix,
    --image overrides for the images the chart pins by digest)."""
    prefix = f"{registry.host}/r{secrets.token_hex(3)}"
    overrides = []
    for component, (_path, _table, repo, tag, _gh) in CHART_IMAGES.items():
        name = repo.split("/", 1)[1] + ("-generic" if component == "operator-generic" else "")
        ref = oci.Reference.parse(f"{prefix}/{name}:{tag or 'v' + version}")
        digest = push_image(client, ref)
        if component not in unsigned:
            sign(f"{ref.name}@{digest}")
        if component.startswith("hubble-ui"):
            overrides += ["--image", f"{component}={ref}"]
    return prefix, overrides


def test_verify_images_of_a_release(  # type: ignore[no-untyped-def]
    registry: Registry, client: oci.RegistryClient, sign, keys: Keys
) -> None:
    prefix, overrides = publish_release(registry, client, sign, "1.18.4")
    proc = cilium(
        "verify",
        "images",
        "--version",
        "1.18.4",
        "--registry",
        prefix,
        *overrides,
        "--insecure",
        "--key",
        str(keys.public("ecdsa")),
        "-o",
        "json",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["failed"] == 0
    rows = {r["component"]: r for r in data["images"]}
    assert set(rows) == set(CHART_IMAGES)
    assert rows["operator-generic"]["image"] == f"{prefix}/cilium/operator-generic:v1.18.4"
    assert all(r["status"] == "ok" and r["digest"].startswith("sha256:") for r in rows.values())
    table = cilium(
        "verify",
        "images",
        "--version",
        "1.18.4",
        "--registry",
        prefix,
        *overrides,
        "--insecure",
        "--key",
        str(keys.public("ecdsa")),
    )
    assert table.returncode == 0, table.stderr
    assert table.stdout.count(" ok ") == len(CHART_IMAGES)


def test_verify_images_one_unsigned_fails(  # type: ignore[no-untyped-def]
    registry: Registry, client: oci.RegistryClient, sign, keys: Keys
) -> None:
    prefix, overrides = publish_release(
        registry, client, sign, "1.18.4", unsigned=("hubble-relay",)
    )
    proc = cilium(
        "verify",
        "images",
        "--version",
        "1.18.4",
        "--registry",
        prefix,
        *overrides,
        "--insecure",
        "--key",
        str(keys.public("ecdsa")),
    )
    assert_failed(proc, "FAILED", "no signatures found", "1 of 6 images failed")
    assert proc.stdout.count(" ok ") == len(CHART_IMAGES) - 1


def test_verify_images_registry_down(keys: Keys, tmp_path: Path) -> None:
    from tests.verify.registry import free_port

    prefix = f"127.0.0.1:{free_port()}"
    proc = cilium(
        "verify",
        "images",
        "--version",
        "1.18.4",
        "--registry",
        prefix,
        "--image",
        f"hubble-ui={prefix}/cilium/hubble-ui:v0.13.3",
        "--image",
        f"hubble-ui-backend={prefix}/cilium/hubble-ui-backend:v0.13.3",
        "--insecure",
        "--key",
        str(keys.public("ecdsa")),
        "-o",
        "json",
    )
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["failed"] == 6
    assert all("cannot reach registry" in r["reason"] for r in data["images"])
    assert "verified" not in (proc.stdout + proc.stderr).lower()


def test_image_spec_defaults_per_repository() -> None:
    from ciliumctl.verify.images import image_spec

    agent = image_spec("quay.io/cilium/cilium:v1.18.5@sha256:" + "d" * 64)
    assert agent.component == "cilium" and agent.policy is not None
    assert agent.policy.github_workflow_ref == "refs/tags/v1.18.5"
    ui = image_spec("quay.io/cilium/hubble-ui:v0.13.3")
    assert ui.policy is not None and ui.policy.github_workflow_repository == "cilium/hubble-ui"
    assert image_spec("docker.io/library/busybox:1.36").policy is None
    assert image_spec("quay.io/cilium/cilium:latest").policy is None  # no release tag
