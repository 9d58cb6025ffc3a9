"""Compile and load the datapath's C programs with bcc (Debian's python3-bpfcc).

Cilium compiles each endpoint's program with the endpoint's constants as ``#define``s; so does
this loader. bcc is imported here only (from Debian's dist-packages, added to ``sys.path`` on
first use): the PyPI package named ``bcc`` is an unrelated project. Compiler and verifier
diagnostics, which bcc writes to file descriptor 2, are captured and turned into a
:class:`~ciliumctl.datapath.errors.VerifierError` with the log's tail and the source line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import threading
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
    """Loaded programs: name -> fd. Either a bcc module owns the fds, or they are ours."""

    module: Any
    fds: dict[str, int]

    def close(self) -> None:
        """Release the program fds (attached programs stay in the kernel)."""
        if self.module is not None:
            self.module.cleanup()
            self.module = None
        elif self.fds:
            for fd in self.fds.values():
                os.close(fd)
        self.fds = {}


@dataclass
class _Template:
    """One compiled object kept for the process: the instructions of each function, with the
    map fds they refer to kept open here (by bcc's module, or by us when read from the disk
    cache) so their numbers stay valid."""

    module: Any
    insns: dict[str, bytes]
    fds: list[int]

    def close(self) -> None:
        if self.module is not None:
            self.module.cleanup()
        for fd in self.fds:
            os.close(fd)


_TEMPLATES: dict[tuple[str, str], _Template] = {}
#: one compile per template when endpoints are created from several threads at once
_TEMPLATES_LOCK = threading.Lock()
_MAGIC_BASE = 0x7E1D0000
_LD_IMM64 = 0x18
_PSEUDO_MAP_FD = 1
#: bcc table name -> pinned map name, for the tables whose pin name differs.
_PIN_NAMES = {
    "cilium_lb4_services": "cilium_lb4_services_v2",
    "cilium_lb4_backends": "cilium_lb4_backends_v3",
}
CACHE_VERSION = 1


#: where compiled templates are kept when set (the agent: a node directory that outlives
#: its container, as upstream's /var/run/cilium/state/templates)
OBJECT_CACHE_ENV = "CILIUMCTL_BPF_OBJECT_CACHE"


def object_cache_dir() -> Path:
    """The disk cache of compiled templates: ``$CILIUMCTL_BPF_OBJECT_CACHE``, else the
    user's cache directory."""
    if os.environ.get(OBJECT_CACHE_ENV):
        return Path(os.environ[OBJECT_CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ciliumctl" / "bpf-objects"


def _map_refs(insns: bytes) -> list[tuple[int, int]]:
    """(offset, fd) of every map reference (ld_imm64 with src_reg BPF_PSEUDO_MAP_FD)."""
    out = []
    for off in range(0, len(insns) - 15, 8):
        if insns[off] == _LD_IMM64 and insns[off + 1] >> 4 == _PSEUDO_MAP_FD:
            out.append((off, int.from_bytes(insns[off + 4 : off + 8], "little", signed=True)))
    return out


def _relocate(insns: bytes, fds: Mapping[int, int]) -> bytes:
    buf = bytearray(insns)
    for off, fd in _map_refs(insns):
        buf[off + 4 : off + 8] = fds[fd].to_bytes(4, "little")
    return bytes(buf)


def _patch(insns: bytes, values: Mapping[int, int], found: set[int]) -> bytes:
    """Replace the 64-bit immediate loads of each magic number by its value (``found``
    collects the magic numbers seen)."""
    buf = bytearray(insns)
    for off in range(0, len(buf) - 15, 8):
        if buf[off] != _LD_IMM64 or buf[off + 1] >> 4:  # src_reg != 0: a map reference
            continue
        lo = int.from_bytes(buf[off + 4 : off + 8], "little")
        hi = int.from_bytes(buf[off + 12 : off + 16], "little")
        if hi == 0 and lo in values:
            buf[off + 4 : off + 8] = values[lo].to_bytes(4, "little")
            found.add(lo)
    return bytes(buf)


def drop_templates(pin_root: str) -> None:
    """Forget the compiled templates of a node (bpffs root) this process no longer serves."""
    for key in [k for k in _TEMPLATES if k[0] == pin_root]:
        _TEMPLATES.pop(key).close()


def _cache_key(source: str, defines: Mapping[str, str | int], magic: Mapping[str, int]) -> str:
    """Content hash of everything the object depends on except the bpffs root."""
    import hashlib
    import platform

    text = inline_includes(bpf_source_dir(), source)
    blob = json.dumps(
        [
            CACHE_VERSION,
            text,
            sorted((k, str(v)) for k, v in defines.items()),
            sorted(magic.items()),
            platform.release(),
        ]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _from_cache(path: Path, pin_root: str) -> _Template | None:
    """A template from the disk cache, its map references pointed at ``pin_root``'s maps."""
    from ciliumctl.datapath.bpfsys import Map

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    opened: dict[int, int] = {}
    try:
        for old, name in data["maps"].items():
            opened[int(old)] = os.dup(Map.open_pinned(os.path.join(pin_root, name)).fd)
        insns = {fn: _relocate(bytes.fromhex(h), opened) for fn, h in data["insns"].items()}
    except (DatapathError, KeyError, ValueError):
        for fd in opened.values():
            os.close(fd)
        return None
    return _Template(None, insns, list(opened.values()))


def _to_cache(path: Path, module: Any, insns: Mapping[str, bytes], events_fd: int) -> None:
    """Record the object and which pinned map each fd in it is (skipped if one is unknown)."""
    import ctypes

    lib = import_bcc().lib
    # libbcc's Python wrapper declares no prototypes for these two.
    lib.bpf_num_tables.argtypes = [ctypes.c_void_p]
    lib.bpf_num_tables.restype = ctypes.c_size_t
    lib.bpf_table_name.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.bpf_table_name.restype = ctypes.c_char_p
    names: dict[int, str] = {events_fd: "cilium_events"}
    for i in range(lib.bpf_num_tables(module.module)):
        table = lib.bpf_table_name(module.module, i).decode()
        fd = lib.bpf_table_fd(module.module, table.encode())
        names[fd] = _PIN_NAMES.get(table, table)
    refs = {fd for code in insns.values() for _, fd in _map_refs(code)}
    if not refs <= set(names) or any(names[fd] == "cilium_policy_inner" for fd in refs):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(
        json.dumps(
            {
                "insns": {fn: c.hex() for fn, c in insns.items()},
                "maps": {str(fd): names[fd] for fd in sorted(refs)},
            }
        )
    )
    os.replace(tmp, path)


def _build_template(
    source: str,
    functions: tuple[str, ...],
    pin_root: str,
    defines: Mapping[str, str | int],
    magic: Mapping[str, int],
    events_fd: int,
    digest: str,
) -> _Template:
    """A template from the disk cache, else compiled (in a child process that fills the
    cache, or here when that is not possible)."""
    path = object_cache_dir() / f"{Path(source).stem}-{digest}.json"
    tmpl = _from_cache(path, pin_root)
    if (
        tmpl is None
        and not _in_process()
        and _compile_in_child(source, functions, pin_root, defines, sorted(magic))
    ):
        tmpl = _from_cache(path, pin_root)
    if tmpl is None:
        dup = os.dup(events_fd)
        full: dict[str, str | int] = {**defines, "PIN_ROOT": f'"{pin_root}"', "EVENTS_FD": dup}
        full.update({name: f"LOAD_CONST({hex(m)})" for name, m in magic.items()})
        try:
            compiled = compile_and_load(source, functions, full)
        except Exception:
            os.close(dup)
            raise
        insns = {fn: bytes(compiled.module.dump_func(fn.encode())) for fn in functions}
        tmpl = _Template(compiled.module, insns, [dup])
        # A read-only cache directory only costs the next process a compile.
        with contextlib.suppress(OSError):
            _to_cache(path, compiled.module, insns, dup)
    return tmpl


def load_from_template(
    source: str,
    functions: tuple[str, ...],
    pin_root: str,
    defines: Mapping[str, str | int],
    constants: Mapping[str, int],
    events_fd: int,
) -> Program:
    """Load ``functions`` with per-endpoint ``constants`` patched into a compiled template.

    The template (``source`` with ``defines``, the constants as magic numbers) is compiled by
    bcc once per machine: the instructions are cached on disk with the pinned map each fd
    refers to, and relocated to the maps of ``pin_root`` when read back. Every endpoint then
    costs one BPF_PROG_LOAD per function.
    """
    from ciliumctl.datapath.bpfsys import prog_load

    magic = {name: _MAGIC_BASE + i + 1 for i, name in enumerate(sorted(constants))}
    digest = _cache_key(source, defines, magic)
    tmpl = _TEMPLATES.get((pin_root, digest))
    if tmpl is None:
        with _TEMPLATES_LOCK:
            tmpl = _TEMPLATES.get((pin_root, digest))
            if tmpl is None:
                tmpl = _build_template(
                    source, functions, pin_root, defines, magic, events_fd, digest
                )
                _TEMPLATES[(pin_root, digest)] = tmpl
    values = {magic[name]: value & 0xFFFFFFFF for name, value in constants.items()}
    fds: dict[str, int] = {}
    found: set[int] = set()
    patched = {fn: _patch(tmpl.insns[fn], values, found) for fn in functions}
    if set(values) - found:
        raise DatapathError(
            f"constants {sorted(n for n, m in magic.items() if m not in found)} of bpf/{source} "
            "are not in the compiled program",
            "read every endpoint constant through LOAD_CONST in bpf/",
        )
    try:
        for fn in functions:
            fds[fn] = prog_load(patched[fn], fn)
    except Exception:
        for fd in fds.values():
            os.close(fd)
        raise
    return Program(None, fds)


_IN_PROCESS = "CILIUMCTL_BPF_COMPILE_IN_PROCESS"


def _in_process() -> bool:
    return os.environ.get(_IN_PROCESS) == "1"


def _compile_in_child(
    source: str,
    functions: tuple[str, ...],
    pin_root: str,
    defines: Mapping[str, str | int],
    constants: list[str],
) -> bool:
    """Compile a template in a child process that leaves it in the disk cache.

    bcc links LLVM and clang into the process that compiles: about 85 MiB of libraries and as
    much heap that a long-running agent would keep for good, for a compile it does once per
    template. True when the child wrote the cache; False when it could not (the caller then
    compiles in process); a compiler or verifier error is raised as the child reported it.
    """
    import subprocess

    request = {
        "source": source,
        "functions": list(functions),
        "pin_root": pin_root,
        "defines": dict(defines),
        "constants": constants,
    }
    try:
        run = subprocess.run(
            [sys.executable, "-m", "ciliumctl.datapath.loader"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=600,
            env=dict(os.environ, **{_IN_PROCESS: "1"}),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if run.returncode == 0:
        return True
    try:
        failure = json.loads(run.stdout)
    except ValueError:
        return False  # the child died before it could answer: compile here instead
    cls = VerifierError if failure.get("kind") == "VerifierError" else DatapathError
    raise cls(str(failure.get("message")), failure.get("hint"))


def _child_main() -> int:
    """``python -m ciliumctl.datapath.loader``: compile the template a JSON request on stdin
    names into the disk cache (exit 0), or print the error as JSON (exit 1)."""
    from ciliumctl.datapath.bpfsys import Map

    request = json.loads(sys.stdin.read())
    try:
        events = Map.open_pinned(os.path.join(request["pin_root"], "cilium_events"))
        prog = load_from_template(
            request["source"],
            tuple(request["functions"]),
            request["pin_root"],
            request["defines"],
            dict.fromkeys(request["constants"], 0),
            events.fd,
        )
        prog.close()
    except DatapathError as exc:
        kind = type(exc).__name__
        sys.stdout.write(json.dumps({"kind": kind, "message": exc.message, "hint": exc.hint}))
        return 1
    return 0


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


if __name__ == "__main__":
    sys.exit(_child_main())
