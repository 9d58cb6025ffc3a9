"""The bpf(2) system call through ctypes: maps, pinning and BPF_PROG_TEST_RUN.

bcc compiles and loads programs (:mod:`ciliumctl.datapath.loader`); everything else talks to
the kernel here, so maps can be created, pinned, read and swapped without bcc (a restarted
agent, ``cilium-dbg bpf ... list``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from ciliumctl.datapath.errors import DatapathError

_SYS_BPF = 321  # x86_64

# Commands.
MAP_CREATE = 0
MAP_LOOKUP_ELEM = 1
MAP_UPDATE_ELEM = 2
MAP_DELETE_ELEM = 3
MAP_GET_NEXT_KEY = 4
OBJ_PIN = 6
OBJ_GET = 7
PROG_LOAD = 5
PROG_TEST_RUN = 10
PROG_SCHED_CLS = 3
OBJ_GET_INFO_BY_FD = 15
MAP_UPDATE_BATCH = 26

# Map types.
HASH = 1
ARRAY = 2
PERCPU_HASH = 5
LPM_TRIE = 11
ARRAY_OF_MAPS = 12
RINGBUF = 27

F_NO_PREALLOC = 1
ANY = 0
NOEXIST = 1

MAP_TYPE_NAMES = {
    HASH: "hash",
    ARRAY: "array",
    PERCPU_HASH: "percpu_hash",
    LPM_TRIE: "lpm_trie",
    ARRAY_OF_MAPS: "array_of_maps",
    RINGBUF: "ringbuf",
}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    ret = int(_libc.syscall(_SYS_BPF, cmd, attr, len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def _attr(size: int = 128) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(size)


def _addr(buf: ctypes.Array[ctypes.c_char] | None) -> int:
    return ctypes.addressof(buf) if buf is not None else 0


def possible_cpus() -> int:
    """Number of possible CPUs: the width of per-CPU map values."""
    text = open("/sys/devices/system/cpu/possible").read().strip()  # noqa: SIM115
    total = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        total += (int(hi) if hi else int(lo)) - int(lo) + 1
    return total


@dataclass(frozen=True)
class MapInfo:
    """What the kernel says about a map (BPF_OBJ_GET_INFO_BY_FD)."""

    type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str


class Map:
    """An open BPF map: raw byte keys and values, closed with :meth:`close`."""

    def __init__(self, fd: int, info: MapInfo | None = None) -> None:
        self.fd = fd
        self.info = info or map_info(fd)
        self._percpu = self.info.type in (PERCPU_HASH,)
        self._ncpu = possible_cpus() if self._percpu else 1
        self.value_buf_size = (
            ((self.info.value_size + 7) // 8 * 8) * self._ncpu
            if self._percpu
            else self.info.value_size
        )

    @classmethod
    def create(
        cls,
        map_type: int,
        key_size: int,
        value_size: int,
        max_entries: int,
        name: str,
        flags: int = 0,
        inner_map_fd: int = 0,
    ) -> Map:
        attr = _attr()
        struct.pack_into(
            "<IIIIII", attr, 0, map_type, key_size, value_size, max_entries, flags, inner_map_fd
        )
        struct.pack_into("16s", attr, 28, name.encode()[:15])
        try:
            fd = _bpf(MAP_CREATE, attr)
        except OSError as exc:
            kind = MAP_TYPE_NAMES.get(map_type, str(map_type))
            if exc.errno == errno.EPERM:
                raise DatapathError(
                    f"creating BPF map {name}: permission denied",
                    "run as root (CAP_BPF and CAP_NET_ADMIN are needed)",
                ) from exc
            if exc.errno == errno.EINVAL and map_type in (RINGBUF, LPM_TRIE, ARRAY_OF_MAPS):
                raise DatapathError(
                    f"this kernel does not support BPF {kind} maps (creating {name})",
                    "use a kernel >= 5.8 with CONFIG_BPF_SYSCALL",
                ) from exc
            if exc.errno == errno.EINVAL and map_type not in MAP_TYPE_NAMES:
                raise DatapathError(
                    f"this kernel does not support BPF map type {kind} (creating {name})",
                    "use a kernel with that map type (see the System Requirements page)",
                ) from exc
            raise DatapathError(f"creating BPF {kind} map {name}: {exc.strerror}") from exc
        return cls(fd)

    @classmethod
    def open_pinned(cls, path: str) -> Map:
        attr = _attr()
        raw = ctypes.create_string_buffer(path.encode())
        struct.pack_into("<Q", attr, 0, ctypes.addressof(raw))
        try:
            fd = _bpf(OBJ_GET, attr)
        except OSError as exc:
            raise DatapathError(f"opening pinned BPF map {path}: {exc.strerror}") from exc
        return cls(fd)

    def pin(self, path: str) -> None:
        attr = _attr()
        raw = ctypes.create_string_buffer(path.encode())
        struct.pack_into("<QI", attr, 0, ctypes.addressof(raw), self.fd)
        try:
            _bpf(OBJ_PIN, attr)
        except OSError as exc:
            raise DatapathError(f"pinning BPF map at {path}: {exc.strerror}") from exc

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Map:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _elem(
        self,
        cmd: int,
        key: bytes,
        value: ctypes.Array[ctypes.c_char] | None,
        flags: int = 0,
    ) -> None:
        attr = _attr(32)
        kbuf = ctypes.create_string_buffer(key, len(key))
        struct.pack_into("<IIQQQ", attr, 0, self.fd, 0, _addr(kbuf), _addr(value), flags)
        _bpf(cmd, attr)

    def lookup(self, key: bytes) -> bytes | None:
        """The value (for per-CPU maps: all CPUs' values concatenated), or None."""
        vbuf = ctypes.create_string_buffer(self.value_buf_size)
        try:
            self._elem(MAP_LOOKUP_ELEM, key, vbuf)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise
        return vbuf.raw

    def update(self, key: bytes, value: bytes | int, flags: int = ANY) -> None:
        """Insert or replace; ``value`` is an fd (int) for map-in-map outer maps."""
        if isinstance(value, int):
            value = struct.pack("<I", value)
        vbuf = ctypes.create_string_buffer(value, len(value))
        self._elem(MAP_UPDATE_ELEM, key, vbuf, flags)

    def update_batch(self, keys: list[bytes], values: list[bytes], flags: int = ANY) -> None:
        """Insert many entries in one BPF_MAP_UPDATE_BATCH (one update each where unsupported)."""
        if not keys:
            return
        kraw, vraw = b"".join(keys), b"".join(values)
        kbuf = ctypes.create_string_buffer(kraw, len(kraw))
        vbuf = ctypes.create_string_buffer(vraw, len(vraw))
        attr = _attr(64)
        struct.pack_into(
            "<QQQQIIQQ", attr, 0, 0, 0, _addr(kbuf), _addr(vbuf), len(keys), self.fd, flags, 0
        )
        try:
            _bpf(MAP_UPDATE_BATCH, attr)
            return
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, 524):
                raise
            done = struct.unpack_from("<I", attr, 32)[0]
        for k, v in zip(keys[done:], values[done:], strict=True):
            self.update(k, v, flags)

    def delete(self, key: bytes) -> bool:
        try:
            self._elem(MAP_DELETE_ELEM, key, None)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def keys(self) -> Iterator[bytes]:
        """Every key, via BPF_MAP_GET_NEXT_KEY (entries may change meanwhile)."""
        size = self.info.key_size
        attr = _attr(32)
        nxt = ctypes.create_string_buffer(size)
        cur: ctypes.Array[ctypes.c_char] | None = None
        while True:
            struct.pack_into("<IIQQ", attr, 0, self.fd, 0, _addr(cur), _addr(nxt))
            try:
                _bpf(MAP_GET_NEXT_KEY, attr)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return
                raise
            key = nxt.raw
            yield key
            cur = ctypes.create_string_buffer(key, size)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key in list(self.keys()):
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def percpu_values(self, raw: bytes) -> list[bytes]:
        """Split a per-CPU lookup result into one value per CPU."""
        step = (self.info.value_size + 7) // 8 * 8
        return [raw[i : i + self.info.value_size] for i in range(0, len(raw), step)]


def map_info(fd: int) -> MapInfo:
    buf = ctypes.create_string_buffer(128)
    attr = _attr(16)
    struct.pack_into("<IIQ", attr, 0, fd, len(buf), ctypes.addressof(buf))
    _bpf(OBJ_GET_INFO_BY_FD, attr)
    mtype, mid, ksize, vsize, maxe, flags = struct.unpack_from("<IIIIII", buf, 0)
    name = buf.raw[24:40].split(b"\0", 1)[0].decode()
    return MapInfo(mtype, mid, ksize, vsize, maxe, flags, name)


def prog_load(insns: bytes, name: str, prog_type: int = PROG_SCHED_CLS) -> int:
    """BPF_PROG_LOAD of raw instructions (GPL); returns the program fd."""
    attr = _attr(128)
    ibuf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 20)
    struct.pack_into("<IIQQ", attr, 0, prog_type, len(insns) // 8, _addr(ibuf), _addr(lic))
    struct.pack_into("16s", attr, 48, name.encode()[:15])
    try:
        return _bpf(PROG_LOAD, attr)
    except OSError:
        pass
    struct.pack_into("<IIQ", attr, 24, 1, len(log), _addr(log))  # again, with the verifier log
    try:
        return _bpf(PROG_LOAD, attr)
    except OSError as exc:
        text = log.value.decode(errors="replace")
        raise DatapathError(f"loading program {name}: {exc.strerror}\n{text[-2000:]}") from exc


@dataclass(frozen=True)
class TestRunResult:
    """The outcome of BPF_PROG_TEST_RUN: the program's return code and the packet after it."""

    __test__ = False  # not a pytest class
    retval: int
    data: bytes
    duration_ns: int


def prog_test_run(prog_fd: int, data: bytes, repeat: int = 1) -> TestRunResult:
    """Run a SCHED_CLS program on one crafted packet (no device, no traffic)."""
    attr = _attr(80)
    din = ctypes.create_string_buffer(data, len(data))
    dout = ctypes.create_string_buffer(len(data) + 256)
    struct.pack_into(
        "<IIIIQQII",
        attr,
        0,
        prog_fd,
        0,
        len(data),
        len(dout),
        _addr(din),
        _addr(dout),
        repeat,
        0,
    )
    try:
        _bpf(PROG_TEST_RUN, attr)
    except OSError as exc:
        raise DatapathError(f"BPF_PROG_TEST_RUN: {exc.strerror}") from exc
    _, retval, _, size_out = struct.unpack_from("<IIII", attr, 0)
    (duration,) = struct.unpack_from("<I", attr, 36)
    return TestRunResult(ctypes.c_int32(retval).value, dout.raw[:size_out], duration)
