"""System requirement checks: parsers on fake /proc and /boot content, probes on this machine."""

from __future__ import annotations

import errno
import gzip
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ciliumctl.validators import system as S
from ciliumctl.validators.system import Status

ROOT = Path(__file__).resolve().parents[3]
ALL_OPTIONS = [opt for group in S.CONFIG_GROUPS for opt in group.options]


def config_text(missing: set[str] = frozenset(), modules: set[str] = frozenset()) -> str:
    lines = ["#", "# Automatically generated file; DO NOT EDIT.", 'CONFIG_LOCALVERSION=""']
    for opt in ALL_OPTIONS:
        if opt in missing:
            lines.append(f"# {opt} is not set")
        else:
            lines.append(f"{opt}={'m' if opt in modules else 'y'}")
    return "\n".join(lines) + "\n"


def by_name(checks: list[S.Check]) -> dict[str, S.Check]:
    return {c.name: c for c in checks}


def test_architecture() -> None:
    assert S.check_architecture("x86_64").status is Status.OK
    assert S.check_architecture("aarch64").status is Status.OK
    bad = S.check_architecture("s390x")
    assert bad.status is Status.FAIL and bad.impact and bad.fix


@pytest.mark.parametrize(
    ("release", "os_release", "status"),
    [
        ("5.10.0-28-amd64", 'ID=debian\nVERSION_ID="11"\n', Status.OK),
        ("6.8.0-45-generic", "ID=ubuntu\n", Status.OK),
        ("5.4.0-150-generic", 'ID=ubuntu\nVERSION_ID="20.04"\n', Status.FAIL),
        ("4.18.0-553.el8_10.x86_64", 'ID="rhel"\nVERSION_ID="8.10"\n', Status.OK),
        ("4.18.0-553.el8_10.x86_64", 'ID="rocky"\nID_LIKE="rhel centos fedora"\n', Status.OK),
        ("4.18.0-477.el8.x86_64", 'ID="rhel"\nVERSION_ID="8.8"\n', Status.FAIL),
        ("4.19.0", "ID=debian\n", Status.FAIL),
        ("garbage", "", Status.FAIL),
    ],
)
def test_kernel_version(release: str, os_release: str, status: Status) -> None:
    check = S.check_kernel(release, S.parse_os_release(os_release))
    assert check.status is status, check


def test_kernel_config_all_present_from_proc_config_gz(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/config.gz").write_bytes(
        gzip.compress(config_text(modules={"CONFIG_VXLAN"}).encode())
    )
    config, source = S.read_kernel_config(tmp_path, "6.1.0")
    assert source.endswith("proc/config.gz")
    assert config is not None and config["CONFIG_VXLAN"] == "m"
    checks = S.check_kernel_config(config, source)
    assert [c.name for c in checks] == [g.name for g in S.CONFIG_GROUPS]
    assert all(c.status is Status.OK for c in checks)


def test_kernel_config_missing_groups_from_boot(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    text = config_text(missing={"CONFIG_CGROUP_BPF", "CONFIG_NETFILTER_XT_MATCH_SOCKET",
                                "CONFIG_NET_SCH_FQ", "CONFIG_NETKIT"})  # fmt: skip
    (tmp_path / "boot/config-6.1.0-test").write_text(text)
    config, source = S.read_kernel_config(tmp_path, "6.1.0-test")
    checks = by_name(S.check_kernel_config(config, source))
    assert checks["base eBPF"].status is Status.FAIL
    assert "CONFIG_CGROUP_BPF" in checks["base eBPF"].detail
    assert "does not run" in checks["base eBPF"].impact
    assert checks["L7 proxy"].status is Status.WARN
    assert "L7 policies" in checks["L7 proxy"].impact
    assert checks["Bandwidth Manager"].status is Status.WARN
    assert checks["netkit"].status is Status.WARN and "veth" in checks["netkit"].impact
    assert checks["IPsec"].status is Status.OK
    assert checks["tunneling and routing"].status is Status.OK


def test_tunneling_impact_names_the_missing_protocol() -> None:
    config = S.parse_kernel_config(config_text(missing={"CONFIG_GENEVE"}))
    check = by_name(S.check_kernel_config(config, "x"))["tunneling and routing"]
    assert check.status is Status.WARN
    assert "Geneve" in check.impact and "VXLAN" not in check.impact


def test_kernel_config_absent_or_corrupt(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/config.gz").write_bytes(b"not gzip")
    config, _ = S.read_kernel_config(tmp_path, "6.1.0")
    assert config is None
    (check,) = S.check_kernel_config(None, "")
    assert check.status is Status.WARN and check.fix


def test_bpffs() -> None:
    ok = "sysfs /sys sysfs rw 0 0\nbpf /sys/fs/bpf bpf rw,nosuid,nodev,noexec 0 0\n"
    assert S.check_bpffs(ok).status is Status.OK
    assert S.check_bpffs("sysfs /sys sysfs rw 0 0\n").status is Status.WARN
    assert S.check_bpffs("tmpfs /sys/fs/bpf tmpfs rw 0 0\n").status is Status.FAIL


PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1090 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1
   1: 0100007F:2693 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2222 1
   2: 0100007F:1094 0100007F:D2C4 01 00000000:00000000 00:00000000 00000000     0        0 3333 1
"""
PROC_UDP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
  10: 00000000:2118 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4444 2
"""


def test_parse_proc_net() -> None:
    assert S.parse_proc_net(PROC_TCP, "tcp") == {4240: "1111", 9875: "2222"}
    assert S.parse_proc_net(PROC_UDP, "udp") == {8472: "4444"}


def fake_proc(tmp_path: Path, owner: str) -> Path:
    net = tmp_path / "proc/net"
    net.mkdir(parents=True)
    (net / "tcp").write_text(PROC_TCP)
    (net / "udp").write_text(PROC_UDP)
    (net / "tcp6").write_text(PROC_TCP.splitlines()[0] + "\n")
    pid = tmp_path / "proc/4321"
    (pid / "fd").mkdir(parents=True)
    (pid / "comm").write_text(owner + "\n")
    os.symlink("socket:[1111]", pid / "fd/3")
    os.symlink("socket:[4444]", pid / "fd/4")
    return tmp_path


def test_ports_taken_by_another_process(tmp_path: Path) -> None:
    checks = by_name(S.check_ports(fake_proc(tmp_path, "nginx")))
    assert checks["4240/tcp"].status is Status.FAIL
    assert "nginx" in checks["4240/tcp"].detail
    assert checks["8472/udp"].status is Status.FAIL
    assert "Cilium ports" not in checks


def test_ports_held_by_cilium_itself_are_fine(tmp_path: Path) -> None:
    checks = by_name(S.check_ports(fake_proc(tmp_path, "cilium-agent")))
    assert checks["4240/tcp"].status is Status.OK
    assert checks["8472/udp"].status is Status.OK


def test_ports_on_this_machine_detect_a_real_listener() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", 9893))
        except OSError:
            pytest.skip("port 9893 is already in use on this machine")
        sock.listen()
        checks = by_name(S.check_ports(Path("/")))
        check = checks["9893/tcp"]
        assert check.status is Status.WARN  # Hubble Relay gops: not critical
        assert Path(f"/proc/{os.getpid()}/comm").read_text().strip() in check.detail


def test_llvm_versions() -> None:
    def runner(clang: str | None, llc: str | None):  # type: ignore[no-untyped-def]
        return lambda tool: clang if tool == "clang" else llc

    good_llc = "LLVM version 18.1.8\n  Registered Targets:\n    bpf    - BPF (host endian)\n"
    checks = S.check_llvm(True, runner("Debian clang version 18.1.8", good_llc))
    assert [c.status for c in checks] == [Status.OK, Status.OK]
    checks = S.check_llvm(True, runner("clang version 16.0.6", good_llc.replace("18.1", "16.0")))
    assert [c.status for c in checks] == [Status.FAIL, Status.FAIL]
    checks = S.check_llvm(False, runner(None, "LLVM version 19.1.0\n  x86-64 - 64-bit X86\n"))
    assert [c.status for c in checks] == [Status.WARN, Status.WARN]
    assert "natively" in checks[0].detail


def test_real_bpf_probes_on_this_machine() -> None:
    checks = S.probe_bpf()
    names = {c.name for c in checks}
    assert {f"program {p[0]}" for p in S.PROGRAM_TYPES} <= names
    assert {f"map {m[0]}" for m in S.MAP_TYPES} <= names
    if os.geteuid() == 0:
        assert by_name(checks)["program sched_cls"].status is Status.OK
        assert by_name(checks)["map lru_hash"].status is Status.OK


@pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI", "").lower() not in ("1", "true", "yes"),
    reason="loading eBPF programs needs root (in CI it runs, as root, and never skips)",
)
def test_probe_reports_a_type_the_kernel_rejects() -> None:
    call = S._bpf_syscall()
    assert call is not None
    assert S._load_program(call, 3, 0, 0) == 0
    assert S._load_program(call, 4000, 0, 0) == errno.EINVAL
    assert S._create_map(call, 4000, 4, 4, 0) == errno.EINVAL


def test_run_checks_on_this_machine() -> None:
    report = S.run_checks()
    groups = {c.group for c in report.checks}
    assert {"platform", "kernel", "kernel config", "filesystem", "eBPF", "LLVM", "ports"} <= groups
    for check in report.checks:
        if check.status is not Status.OK:
            assert check.impact, check


def test_cli_system_and_preflight_alias() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update({"NO_COLOR": "1", "COLUMNS": "250"})
    results = [
        subprocess.run([sys.executable, "-m", "ciliumctl", *cmd, "-o", "json"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        for cmd in (["validate", "system"], ["preflight", "system"])
    ]  # fmt: skip
    for result in results:
        data = json.loads(result.stdout)
        fails = data["summary"]["FAIL"]
        assert result.returncode == (1 if fails else 0), result.stderr
        assert {c["status"] for c in data["checks"]} <= {"OK", "WARN", "FAIL"}
    text = subprocess.run(
        [sys.executable, "-m", "ciliumctl", "validate", "system"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert "STATUS" in text.stdout and "IMPACT" in text.stdout
