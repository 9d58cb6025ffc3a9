"""`cilium install --verify-images --verify-key` with the project's own agent and operator
images, pushed to a real registry and signed by the dev cluster's signing code: accepted when
both are signed, refused before anything is applied when one is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from ciliumctl.devcluster import DevCluster, images, runtime_images, signing
from ciliumctl.k8s import Client
from tests.integration.verify.test_install_verify_images import assert_refused, run
from tests.verify.registry import Registry

pytestmark = pytest.mark.images


def _pushed(name: str, registry: Registry) -> tuple[images.BuiltImage, str]:
    """The runtime image (the last build when cached: what is verified is the pushed
    digest, current or not), pushed with its upstream aliases."""
    runtime_images.register()
    built = images.cached(name) or images.build(name)
    return built, images.push(built, registry.host)


def test_install_deploys_signed_runtime_images(
    dev_cluster: DevCluster, client: Client, registry: Registry, tmp_path: Path
) -> None:
    agent, agent_ref = _pushed(runtime_images.AGENT, registry)
    operator, operator_ref = _pushed(runtime_images.OPERATOR, registry)
    state = tmp_path / "state"
    signed = signing.sign_image(
        agent_ref,
        state,
        layout=agent.layout,
        also=images.alias_references(agent, registry.host),
    )
    tag = runtime_images.AGENT_ALIASES[0].rsplit(":", 1)[1]
    flags = [
        "--verify-images",
        "--verify-key",
        str(signed.public_key),
        "--verify-insecure",
        "--set", f"imageRegistry={registry.host}",
        "--set", f"image.tag={tag}",
        "--set", "image.useDigest=false",
        "--set", f"operator.image.tag={tag}",
        "--set", "operator.image.useDigest=false",
        "--set", "envoy.enabled=false",
    ]  # fmt: skip
    try:
        assert_refused(run(dev_cluster, "install", *flags), client, "operator-generic")

        signing.sign_image(
            operator_ref,
            state,
            layout=operator.layout,
            also=images.alias_references(operator, registry.host),
        )
        accepted = run(dev_cluster, "install", *flags)
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
        ds = client.get("apps/v1", "DaemonSet", "cilium", "kube-system")
        containers = ds["spec"]["template"]["spec"]["containers"]
        assert {c["image"] for c in containers} == {f"{registry.host}/cilium/cilium:{tag}"}
        dep = client.get("apps/v1", "Deployment", "cilium-operator", "kube-system")
        ops = {c["image"] for c in dep["spec"]["template"]["spec"]["containers"]}
        assert ops == {f"{registry.host}/cilium/operator-generic:{tag}"}
    finally:
        run(dev_cluster, "uninstall", "--wait", "--purge")
