"""A self-contained ``cilium-cni``: a zipapp of ciliumctl and pyroute2 for the node's python3.

The agent image's install-plugin step copies the plugin onto the node, where containerd runs
it with the node's own ``/usr/bin/python3`` and none of the image's site-packages; a console
script would fail to import there. ``python3 -m ciliumctl.cni.bundle DEST`` writes one file
that carries the plugin's pure-Python code with it.

The archive holds bytecode next to each source (``x.pyc`` beside ``x.py``, the layout
zipimport reads): zipimport cannot write a cache, so without it every CNI call compiled
pyroute2 afresh, about 1.5 s of CPU per ADD and per DEL. A node whose python3 has another
bytecode magic ignores the ``.pyc`` files and compiles from the sources as before.
"""

from __future__ import annotations

import compileall
import shutil
import sys
import tempfile
import zipapp
from pathlib import Path

#: Top-level packages the plugin imports (ciliumctl.cni -> dbg.client, datapath.netlink).
PACKAGES = ("ciliumctl", "pyroute2")
#: The node's own interpreter, isolated (-I) and without site (-S): the archive is all it
#: imports, and a PATH lookup (a pyenv shim, a virtualenv) would cost each call its start-up.
INTERPRETER = "/usr/bin/python3 -IS"
_MAIN = """import sys

from ciliumctl.cni import lazypkg

lazypkg.seed("pyroute2", {names!r})

from ciliumctl.cni.plugin import main

sys.exit(main())
"""


def _package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} is not installed (pip install {name})")
    return Path(next(iter(spec.submodule_search_locations)))


def write(dest: Path) -> Path:
    """Write the plugin zipapp to ``dest`` (replaced atomically), mode 0755."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        src = Path(tmp) / "src"
        for name in PACKAGES:
            shutil.copytree(
                _package_dir(name),
                src / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        # zipapp's own main= drops the return value; the exit code is the CNI verdict
        from ciliumctl.cni import lazypkg

        names = lazypkg.reexports(src / "pyroute2" / "__init__.py", "pyroute2")
        (src / "__main__.py").write_text(_MAIN.format(names=names))
        if not compileall.compile_dir(src, quiet=1, legacy=True, workers=1):
            raise RuntimeError(f"cannot byte-compile the plugin's sources in {src}")
        out = Path(tmp) / "cilium-cni"
        zipapp.create_archive(src, out, interpreter=INTERPRETER, compressed=True)
        out.chmod(0o755)
        out.replace(dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    """``python3 -m ciliumctl.cni.bundle DEST``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python3 -m ciliumctl.cni.bundle DEST\n")
        return 2
    write(Path(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
