"""The self-contained cilium-cni the install-plugin step writes onto a node."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ciliumctl.cni import bundle


def test_bundle_runs_under_a_bare_python_and_keeps_the_exit_code(tmp_path: Path) -> None:
    """The zipapp imports nothing from the environment (python3 -I, empty PYTHONPATH), answers
    VERSION, and an ADD the plugin rejects exits non-zero with CNI error JSON."""
    plugin = bundle.write(tmp_path / "bin" / "cilium-cni")
    assert os.access(plugin, os.X_OK)
    assert plugin.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    env = {"PATH": "/usr/bin:/bin", "CNI_COMMAND": "VERSION"}
    run = subprocess.run(
        ["/usr/bin/python3", "-I", str(plugin)],
        input="{}",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "1.0.0" in json.loads(run.stdout)["supportedVersions"]
    conf = {"cniVersion": "1.0.0", "name": "cilium", "type": "cilium-cni"}
    env = dict(env, CNI_COMMAND="ADD", CNI_CONTAINERID="c1", CNI_NETNS="/x", CNI_IFNAME="eth0")
    run = subprocess.run(
        ["/usr/bin/python3", "-I", str(plugin)],
        input=json.dumps(conf),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    error = json.loads(run.stdout)
    assert error["code"] and "K8S_POD_NAMESPACE" in error["msg"]


def test_bundle_needs_a_destination() -> None:
    assert bundle.main([]) == 2
