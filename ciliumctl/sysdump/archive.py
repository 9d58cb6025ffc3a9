"""The sysdump archive: a zip written entry by entry while collection runs.

Workers spool what they fetch (redacted on the way) into temporary files, then copy one
whole entry at a time into the zip under a lock, so the zip is always a sequence of complete
entries: closing it at any moment (Ctrl-C) leaves a valid archive of what was finished.
Entry names are checked: relative, ``/``-separated, no ``..``, no drive letters or control
characters, so unpacking the archive cannot write outside its directory.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from ciliumctl.errors import CiliumctlError

_UNSAFE_COMPONENT = re.compile(r"[^A-Za-z0-9._+@=-]")
#: Entries up to this size are spooled in memory, larger ones on disk.
SPOOL_MEMORY = 1 << 20
_COPY_CHUNK = 1 << 16


class ArchiveError(CiliumctlError):
    """The archive cannot be written (disk full, bad path) or an entry name is unsafe."""


class ArchiveClosed(ArchiveError):
    """The archive was finalized (interrupted run) before this entry could be added."""


def safe_component(text: str) -> str:
    """One path component made of portable characters (pod, node and container names)."""
    cleaned = _UNSAFE_COMPONENT.sub("_", text).lstrip(".")
    return cleaned or "_"


def check_entry_name(name: str) -> str:
    """Return ``name`` if it is a safe relative zip entry name; raise :class:`ArchiveError`."""
    problem = None
    if not name:
        problem = "empty"
    elif name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        problem = "absolute"
    elif "\\" in name:
        problem = "contains a backslash"
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        problem = "contains control characters"
    else:
        parts = name.split("/")
        if any(part in ("", ".", "..") for part in parts):
            problem = "has an empty, '.' or '..' component"
    if problem:
        raise ArchiveError(f"unsafe archive entry name {name!r}: {problem}")
    return name


def spool() -> tempfile.SpooledTemporaryFile[bytes]:
    """A temporary buffer for one entry: memory up to 1 MiB, then a file on disk."""
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, mode="w+b")


class ArchiveWriter:
    """A zip under construction. Thread-safe; every entry lands under ``root/``."""

    def __init__(self, path: Path, root: str, *, compresslevel: int = 6) -> None:
        self.path = path
        self.root = check_entry_name(root)
        self.compresslevel = compresslevel
        #: Held while one entry is written (the zip is a sequence of whole entries).
        self._lock = threading.Lock()
        #: Guards the names only, so choosing a name never waits for another entry's copy.
        self._names_lock = threading.Lock()
        self._names: set[str] = set()
        self.entries: list[str] = []
        self.bytes_written = 0
        try:
            self._zip: zipfile.ZipFile | None = zipfile.ZipFile(
                path, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel
            )
        except OSError as exc:
            raise ArchiveError(
                f"cannot create {path}: {exc.strerror or exc}",
                "choose another --output-filename or directory",
            ) from exc

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._zip is None

    def unique(self, name: str) -> str:
        """``name``, or ``name`` with a numeric suffix if an entry of that name exists."""
        with self._names_lock:
            candidate, n = name, 1
            while f"{self.root}/{candidate}" in self._names:
                n += 1
                stem, dot, ext = name.rpartition(".")
                candidate = f"{stem}-{n}.{ext}" if dot and "/" not in ext else f"{name}-{n}"
            return candidate

    def add_bytes(self, name: str, data: bytes) -> int:
        """Add one entry from memory (small files: summary, index, objects)."""
        with self._lock:
            zf = self._open_zip()
            full = self._claim(name)
            info = self._info(full, len(data))
            zf.writestr(info, data)
            self.bytes_written += len(data)
            return len(data)

    def add_file(self, name: str, source: IO[bytes]) -> int:
        """Add one entry by copying ``source`` (a spool) from its start."""
        size = source.seek(0, 2)
        source.seek(0)
        with self._lock:
            zf = self._open_zip()
            full = self._claim(name)
            info = self._info(full, size)
            with zf.open(info, "w", force_zip64=size > 0x7FFFFFFF) as dest:
                shutil.copyfileobj(source, dest, _COPY_CHUNK)
            self.bytes_written += size
            return size

    def add_chunks(self, name: str, chunks: Iterable[bytes]) -> int:
        """Spool ``chunks`` (fetched outside the lock), then add them as one entry."""
        with spool() as buf:
            for chunk in chunks:
                buf.write(chunk)
            return self.add_file(name, buf)

    def close(self) -> None:
        """Write the central directory; later adds raise :class:`ArchiveClosed`."""
        with self._lock:
            if self._zip is not None:
                self._zip.close()
                self._zip = None

    # ------------------------------------------------------------------ internals
    def _open_zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            raise ArchiveClosed(f"{self.path} is already finalized")
        return self._zip

    def _claim(self, name: str) -> str:
        full = check_entry_name(f"{self.root}/{name}")
        with self._names_lock:
            if full in self._names:
                raise ArchiveError(f"duplicate archive entry {full!r}")
            self._names.add(full)
            self.entries.append(full)
        return full

    def _info(self, name: str, size: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        # ZipFile's own compresslevel is not applied to a ZipInfo passed in; the slot is
        # _compresslevel before Python 3.13 and compress_level since.
        slot = "compress_level" if hasattr(info, "compress_level") else "_compresslevel"
        setattr(info, slot, self.compresslevel)
        info.file_size = size
        info.external_attr = 0o600 << 16
        return info
