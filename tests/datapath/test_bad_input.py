"""Bad input and missing prerequisites: one clear error naming what is missing and the fix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from ciliumctl.datapath import Datapath, bpfsys, headers
from ciliumctl.datapath.errors import DatapathError, VerifierError
from ciliumctl.datapath.loader import compile_and_load
from tests.datapath.conftest import _require_root

DATA = Path(__file__).parent / "data"


def test_verifier_rejection_shows_log_tail_and_source_line() -> None:
    _require_root()
    with pytest.raises(VerifierError) as info:
        compile_and_load("rejected.c", ("reads_unchecked",), {}, src_dir=DATA)
    msg = str(info.value)
    assert "program reads_unchecked of bpf/rejected.c failed" in msg
    assert (
        "invalid access to packet" in msg
        or "R1 invalid mem access" in msg
        or "permission denied" in msg.lower()
    )
    # The source line of the rejected instruction, in the original file's numbering.
    assert "failed at bpf/rejected.c:7: `return data[100];`" in msg
    assert "errno" not in msg.lower().split("\n")[0]


def test_compile_error_names_the_file_and_line() -> None:
    _require_root()
    with tempfile.TemporaryDirectory() as d:
        Path(d, "broken.c").write_text("int f(struct __sk_buff *skb) { return undefined_thing; }\n")
        with pytest.raises(
            VerifierError,
            match=r"compiling bpf/broken.c failed(.|\n)*undeclared identifier 'undefined_thing'",
        ):
            compile_and_load("broken.c", ("f",), {}, src_dir=Path(d))


def test_no_bpffs_is_one_line_with_the_fix() -> None:
    _require_root()
    with tempfile.TemporaryDirectory() as d, pytest.raises(DatapathError) as info:
        Datapath(os.path.join(d, "globals"))
    assert "is not on a BPF filesystem" in str(info.value)
    assert "mount -t bpf bpf /sys/fs/bpf" in str(info.value)


def test_missing_headers_name_the_package(tmp_path: Path) -> None:
    with pytest.raises(DatapathError) as info:
        headers.find_debian_trees(tmp_path)
    assert "no kernel headers for bcc" in str(info.value) and "linux-headers-amd64" in str(
        info.value
    )


def test_header_tree_is_merged_without_touching_lib_modules(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "linux-headers-6.1.0-9-common/include/linux").mkdir(parents=True)
    (src / "linux-headers-6.1.0-9-common/include/linux/kconfig.h").write_text("common")
    (src / "linux-headers-6.1.0-9-common/include/linux/shared.h").write_text("common")
    (src / "linux-headers-6.1.0-9-amd64/include/linux").mkdir(parents=True)
    (src / "linux-headers-6.1.0-9-amd64/include/linux/shared.h").write_text("arch")
    (src / "linux-headers-6.1.0-9-amd64/include/generated").mkdir(parents=True)
    (src / "linux-headers-6.1.0-9-amd64/include/generated/autoconf.h").write_text("gen")
    common, arch = headers.find_debian_trees(src)
    assert (common.name, arch.name) == (
        "linux-headers-6.1.0-9-common",
        "linux-headers-6.1.0-9-amd64",
    )
    tree = tmp_path / "cache" / arch.name
    headers._link_tree(common, tree)
    headers._link_tree(arch, tree)
    assert (tree / "include/linux/shared.h").read_text() == "arch"  # the arch tree wins
    assert (tree / "include/linux/kconfig.h").read_text() == "common"
    assert (tree / "include/generated/autoconf.h").is_symlink()


def test_unsupported_map_type_names_what_is_missing() -> None:
    _require_root()
    with pytest.raises(DatapathError, match="does not support BPF map type 999"):
        bpfsys.Map.create(999, 4, 4, 1, "nosuchtype")


def test_not_root_is_one_line_with_the_fix(bpffs: str) -> None:
    """A forked child drops to uid 65534 (the interpreter itself may not be readable by it)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.setuid(65534)
            try:
                Datapath(bpffs)
            except DatapathError as exc:
                os.write(w, str(exc).encode())
                code = 0
        finally:
            os._exit(code)
    os.close(w)
    msg = os.read(r, 4096).decode()
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert msg == "the eBPF datapath needs root (CAP_BPF, CAP_NET_ADMIN) (run as root)"
