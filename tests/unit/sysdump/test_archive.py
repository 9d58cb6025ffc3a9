"""The streaming zip writer: entry-name safety, validity after an early close."""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ciliumctl.sysdump.archive import (
    ArchiveClosed,
    ArchiveError,
    ArchiveWriter,
    check_entry_name,
    safe_component,
)


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "a/../../b", "..", "a//b", "C:/x", "a\\b", "./a", "a/", "", "a\x00b"],
)
def test_unsafe_entry_names_are_refused(name: str) -> None:
    with pytest.raises(ArchiveError):
        check_entry_name(name)


def test_safe_entry_names_pass() -> None:
    assert check_entry_name("root/logs-cilium-x-cilium-agent.log") == (
        "root/logs-cilium-x-cilium-agent.log"
    )


@given(st.text(max_size=40))
def test_safe_component_always_yields_a_safe_single_component(text: str) -> None:
    part = safe_component(text)
    assert "/" not in part and part not in ("", ".", "..")
    check_entry_name(f"root/{part}")


def test_entries_are_valid_and_unique_and_the_zip_opens_after_close(tmp_path: Path) -> None:
    archive = ArchiveWriter(tmp_path / "out.zip", "root")
    archive.add_bytes("a.txt", b"hello")
    archive.add_file("big.log", io.BytesIO(b"x" * (3 << 20)))
    second = archive.unique("a.txt")
    assert second == "a-2.txt"
    archive.add_bytes(second, b"again")
    with pytest.raises(ArchiveError):
        archive.add_bytes("a.txt", b"dup")
    with pytest.raises(ArchiveError):
        archive.add_bytes("../escape", b"x")
    archive.close()
    with pytest.raises(ArchiveClosed):
        archive.add_bytes("late.txt", b"x")
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert zf.testzip() is None
        assert zf.namelist() == ["root/a.txt", "root/big.log", "root/a-2.txt"]
        assert zf.read("root/big.log") == b"x" * (3 << 20)
    assert archive.bytes_written == 5 + (3 << 20) + 5


def test_concurrent_writers_produce_a_valid_zip(tmp_path: Path) -> None:
    archive = ArchiveWriter(tmp_path / "c.zip", "r")

    def work(i: int) -> None:
        for j in range(20):
            archive.add_chunks(f"w{i}/f{j}.txt", [f"{i}-{j}\n".encode()] * 100)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    archive.close()
    with zipfile.ZipFile(tmp_path / "c.zip") as zf:
        assert zf.testzip() is None
        assert len(zf.namelist()) == 160
        assert zf.read("r/w3/f7.txt") == b"3-7\n" * 100
