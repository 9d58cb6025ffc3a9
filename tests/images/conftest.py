"""Real image builds (mmdebstrap, umoci; root in CI) and a real registry on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciliumctl.devcluster import binaries
from tests.verify.registry import Registry


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory builds images."""
    for item in items:
        if "tests/images" in str(item.fspath):
            item.add_marker(pytest.mark.images)


@pytest.fixture(scope="session", autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.fail("image builds run as root (mmdebstrap --mode=root, chroot into the image)")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """distribution's registry (built by the project) on a free 127.0.0.1 port, plain HTTP."""
    binary = binaries.ensure(["registry"])["registry"]
    reg = Registry(binary, tmp_path_factory.mktemp("images-registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unpack(layout: Path, tag: str, dest: Path) -> Path:
    """Unpack an image's rootfs with umoci (as containerd would), returns the rootfs."""
    dest.mkdir(parents=True, exist_ok=True)
    rootfs = dest / "rootfs"
    subprocess.run(
        ["umoci", "raw", "unpack", "--image", f"{layout}:{tag}", str(rootfs)],
        check=True,
        capture_output=True,
    )
    return rootfs


def chroot(rootfs: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside an unpacked image (host network: 127.0.0.1 is reachable)."""
    return subprocess.run(["chroot", str(rootfs), *argv], capture_output=True, text=True)
