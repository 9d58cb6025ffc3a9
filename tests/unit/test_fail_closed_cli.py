"""A value the chart would ignore stops `cilium install` / `cilium upgrade` before any cluster
is contacted, with an error naming the key (fail closed, never warn-and-continue).

The kubeconfig given does not exist: reaching the cluster would fail with a different error,
so these tests prove the values check runs first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ciliumctl.install.install import unmodelled_keys
from ciliumctl.versions import chart_dir

UNMODELLED = sorted(unmodelled_keys(chart_dir()))


def cilium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    kubeconfig = str(tmp / "no-such-kubeconfig")
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize("command", ["install", "upgrade"])
def test_unmodelled_key_is_an_error_naming_it(tmp_path: Path, command: str) -> None:
    key = UNMODELLED[0]
    result = cilium(tmp_path, command, "--dry-run", "--set", f"{key}=true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{key}: {key} is an upstream chart key that this chart does not model" in (
        result.stderr
    )
    assert "nothing was changed" in result.stderr
    assert "kubeconfig" not in result.stderr  # refused before the cluster is contacted


def test_every_unmodelled_key_is_named_in_one_error(tmp_path: Path) -> None:
    sets = [arg for key in UNMODELLED[:5] for arg in ("--set", f"{key}=1")]
    result = cilium(tmp_path, "install", *sets)
    assert result.returncode == 1
    for key in UNMODELLED[:5]:
        assert f"\n  {key}: " in result.stderr, key


def test_values_file_with_unknown_key_fails_before_the_cluster(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("hubble:\n  relay:\n    enabeld: true\n")
    result = cilium(tmp_path, "install", "-f", str(values))
    assert result.returncode == 1
    assert "hubble.relay.enabeld: unknown key" in result.stderr
    assert "did you mean hubble.relay.enabled?" in result.stderr


def test_modelled_upstream_keys_pass_the_check(tmp_path: Path) -> None:
    """Keys of upstream's chart that are modelled go on to the cluster (which is absent)."""
    result = cilium(
        tmp_path,
        "install",
        "--dry-run",
        "--set",
        "encryption.enabled=true,encryption.type=wireguard,bpf.mapDynamicSizeRatio=0.08",
        "--set",
        "externalIPs.enabled=true,logOptions.format=json",
    )
    assert result.returncode == 1
    assert "kubeconfig" in result.stderr
    assert "invalid values" not in result.stderr
