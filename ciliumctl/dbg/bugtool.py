"""``cilium-bugtool``: the agent's state in one archive, as ``cilium sysdump`` copies it out.

The archive holds ``cmd/<command>.md`` files with the output of cilium-dbg and system
commands, and ``conf/`` with the agent's configuration; it prints ``GZIP at <path>`` (or
``ARCHIVE at``), the line sysdump looks for.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

from ciliumctl.dbg import main as dbg

#: cilium-dbg invocations collected (argv after ``cilium-dbg``).
DBG_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("status", "--verbose"),
    ("endpoint", "list", "-o", "json"),
    ("identity", "list", "-o", "json"),
    ("policy", "get"),
    ("policy", "selectors", "-o", "json"),
    ("service", "list"),
    ("ip", "list", "-o", "json"),
    ("config", "-o", "json"),
    ("map", "list", "-o", "json"),
    ("bpf", "ipcache", "list"),
    ("bpf", "lb", "list"),
    ("bpf", "ct", "list", "global"),
    ("bpf", "endpoint", "list"),
    ("bpf", "policy", "get", "--all", "-o", "json"),
    ("debuginfo", "-o", "json"),
)
#: System commands collected when present on the node.
SYSTEM_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("ip", "-d", "link", "show"),
    ("ip", "-4", "route", "show", "table", "all"),
    ("ip", "-4", "rule", "show"),
    ("ip", "neigh", "show"),
    ("uname", "-a"),
    ("sysctl", "-a"),
    ("bpftool", "prog", "show"),
    ("bpftool", "map", "show"),
)
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(argv: Sequence[str]) -> str:
    """``cilium-dbg status --verbose`` -> ``cilium-dbg-status---verbose.md`` (upstream style)."""
    return _NAME.sub("-", "-".join(argv)) + ".md"


def _run_dbg(argv: Sequence[str], host: str | None) -> str:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = dbg.main([*(["-H", host] if host else []), *argv])
    finally:
        sys.stdout, sys.stderr = saved
    text = out.getvalue()
    if code != 0:
        text += f"\n(exit code {code}) {err.getvalue()}"
    return text


def _run_system(argv: Sequence[str], timeout: float) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        res = subprocess.run(list(argv), capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"failed: {exc}\n"
    return res.stdout.decode("utf-8", "replace") + res.stderr.decode("utf-8", "replace")


def collect(directory: Path, host: str | None, config_dir: Path | None, timeout: float) -> None:
    """Fill ``directory`` with cmd/ and conf/."""
    (directory / "cmd").mkdir(parents=True)
    (directory / "conf").mkdir()
    for argv in DBG_COMMANDS:
        full = ("cilium-dbg", *argv)
        (directory / "cmd" / file_name(full)).write_text(_run_dbg(argv, host))
    for argv in SYSTEM_COMMANDS:
        text = _run_system(argv, timeout)
        if text is not None:
            (directory / "cmd" / file_name(argv)).write_text(text)
    if config_dir is not None and config_dir.is_dir():
        lines = [f"{p.name}={p.read_text().strip()}" for p in sorted(config_dir.iterdir())
                 if p.is_file() and not p.name.startswith(".")]  # fmt: skip
        (directory / "conf" / "cilium-config").write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cilium-bugtool`` console script."""
    p = argparse.ArgumentParser(prog="cilium-bugtool")
    p.add_argument("--archiveType", default="tar", choices=["tar", "gz"])
    p.add_argument("--exclude-object-files", action="store_true")
    p.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"))  # noqa: S108
    p.add_argument("-H", "--host")
    p.add_argument("--config-dir", default="/tmp/cilium/config-map")  # noqa: S108
    p.add_argument("--exec-timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    name = f"cilium-bugtool-{stamp}-{os.getpid()}"
    base = Path(args.tmp)
    work = base / name
    collect(work, args.host, Path(args.config_dir), args.exec_timeout)
    suffix, mode, label = (".tar.gz", "w:gz", "GZIP") if args.archiveType == "gz" else (
        ".tar", "w", "ARCHIVE")  # fmt: skip
    archive = base / (name + suffix)
    with tarfile.open(archive, mode) as tar:  # type: ignore[call-overload]
        tar.add(work, arcname=name)
    shutil.rmtree(work)
    sys.stdout.write(f"{label} at {archive}\n")
    return 0
