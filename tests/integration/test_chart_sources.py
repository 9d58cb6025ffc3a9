"""`cilium install` / `cilium upgrade` with another chart: --chart-directory with an
upstream-like chart (no ciliumVersion key, a strict schema) and --repository (an OCI
registry on 127.0.0.1 the chart was `helm push`ed to), against a dev cluster of its own.

The tests run in file order and share one release, as a user would drive it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciliumctl.devcluster import DevCluster, binaries
from ciliumctl.k8s import Client
from ciliumctl.versions import chart_dir
from tests.verify.registry import Registry

NS = "kube-system"
ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_LIKE = ROOT / "tests" / "data" / "upstream-like-chart" / "cilium"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A one-node dev cluster named for these tests (kept apart from the shared one)."""
    state = Path(os.environ.get("CILIUMCTL_TEST_STATE_DIR") or tmp_path_factory.mktemp("ch"))
    dev = DevCluster("ch-src", state_dir=state / "ch-src")
    dev.up(1, timeout=240)
    try:
        yield dev
    finally:
        dev.down()


@pytest.fixture(scope="module")
def kube(cluster: DevCluster) -> Client:
    return Client(str(cluster.kubeconfig_path), cluster.context)


@pytest.fixture(scope="module")
def oci_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bundled chart, packaged and `helm push`ed to a registry on 127.0.0.1."""
    helm = str(binaries.ensure(["helm"])["helm"])
    dest = tmp_path_factory.mktemp("pkg")
    subprocess.run([helm, "package", str(chart_dir()), "-d", str(dest)], check=True)
    registry = Registry(
        binaries.ensure(["registry"])["registry"], tmp_path_factory.mktemp("oci")
    ).start()
    try:
        repo = f"oci://{registry.host}/charts"
        package = str(next(dest.glob("cilium-*.tgz")))
        subprocess.run([helm, "push", package, repo, "--plain-http"], check=True)
        yield repo
    finally:
        registry.stop()


def run(cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="250")
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", "--kubeconfig", str(cluster.kubeconfig_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def config(kube: Client) -> dict[str, str]:
    return dict(kube.get("v1", "ConfigMap", "cilium-config", NS)["data"])


def release_values(cluster: DevCluster) -> str:
    helm = str(binaries.ensure(["helm"])["helm"])
    args = [helm, "--kubeconfig", str(cluster.kubeconfig_path), "get", "values", "cilium"]
    return subprocess.run([*args, "-n", NS], capture_output=True, text=True, check=True).stdout


def test_install_with_an_upstream_like_chart_directory(cluster: DevCluster, kube: Client) -> None:
    result = run(cluster, "install", "--chart-directory", str(UPSTREAM_LIKE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert config(kube)["chart"] == "upstream-like 1.18.5"
    assert "ciliumVersion" not in release_values(cluster)


def test_version_must_match_another_chart(cluster: DevCluster) -> None:
    result = run(
        cluster, "upgrade", "--chart-directory", str(UPSTREAM_LIKE), "--version", "1.17.12"
    )
    assert result.returncode == 2
    assert "does not match the chart" in result.stderr


def test_upgrade_to_the_bundled_chart_then_back(cluster: DevCluster, kube: Client) -> None:
    """From the upstream-like release to ciliumctl's chart (which gets ciliumVersion), and
    back with --chart-directory: the upstream-like schema never sees ciliumctl's own key."""
    up = run(cluster, "upgrade", "--no-wait", "--set", "debug.enabled=true")
    assert up.returncode == 0, up.stdout + up.stderr
    assert config(kube)["debug"] == "true"
    assert "ciliumVersion: 1.18.5" in release_values(cluster)
    back = run(cluster, "upgrade", "--no-wait", "--chart-directory", str(UPSTREAM_LIKE))
    assert back.returncode == 0, back.stdout + back.stderr
    data = config(kube)
    assert data["chart"] == "upstream-like 1.18.5" and data["debug"] == "true"
    assert "ciliumVersion" not in release_values(cluster)
    # Helm deleted the cilium-secrets namespace the bundled chart made (the upstream-like chart
    # has none); the next test's chart creates it again, which fails while it is terminating.
    deadline = time.monotonic() + 120
    while kube.get_or_none("v1", "Namespace", "cilium-secrets") is not None:
        assert time.monotonic() < deadline, "namespace cilium-secrets was never deleted"
        time.sleep(0.5)


def test_upgrade_from_an_oci_repository(cluster: DevCluster, kube: Client, oci_repo: str) -> None:
    result = run(cluster, "upgrade", "--no-wait", "--repository", oci_repo, "--version", "1.18.5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chart" not in config(kube)  # the bundled chart's cilium-config, from the registry
    assert "ciliumVersion: 1.18.5" in release_values(cluster)
    missing = run(cluster, "upgrade", "--no-wait", "--repository", oci_repo, "--version", "1.18.4")
    assert missing.returncode == 1
    assert "1.18.4" in missing.stderr


def test_install_from_an_oci_repository(cluster: DevCluster, kube: Client, oci_repo: str) -> None:
    gone = run(cluster, "uninstall", "--wait")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    result = run(cluster, "install", "--repository", oci_repo, "--version", "1.18.5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert config(kube)["external-envoy-proxy"] == "true"
