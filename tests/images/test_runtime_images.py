"""The runtime's images build with the dev cluster's builder and their entry points run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ciliumctl.devcluster import images, runtime_images
from tests.images.conftest import unpack


def test_operator_image_runs_its_entry_point(tmp_path: Path) -> None:
    runtime_images.register()
    built = images.build(runtime_images.OPERATOR)
    assert built.name == runtime_images.OPERATOR and built.digest.startswith("sha256:")
    rootfs = unpack(built.layout, built.tag, tmp_path)
    assert (rootfs / "usr/local/bin/cilium-operator-generic").is_file()
    probe = (
        "from ciliumctl.operator.main import load_values; import kubernetes, prometheus_client; "
        "print(load_values(['--identity-gc-interval=1m'])['identity-gc-interval'])"
    )
    out = subprocess.run(
        ["chroot", str(rootfs), "/usr/bin/python3", "-c", probe],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1m"
    # bad configuration: one clear error, non-zero exit
    bad = subprocess.run(
        ["chroot", str(rootfs), "/usr/local/bin/cilium-operator-generic", "--config-dir=/nope"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 1 and "config directory /nope does not exist" in bad.stderr


def test_agent_recipe_carries_the_init_container_scripts() -> None:
    agent, _operator = runtime_images.recipes()
    paths = {f.path for f in agent.files}
    assert {"/init-container.sh", "/install-plugin.sh", "/cni-uninstall.sh",
            "/usr/bin/cilium-mount", "/usr/bin/cilium-sysctlfix"} <= paths  # fmt: skip
    assert all(f.source is not None and f.source.is_file() for f in agent.files)
    assert "python3-bpfcc" in agent.packages and "iproute2" in agent.packages


def test_agent_image_has_bcc_and_the_runtime_entry_points(tmp_path: Path) -> None:
    runtime_images.register()
    built = images.build(runtime_images.AGENT)
    rootfs = unpack(built.layout, built.tag, tmp_path)
    for tool in ("cilium-agent", "cilium-dbg", "cilium-bugtool", "cilium-cni"):
        assert (rootfs / "usr/local/bin" / tool).is_file(), tool
    assert (rootfs / "init-container.sh").stat().st_mode & 0o111
    probe = "import bcc, pyroute2, ciliumctl.agent.main, ciliumctl.datapath.datapath; print('ok')"
    out = subprocess.run(
        ["chroot", str(rootfs), "/usr/bin/python3", "-c", probe],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (out.returncode, out.stdout.strip()) == (0, "ok"), out.stderr
    version = subprocess.run(
        ["chroot", str(rootfs), "/usr/bin/env", "CNI_COMMAND=VERSION", "/usr/local/bin/cilium-cni"],
        input="{}", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert version.returncode == 0 and "1.0.0" in json.loads(version.stdout)["supportedVersions"]
    assert list((rootfs / "usr/src").glob("linux-headers-*")), "bcc needs the header tree"
