"""Two `cilium upgrade` runs at once on one release, with the real helm: one upgrades, the
other exits 1 saying another upgrade is in progress or just finished, and to re-run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ciliumctl.devcluster import DevCluster

from .test_install import helm_json, run


@pytest.fixture(scope="module")
def release(dev_cluster: DevCluster) -> Iterator[None]:
    installed = run(dev_cluster, "install", "--version", "1.18.5")
    assert installed.returncode == 0, installed.stderr
    yield
    run(dev_cluster, "uninstall", "--wait", "--purge")


def start_upgrade(dev_cluster: DevCluster, *sets: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "ciliumctl", "--kubeconfig", str(dev_cluster.kubeconfig_path)]
    argv += ["upgrade", "--version", "1.18.5", "--no-wait"]
    for item in sets:
        argv += ["--set", item]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, NO_COLOR="1", COLUMNS="250"),
    )


def test_concurrent_upgrades_one_wins_the_other_says_re_run(
    dev_cluster: DevCluster, release: None
) -> None:
    before = helm_json(dev_cluster, "status", "cilium")["version"]
    procs = [
        start_upgrade(dev_cluster, "debug.enabled=true"),
        start_upgrade(dev_cluster, "operator.replicas=1"),
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    _, _, loser_err = next(r for r in results if r[0] == 1)
    assert "another upgrade of release 'cilium' in kube-system is in progress or just " in (
        loser_err
    )
    assert "re-run `cilium upgrade`" in loser_err
    assert "Traceback" not in loser_err
    status = helm_json(dev_cluster, "status", "cilium")
    assert status["info"]["status"] == "deployed" and status["version"] > before
    # Re-running, as the message says, upgrades.
    again = run(dev_cluster, "upgrade", "--version", "1.18.5", "--no-wait")
    assert again.returncode == 0, again.stderr
    assert helm_json(dev_cluster, "status", "cilium")["version"] == status["version"] + 1
