"""`cilium install --verify-images`: every image the chart would deploy is verified before
anything is applied; one unsigned image stops the install."""

from __future__ import annotations

import os
import subprocess
import sys

from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client
from ciliumctl.verify import oci
from tests.verify.conftest import Keys
from tests.verify.registry import Registry, push_image


def run(dev_cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="250")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ciliumctl",
            "--kubeconfig",
            str(dev_cluster.kubeconfig_path),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def assert_refused(proc: subprocess.CompletedProcess[str], client: Client, image: str) -> None:
    """The install stopped at image verification (naming ``image``) with nothing applied."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "image verification failed, nothing was applied" in proc.stderr
    assert image in proc.stderr
    assert "verified" not in proc.stdout
    assert client.get_or_none("apps/v1", "DaemonSet", "cilium", "kube-system") is None
    assert client.list("v1", "Secret", "kube-system", label_selector="owner=helm,name=cilium") == []


def test_install_verifies_images_before_applying(  # type: ignore[no-untyped-def]
    dev_cluster: DevCluster, client: Client, registry: Registry, sign, keys: Keys
) -> None:
    reg = oci.RegistryClient(insecure=True)
    agent = oci.Reference.parse(f"{registry.host}/cilium/cilium:v1.18.5")
    operator = oci.Reference.parse(f"{registry.host}/cilium/operator-generic:v1.18.5")
    sign(f"{agent.name}@{push_image(reg, agent)}")
    operator_digest = push_image(reg, operator)  # not signed yet
    flags = [
        "--verify-images",
        "--verify-key",
        str(keys.public("ecdsa")),
        "--verify-insecure",
        "--set",
        f"imageRegistry={registry.host}",
        "--set",
        "image.useDigest=false",
        "--set",
        "operator.image.useDigest=false",
        # cilium-envoy (on by default since 1.18) is pinned by digest; this test is about the
        # agent and operator images, so the chart deploys those two only.
        "--set",
        "envoy.enabled=false",
    ]
    try:
        assert_refused(run(dev_cluster, "install", *flags), client, "operator-generic")

        other_key = run(
            dev_cluster,
            "install",
            *flags[:1],
            "--verify-key",
            str(keys.public("other")),
            *flags[3:],
        )
        assert other_key.returncode == 1
        assert client.get_or_none("apps/v1", "DaemonSet", "cilium", "kube-system") is None

        sign(f"{operator.name}@{operator_digest}")
        accepted = run(dev_cluster, "install", *flags, "--wait")
        assert accepted.returncode == 0, accepted.stderr
        ds = client.get("apps/v1", "DaemonSet", "cilium", "kube-system")
        images = {c["image"] for c in ds["spec"]["template"]["spec"]["containers"]}
        assert images == {str(agent)}
    finally:
        run(dev_cluster, "uninstall", "--wait", "--purge")


def test_verify_flags_need_verify_images(dev_cluster: DevCluster, keys: Keys) -> None:
    result = run(dev_cluster, "install", "--dry-run", "--verify-key", str(keys.public("ecdsa")))
    assert result.returncode == 2
    assert "need --verify-images" in result.stderr
