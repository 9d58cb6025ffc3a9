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
    assert plugin.read_bytes().startswith(b"#!/usr/bin/python3 -IS\n")
    env = {"PATH": "/usr/bin:/bin", "CNI_COMMAND": "VERSION"}
    run = subprocess.run(
        [str(plugin)],  # as containerd runs it: through the #! line
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


def test_bundle_carries_bytecode_so_no_call_compiles_pyroute2(tmp_path: Path) -> None:
    """Each module ships as x.pyc beside x.py (zipimport cannot write a cache): an
    interpreter of the same version imports the plugin and pyroute2 from the bytecode."""
    import sys
    import zipfile

    plugin = bundle.write(tmp_path / "cilium-cni")
    names = set(zipfile.ZipFile(plugin).namelist())
    sources = {n for n in names if n.endswith(".py") and n != "__main__.py"}
    assert sources and all(n + "c" in names for n in sources)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import ciliumctl.cni.plugin, pyroute2;"
        "print(ciliumctl.cni.plugin.__cached__, pyroute2.__cached__)"
    )
    run = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(plugin)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    cached = run.stdout.split()
    assert [Path(c).name for c in cached] == ["plugin.pyc", "__init__.pyc"]
