"""Fixtures of the datapath tests: root, a private bpffs, network namespaces of our own.

These are real-kernel tests. In CI (``CI=true``) they must run as root and never skip: a
missing privilege fails them with one line saying what to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import pytest


def _require_root() -> None:
    if os.geteuid() == 0:
        return
    msg = "datapath tests need root (BPF syscall, netns, tc): run `sudo make datapath-test`"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.datapath)


@pytest.fixture(scope="session")
def bpffs() -> Iterator[str]:
    """A bpffs mounted in a temporary directory, unmounted at the end."""
    _require_root()
    d = tempfile.mkdtemp(prefix="ciliumctl-bpffs-")
    subprocess.run(["mount", "-t", "bpf", "bpf", d], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d], check=False)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def pin_root(bpffs: str) -> str:
    """A fresh directory on the test bpffs: one node's maps."""
    d = os.path.join(bpffs, uuid.uuid4().hex[:8])
    os.makedirs(d)
    return d


class Namespaces:
    """Network namespaces created by a test (names unique to this run), removed afterwards."""

    def __init__(self) -> None:
        self.prefix = "cdp" + uuid.uuid4().hex[:6]
        self.names: list[str] = []

    def new(self, role: str) -> str:
        from ciliumctl.datapath import netlink

        name = f"{self.prefix}-{role}"
        netlink.create_netns(name)
        self.names.append(name)
        return name

    def cleanup(self) -> None:
        from ciliumctl.datapath import netlink

        for name in reversed(self.names):
            # Killing stray processes of the namespace is the test's job; remove the name.
            netlink.remove_netns(name)


@pytest.fixture
def netns() -> Iterator[Namespaces]:
    _require_root()
    ns = Namespaces()
    try:
        yield ns
    finally:
        ns.cleanup()
