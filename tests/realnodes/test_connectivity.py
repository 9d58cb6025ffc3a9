"""`cilium connectivity test` for real on two real nodes with the bridge CNI (no Cilium):
the no-policies tests pass, the policy tests are skipped because nothing enforces policy,
selection and cleanup behave as asked. Dev cluster ``ct-rn`` of its own, brought down after.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciliumctl.cli.app import main
from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client


@pytest.fixture(scope="module")
def ct_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """Two real nodes, bridge CNI, kube-proxy and cluster DNS; removed afterwards."""
    state = Path(os.environ.get("CILIUMCTL_TEST_STATE_DIR") or tmp_path_factory.mktemp("ct"))
    cluster = DevCluster("ct-rn", state_dir=state / "ct-rn")
    try:
        cluster.up(0, real_nodes=2, cni="bridge", timeout=600)
        yield cluster
    finally:
        if cluster.exists():
            cluster.down()


def cilium(cluster: DevCluster, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run `cilium ...` in-process against the cluster; exit code and stdout."""
    code: int | str | None = 0
    try:
        main(["--kubeconfig", str(cluster.kubeconfig_path), *args])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr().out
    return (int(code) if isinstance(code, int) else 1), out


def test_no_policies_pass_and_policy_tests_are_skipped_on_the_bridge_cni(
    ct_cluster: DevCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    junit = tmp_path / "ct.xml"
    code, out = cilium(
        ct_cluster,
        capsys,
        "connectivity",
        "test",
        "--test",
        "^no-policies",
        "--test",
        "^client-ingress/",
        "--test",
        "^echo-ingress/",
        "--junit-file",
        str(junit),
        "--junit-property",
        "run=ct-rn",
    )
    assert code == 0, out
    assert "[=] [cilium-test-1] Test [no-policies] [1/5]" in out
    assert "✅ [cilium-test-1] All 2 tests (" in out
    assert "3 tests skipped" in out
    assert "(requires feature policy-enforcement: no Cilium agent pods" in out
    root = ET.parse(junit).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["no-policies"].get("status") == "passed"
    assert cases["no-policies-extra"].get("status") == "passed"
    assert cases["client-ingress"].get("status") == "skipped"
    assert (
        cases["no-policies-from-outside"]
        .find("skipped")
        .get("message")
        .endswith(  # type: ignore[union-attr]
            "not implemented in ciliumctl"
        )
    )
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["run"] == "ct-rn"


def test_selection_exclusion_and_a_failing_path_explained(
    ct_cluster: DevCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    client = Client(str(ct_cluster.kubeconfig_path), ct_cluster.context)
    code, out = cilium(
        ct_cluster,
        capsys,
        "connectivity",
        "test",
        "--test",
        "no-policies/pod-to-pod$",
        "--test",
        "!extra|outside",
    )
    assert code == 0, out
    assert "Test [no-policies] [1/1]" in out
    assert "Skipping Scenario [no-policies/pod-to-world] (skipped by user)" in out
    # break one path behind the test's back: the echo-other-node Service loses its pods
    client.patch(
        "v1",
        "Service",
        "echo-other-node",
        {"spec": {"selector": {"name": "nobody"}}},
        "cilium-test-1",
    )
    try:
        code, out = cilium(
            ct_cluster,
            capsys,
            "connectivity",
            "test",
            "--test",
            "^no-policies/pod-to-service",
            "--request-timeout",
            "3s",
        )
    finally:
        client.patch(
            "v1",
            "Service",
            "echo-other-node",
            {"spec": {"selector": {"name": "echo-other-node"}}},
            "cilium-test-1",
        )
    assert code == 1, out
    assert "📋 Test Report [cilium-test-1]" in out
    assert "❌ 1/1 tests failed" in out
    assert "expected: success (exit 0)" in out
    assert "-> cilium-test-1/echo-other-node (echo-other-node.cilium-test-1:8080)" in out
    assert "nodes:    source on real-node-" in out
    assert "destination on its backends" in out


def test_cleanup_removes_the_namespace(
    ct_cluster: DevCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    client = Client(str(ct_cluster.kubeconfig_path), ct_cluster.context)
    assert client.get_or_none("v1", "Namespace", "cilium-test-1") is not None  # kept for inspection
    code, out = cilium(ct_cluster, capsys, "connectivity", "test", "--cleanup")
    assert code == 0
    assert "Deleting namespace cilium-test-1" in out
