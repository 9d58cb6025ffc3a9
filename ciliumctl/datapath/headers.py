"""The kernel header tree bcc compiles against.

This kernel may ship no headers; Debian's ``linux-headers-<ver>-amd64`` (installed by
``make host-deps``) splits them into a ``-common`` tree and an arch tree. bcc wants one tree,
so both are merged by symlinks into a cache directory of the project's (``/lib/modules`` is
never touched) and named with ``BCC_KERNEL_SOURCE``.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
from pathlib import Path

from ciliumctl.datapath.errors import DatapathError

SRC_ROOT = Path("/usr/src")
_HINT = "install Debian's linux-headers-amd64 (make host-deps, or ./scripts/host-deps.sh)"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ciliumctl" / "kernel-headers"


def _running_release_tree() -> Path | None:
    """Headers of the running kernel, when its own build tree is installed."""
    build = Path("/lib/modules") / platform.release() / "build"
    return build if (build / "include" / "linux" / "kconfig.h").exists() else None


def find_debian_trees(src_root: Path = SRC_ROOT) -> tuple[Path, Path]:
    """The newest ``linux-headers-*-common`` tree and its matching arch tree."""
    pattern = re.compile(r"^linux-headers-(?P<ver>\d+\.\d+\.\d+-\d+)-common$")
    found: list[tuple[tuple[int, ...], Path, Path]] = []
    if src_root.is_dir():
        for entry in src_root.iterdir():
            m = pattern.match(entry.name)
            if not m:
                continue
            arch = src_root / f"linux-headers-{m['ver']}-amd64"
            if arch.is_dir():
                ver = tuple(int(x) for x in re.split(r"[.-]", m["ver"]))
                found.append((ver, entry, arch))
    if not found:
        raise DatapathError(
            f"no kernel headers for bcc: no linux-headers-*-common/-amd64 pair under {src_root}",
            _HINT,
        )
    found.sort()
    _, common, arch = found[-1]
    return common, arch


def _link_tree(src: Path, dst: Path) -> None:
    """Mirror ``src`` into ``dst`` with directories made and files symlinked (later wins)."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        target_dir = dst / rel
        target_dir.mkdir(parents=True, exist_ok=True)
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            link = target_dir / name
            source = Path(dirpath) / name
            if link.is_symlink() or link.exists():
                if link.is_dir() and not link.is_symlink():
                    continue
                link.unlink()
            link.symlink_to(source.resolve() if source.is_symlink() else source)


def prepare(src_root: Path = SRC_ROOT, cache: Path | None = None) -> Path:
    """Return a header tree for bcc, merging Debian's split trees once into the cache."""
    running = _running_release_tree()
    if running is not None:
        return running
    common, arch = find_debian_trees(src_root)
    root = (cache or cache_root()) / arch.name
    stamp = root / ".ciliumctl-merged"
    if stamp.exists():
        return root
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    _link_tree(common, tmp)
    _link_tree(arch, tmp)
    (tmp / ".ciliumctl-merged").write_text(f"{common}\n{arch}\n")
    try:
        tmp.rename(root)
    except OSError:
        # Another process merged it meanwhile; theirs is as good as ours.
        shutil.rmtree(tmp, ignore_errors=True)
        if not stamp.exists():
            raise
    return root


def main() -> None:
    """``python -m ciliumctl.datapath.headers``: prepare the tree (used by the Makefile)."""
    print(prepare())


if __name__ == "__main__":
    main()
