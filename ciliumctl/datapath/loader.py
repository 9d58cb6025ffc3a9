"""Compile and load the datapath's C programs with bcc (Debian's python3-bpfcc).

Cilium compiles each endpoint's program with the endpoint's constants as ``#define``s; so does
this loader. bcc is imported here only (from Debian's dist-packages, added to ``sys.path`` on
first use): the PyPI package named ``bcc`` is an unrelated project. Compiler and verifier
diagnostics, which bcc writes to file descriptor 2, are captured and turned into a
:class:`~ciliumctl.datapath.errors.VerifierError` with the log's tail and the source line.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ciliumctl.datapath import headers
from ciliumctl.datapath.errors import DatapathError, VerifierError

BCC_DIST_PACKAGES = "/usr/lib/python3/dist-packages"
SCHED_CLS = 3


def bpf_source_dir() -> Path:
    """``bpf/`` of the checkout, or the copy shipped in the wheel (``ciliumctl/_bpf``)."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "_bpf", here.parent.parent / "bpf"):
        if (cand / "bpf_lxc.c").exists():
            return cand
    raise DatapathError(
        "the datapath's C sources (bpf/bpf_lxc.c) are missing from this installation",
        "reinstall ciliumctl from a checkout or wheel that includes bpf/",
    )


def import_bcc() -> Any:
    """The ``bcc`` module of Debian's python3-bpfcc."""
    if os.geteuid() != 0:
        raise DatapathError(
            "loading eBPF programs needs root (CAP_BPF, CAP_NET_ADMIN)", "run as root"
        )
    if BCC_DIST_PACKAGES not in sys.path:
        sys.path.append(BCC_DIST_PACKAGES)
    try:
        import bcc
    except ImportError as exc:
        raise DatapathError(
            f"bcc is not installed ({exc})",
            "install Debian's python3-bpfcc (make host-deps, or ./scripts/host-deps.sh)",
        ) from exc
    return bcc


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Collect what native code writes to fd 2 (clang and verifier logs from libbcc)."""
    out: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode(errors="replace"))


def _source_line(log: str) -> str | None:
    """The code of the last source annotation (``; code @ main.c:N``) the verifier printed."""
    lines = [ln for ln in log.splitlines() if ln.startswith("; ")]
    if not lines:
        return None
    return lines[-1][2:].rsplit(" @ ", 1)[0].strip()


def _locate(code: str, sources: Mapping[str, str]) -> str:
    """``file:line`` of ``code`` in the original sources (bcc numbers its rewritten text)."""
    for name, text in sources.items():
        for no, line in enumerate(text.splitlines(), start=1):
            if line.strip() == code:
                return f"{name}:{no}"
    return "?"


def verifier_error(
    what: str, log: str, sources: Mapping[str, str] | None = None, tail_lines: int = 12
) -> VerifierError:
    """Turn a verifier / compiler log into one error with its tail and source line."""
    lines = [ln for ln in log.splitlines() if ln.strip()]
    tail = "\n".join(lines[-tail_lines:])
    code = _source_line(log)
    where = f" at {_locate(code, sources or {})}: `{code}`" if code else ""
    return VerifierError(
        f"{what} failed{where}\n{tail}",
        "fix the program (bpf/) or report the kernel/program pair",
    )


@dataclass
class Program:
    """Loaded programs of one compiled object: name -> fd (valid while the object lives)."""

    module: Any
    fds: dict[str, int]

    def close(self) -> None:
        """Release bcc's module and its program fds (attached programs stay in the kernel)."""
        if self.module is not None:
            self.module.cleanup()
            self.module = None


def compile_and_load(
    source: str,
    functions: tuple[str, ...],
    defines: Mapping[str, str | int],
    src_dir: Path | None = None,
) -> Program:
    """Compile ``<src_dir or bpf/>/<source>`` with ``defines``; load ``functions`` (SCHED_CLS)."""
    bcc = import_bcc()
    os.environ.setdefault("BCC_KERNEL_SOURCE", str(headers.prepare()))
    src_dir = src_dir or bpf_source_dir()
    sources: dict[str, str] = {}
    text = inline_includes(src_dir, source, sources)
    cflags = [f"-I{src_dir}", "-Wno-unused-function"]
    cflags += [f"-D{k}={v}" for k, v in defines.items()]
    module = None
    with _captured_stderr() as err:
        try:
            module = bcc.BPF(text=text.encode(), cflags=cflags)
        except Exception:  # bcc raises bare Exception; the details are on fd 2
            module = None
    if module is None:
        log = err[0]
        if "fatal error" in log and ".h' file not found" in log:
            raise DatapathError(
                f"kernel headers for bcc are incomplete ({_first_match(log, r'fatal error: .*')})",
                "reinstall linux-headers-amd64 and remove ~/.cache/ciliumctl/kernel-headers",
            )
        raise verifier_error(f"compiling bpf/{source}", log, sources)
    fds: dict[str, int] = {}
    for name in functions:
        with _captured_stderr() as err:
            try:
                fds[name] = module.load_func(name.encode(), SCHED_CLS).fd
                failed = False
            except Exception:
                failed = True
        if failed:
            module.cleanup()
            raise verifier_error(f"program {name} of bpf/{source}", err[0], sources)
    return Program(module, fds)


_INCLUDE = re.compile(r'^#include "(?P<path>[^"]+)"\s*$', re.MULTILINE)


def inline_includes(src_dir: Path, source: str, sources: dict[str, str] | None = None) -> str:
    """The program's text with local ``#include "..."`` files inlined.

    bcc rewrites map accesses (``map.lookup(...)``) only in the main translation unit's text,
    so the shared header must be part of it rather than a separate include.
    """
    seen: set[str] = set()

    def expand(rel: str) -> str:
        if rel in seen:
            return ""
        seen.add(rel)
        text = (src_dir / rel).read_text()
        if sources is not None:
            sources[f"bpf/{rel}"] = text
        return _INCLUDE.sub(lambda m: expand(m["path"]), text)

    return expand(source)


def _first_match(text: str, pattern: str) -> str:
    m = re.search(pattern, text)
    return m.group(0) if m else text.strip().splitlines()[-1] if text.strip() else ""
