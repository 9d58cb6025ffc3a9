"""Small wrappers over iproute2, nftables and sysctl for the dev cluster's namespaces.

The dev cluster drives the kernel with the same tools an operator would type (``ip``,
``nft``, ``nsenter``), never through a shell, so every failure carries the exact command and
its stderr.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ciliumctl.devcluster.cluster import DevClusterError

NETNS_DIR = Path("/run/netns")


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run one command; raise :class:`DevClusterError` with its stderr when it fails."""
    try:
        proc = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError as exc:
        raise DevClusterError(
            f"`{argv[0]}` is not installed",
            "run `make host-deps` (installs iproute2, nftables, util-linux from "
            "scripts/host-packages.txt)",
        ) from exc
    if check and proc.returncode != 0:
        raise DevClusterError(
            f"`{' '.join(argv)}` failed: {proc.stderr.strip() or proc.stdout.strip()}",
            "see `cilium dev-cluster status`; `cilium dev-cluster down` removes a half-made "
            "network",
        )
    return proc.stdout


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    """``ip [-n NS] ARGS``."""
    return run(["ip", *(["-n", ns] if ns else []), *args], check=check)


def exists(ns: str) -> bool:
    """True when the named network namespace exists."""
    return (NETNS_DIR / ns).exists()


def path(ns: str) -> Path:
    """The bind-mount path of a named network namespace (for ``nsenter --net=``)."""
    return NETNS_DIR / ns


def add(ns: str) -> None:
    """Create a named network namespace with loopback up (replacing a stale one)."""
    if exists(ns):
        delete(ns)
    ip("netns", "add", ns)
    ip("link", "set", "lo", "up", ns=ns)


def delete(ns: str) -> None:
    """Delete a named network namespace if it exists."""
    if exists(ns):
        ip("netns", "delete", ns, check=False)
        if exists(ns):  # a stale mount point whose namespace is gone
            run(["umount", str(path(ns))], check=False)
            path(ns).unlink(missing_ok=True)


def nsexec(ns: str | None, argv: Sequence[str], *, stdin: str | None = None) -> str:
    """Run ``argv`` in network namespace ``ns`` (the host's when None)."""
    if ns is None:
        return run(argv, stdin=stdin)
    return run(["nsenter", f"--net={path(ns)}", "--", *argv], stdin=stdin)


def sysctl(ns: str | None, key: str, value: str) -> None:
    """Set one sysctl, in network namespace ``ns`` for per-namespace keys."""
    nsexec(ns, ["sysctl", "-qw", f"{key}={value}"])


def read_sysctl(key: str) -> str:
    """A host sysctl's current value ('' when the key does not exist)."""
    try:
        return (Path("/proc/sys") / key.replace(".", "/")).read_text().strip()
    except OSError:
        return ""


def write_sysctl(key: str, value: str) -> None:
    """Write one host sysctl (no error when the key does not exist)."""
    target = Path("/proc/sys") / key.replace(".", "/")
    if target.exists():
        target.write_text(value + "\n")


def nft(ns: str | None, script: str) -> None:
    """Load an nftables script in namespace ``ns`` (the host's when None)."""
    nsexec(ns, ["nft", "-f", "-"], stdin=script)


def link_exists(name: str, ns: str | None = None) -> bool:
    """True when interface ``name`` exists (in ``ns``, or on the host)."""
    if ns is None:
        return Path(f"/sys/class/net/{name}").exists()
    return bool(ip("-o", "link", "show", "dev", name, ns=ns, check=False).strip())


def require_root() -> None:
    """Real nodes need namespaces, mounts and cgroups: fail with one line when not root."""
    if os.geteuid() != 0:
        raise DevClusterError(
            "real nodes need root (network/mount namespaces, cgroups, nftables)",
            "run as root, e.g. `sudo .venv/bin/cilium dev-cluster up --real-nodes 2`",
        )
