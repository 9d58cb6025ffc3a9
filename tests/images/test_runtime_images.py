"""The runtime's images build with the dev cluster's builder and their entry points run."""

from __future__ import annotations

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
