"""Check this machine against Cilium 1.18's system requirements.

Architecture, kernel version, kernel configuration (grouped as the System Requirements page
groups it, with what is lost when a group is missing), the BPF filesystem, whether the eBPF
program and map types Cilium uses really load in this kernel, LLVM for native agents, and
local ports Cilium listens on that something else already holds.

eBPF support is probed with the bpf(2) system call through ctypes: a two-instruction
program per type and one small map per type are loaded and closed again. That needs no
extra package (bcc only exists for the system Python and compiles C at run time, bpftool
may be missing), runs from any virtualenv, and asks the running kernel itself rather than
its headers or config. It needs root or CAP_BPF; without them the probe reports WARN.

Every reader takes a root directory so tests can feed fake /proc, /boot and /etc content.
"""

from __future__ import annotations

import ctypes
import enum
import errno
import gzip
import os
import platform
import re
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Status(enum.StrEnum):
    """Outcome of one check."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One requirement: what was found and what is lost when it is not met."""

    group: str
    name: str
    status: Status
    detail: str
    impact: str = ""
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        """Plain data for ``-o json``."""
        return {
            "group": self.group,
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "impact": self.impact,
            "fix": self.fix,
        }


@dataclass
class SystemReport:
    """All checks of one run."""

    checks: list[Check] = field(default_factory=list)

    def failed(self) -> bool:
        """True when any check FAILed."""
        return any(c.status is Status.FAIL for c in self.checks)

    def count(self, status: Status) -> int:
        """Checks with ``status``."""
        return sum(1 for c in self.checks if c.status is status)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``-o json``."""
        return {
            "summary": {s.value: self.count(s) for s in Status},
            "checks": [c.to_dict() for c in self.checks],
        }


# ----------------------------------------------------------------- architecture and kernel

SUPPORTED_ARCH = {"x86_64": "AMD64", "amd64": "AMD64", "aarch64": "AArch64", "arm64": "AArch64"}
MIN_KERNEL = (5, 10)
RHEL_KERNEL = (4, 18)
RHEL_IDS = {"rhel", "centos", "rocky", "almalinux", "ol"}


def check_architecture(machine: str) -> Check:
    """Cilium images exist for AMD64 and AArch64 only."""
    name = SUPPORTED_ARCH.get(machine.lower())
    if name:
        return Check("platform", "architecture", Status.OK, f"{machine} ({name})")
    return Check(
        "platform",
        "architecture",
        Status.FAIL,
        f"{machine} is not supported",
        "no Cilium images or binaries for this architecture",
        "run Cilium on AMD64 or AArch64 hosts",
    )


def parse_kernel_release(release: str) -> tuple[int, int, int] | None:
    """``5.15.0-91-generic`` -> (5, 15, 0)."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value pairs of /etc/os-release (quotes removed)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip('"').strip("'")
    return out


def _is_rhel_8_10(os_release: dict[str, str], release: str) -> bool:
    ids = {os_release.get("ID", "")} | set(os_release.get("ID_LIKE", "").split())
    if ids & RHEL_IDS and os_release.get("VERSION_ID", "").startswith("8.10"):
        return True
    return "el8_10" in release


def check_kernel(release: str, os_release: dict[str, str]) -> Check:
    """Kernel >= 5.10, or >= 4.18 on RHEL 8.10 (which carries the needed backports)."""
    version = parse_kernel_release(release)
    if version is None:
        return Check("kernel", "version", Status.FAIL, f"cannot parse kernel release {release!r}")
    rhel = _is_rhel_8_10(os_release, release)
    minimum = RHEL_KERNEL if rhel else MIN_KERNEL
    label = f"{release}" + (" (RHEL 8.10)" if rhel else "")
    if version[:2] >= minimum:
        return Check("kernel", "version", Status.OK, label)
    return Check(
        "kernel",
        "version",
        Status.FAIL,
        f"{label} is older than {minimum[0]}.{minimum[1]}",
        "Cilium 1.18 does not start on this kernel",
        f"upgrade to a kernel >= {MIN_KERNEL[0]}.{MIN_KERNEL[1]} (or RHEL 8.10's 4.18)",
    )


# ----------------------------------------------------------------- kernel configuration


@dataclass(frozen=True)
class ConfigGroup:
    """Kernel options the System Requirements page lists together."""

    name: str
    options: tuple[str, ...]
    impact: str
    required: bool = False
    option_impacts: tuple[tuple[str, str], ...] = ()

    def impact_of(self, missing: list[str]) -> str:
        """What is lost without ``missing`` (per option when the group says so)."""
        specific = dict(self.option_impacts)
        if specific and all(opt in specific for opt in missing):
            return "; ".join(specific[opt] for opt in missing)
        return self.impact


CONFIG_GROUPS: tuple[ConfigGroup, ...] = (
    ConfigGroup(
        "base eBPF",
        (
            "CONFIG_BPF",
            "CONFIG_BPF_SYSCALL",
            "CONFIG_NET_CLS_BPF",
            "CONFIG_BPF_JIT",
            "CONFIG_NET_CLS_ACT",
            "CONFIG_NET_SCH_INGRESS",
            "CONFIG_CRYPTO_SHA1",
            "CONFIG_CRYPTO_USER_API_HASH",
            "CONFIG_CGROUPS",
            "CONFIG_CGROUP_BPF",
            "CONFIG_PERF_EVENTS",
            "CONFIG_SCHEDSTATS",
        ),
        "the eBPF datapath cannot be loaded: Cilium does not run",
        required=True,
    ),
    ConfigGroup(
        "iptables masquerading",
        (
            "CONFIG_NETFILTER_XT_SET",
            "CONFIG_IP_SET",
            "CONFIG_IP_SET_HASH_IP",
            "CONFIG_NETFILTER_XT_MATCH_COMMENT",
        ),
        "iptables-based masquerading (the default, enable-bpf-masquerade=false) breaks; "
        "enable BPF masquerading instead",
    ),
    ConfigGroup(
        "tunneling and routing",
        ("CONFIG_VXLAN", "CONFIG_GENEVE", "CONFIG_FIB_RULES"),
        "VXLAN/Geneve tunneling (the default routing mode) and policy routing are "
        "unavailable; only native routing works",
        option_impacts=(
            ("CONFIG_VXLAN", "VXLAN tunneling (the default routing mode) is unavailable"),
            ("CONFIG_GENEVE", "Geneve tunneling (tunnelProtocol=geneve) is unavailable"),
            ("CONFIG_FIB_RULES", "policy routing (egress gateway, ENI, ...) is unavailable"),
        ),
    ),
    ConfigGroup(
        "L7 proxy",
        (
            "CONFIG_NETFILTER_XT_TARGET_TPROXY",
            "CONFIG_NETFILTER_XT_TARGET_MARK",
            "CONFIG_NETFILTER_XT_TARGET_CT",
            "CONFIG_NETFILTER_XT_MATCH_MARK",
            "CONFIG_NETFILTER_XT_MATCH_SOCKET",
        ),
        "L7 policies and visibility cannot redirect to the proxy (without xt_socket Cilium "
        "disables ip_early_demux in non-tunneled modes)",
    ),
    ConfigGroup(
        "IPsec",
        (
            "CONFIG_XFRM",
            "CONFIG_XFRM_OFFLOAD",
            "CONFIG_XFRM_STATISTICS",
            "CONFIG_XFRM_ALGO",
            "CONFIG_XFRM_USER",
            "CONFIG_INET_ESP",
            "CONFIG_INET6_ESP",
            "CONFIG_INET_IPCOMP",
            "CONFIG_INET6_IPCOMP",
            "CONFIG_INET_XFRM_TUNNEL",
            "CONFIG_INET6_XFRM_TUNNEL",
            "CONFIG_INET_TUNNEL",
            "CONFIG_INET6_TUNNEL",
            "CONFIG_CRYPTO_AEAD",
            "CONFIG_CRYPTO_AEAD2",
            "CONFIG_CRYPTO_GCM",
            "CONFIG_CRYPTO_SEQIV",
            "CONFIG_CRYPTO_CBC",
            "CONFIG_CRYPTO_HMAC",
            "CONFIG_CRYPTO_SHA256",
            "CONFIG_CRYPTO_AES",
        ),
        "IPsec transparent encryption (GCM-128-AES) is unavailable",
    ),
    ConfigGroup(
        "Bandwidth Manager",
        ("CONFIG_NET_SCH_FQ",),
        "the Bandwidth Manager (EDT rate limiting with the fq qdisc) is unavailable",
    ),
    ConfigGroup(
        "netkit",
        ("CONFIG_NETKIT",),
        "netkit device mode is unavailable; pods use veth devices",
    ),
)


def parse_kernel_config(text: str) -> dict[str, str]:
    """``CONFIG_X=y`` lines -> {"CONFIG_X": "y"}; "is not set" lines are left out."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("CONFIG_"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value.strip().strip('"')
    return out


def read_kernel_config(root: Path, release: str) -> tuple[dict[str, str] | None, str]:
    """The running kernel's configuration and where it came from (None when absent)."""
    candidates = [
        root / "proc/config.gz",
        root / f"boot/config-{release}",
        root / f"lib/modules/{release}/build/.config",
        root / f"lib/modules/{release}/config",
    ]
    for path in candidates:
        try:
            if path.name.endswith(".gz"):
                text = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
            else:
                text = path.read_text(encoding="utf-8", errors="replace")
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        return parse_kernel_config(text), str(path)
    return None, ""


def check_kernel_config(config: dict[str, str] | None, source: str) -> list[Check]:
    """One check per requirement group."""
    if config is None:
        return [
            Check(
                "kernel config",
                "kernel configuration",
                Status.WARN,
                "no /proc/config.gz or /boot/config-<release> found",
                "the kernel options cannot be verified",
                "load the configs module (modprobe configs) or install the kernel's config",
            )
        ]
    out = []
    for group in CONFIG_GROUPS:
        missing = [opt for opt in group.options if config.get(opt) not in ("y", "m")]
        if not missing:
            out.append(
                Check(
                    "kernel config",
                    group.name,
                    Status.OK,
                    f"{len(group.options)} option(s) set ({source})",
                )
            )
            continue
        out.append(
            Check(
                "kernel config",
                group.name,
                Status.FAIL if group.required else Status.WARN,
                "missing: " + ", ".join(missing),
                group.impact_of(missing),
                "use a kernel built with "
                + ", ".join(f"{o}=y or m" for o in missing[:3])
                + (" ..." if len(missing) > 3 else ""),
            )
        )
    return out


# ----------------------------------------------------------------- bpffs


def check_bpffs(mounts: str) -> Check:
    """/sys/fs/bpf should be a bpf filesystem so eBPF state survives agent restarts."""
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "/sys/fs/bpf":
            if parts[2] == "bpf":
                return Check("filesystem", "bpffs", Status.OK, "bpf mounted at /sys/fs/bpf")
            return Check(
                "filesystem",
                "bpffs",
                Status.FAIL,
                f"/sys/fs/bpf is a {parts[2]} filesystem, not bpf",
                "pinned eBPF maps cannot be created",
                "unmount it and mount bpffs: mount bpffs /sys/fs/bpf -t bpf",
            )
    return Check(
        "filesystem",
        "bpffs",
        Status.WARN,
        "no bpf filesystem at /sys/fs/bpf",
        "Cilium mounts it itself, but inside its own mount namespace eBPF state does not "
        "survive an agent restart, so the datapath is interrupted on restarts and upgrades",
        "add 'bpffs /sys/fs/bpf bpf defaults 0 0' to /etc/fstab and run mount /sys/fs/bpf",
    )


# ----------------------------------------------------------------- local ports


@dataclass(frozen=True)
class PortNeed:
    """A port Cilium listens on."""

    port: int
    protocol: str
    user: str
    critical: bool


PORTS: tuple[PortNeed, ...] = (
    PortNeed(4240, "tcp", "cilium-health cluster health checks", True),
    PortNeed(4244, "tcp", "Hubble server", True),
    PortNeed(4245, "tcp", "Hubble Relay", False),
    PortNeed(4250, "tcp", "mutual authentication", False),
    PortNeed(4251, "tcp", "Spire agent health check", False),
    PortNeed(6060, "tcp", "cilium-agent pprof", False),
    PortNeed(6061, "tcp", "cilium-operator pprof", False),
    PortNeed(6062, "tcp", "Hubble Relay pprof", False),
    PortNeed(9878, "tcp", "cilium-envoy health listener", False),
    PortNeed(9879, "tcp", "cilium-agent health status API", True),
    PortNeed(9890, "tcp", "cilium-agent gops", True),
    PortNeed(9891, "tcp", "cilium-operator gops", False),
    PortNeed(9892, "tcp", "clustermesh-apiserver gops", False),
    PortNeed(9893, "tcp", "Hubble Relay gops", False),
    PortNeed(9901, "tcp", "cilium-envoy admin API", False),
    PortNeed(9962, "tcp", "cilium-agent Prometheus metrics", False),
    PortNeed(9963, "tcp", "cilium-operator Prometheus metrics", False),
    PortNeed(9964, "tcp", "cilium-envoy Prometheus metrics", False),
    PortNeed(9965, "tcp", "Hubble metrics", False),
    PortNeed(8472, "udp", "VXLAN overlay (default tunnel)", True),
    PortNeed(6081, "udp", "Geneve overlay", False),
    PortNeed(51871, "udp", "WireGuard encryption tunnel", False),
)
CILIUM_PROCESSES = ("cilium", "hubble", "envoy", "clustermesh")


def parse_proc_net(text: str, protocol: str) -> dict[int, str]:
    """Locally bound ports of /proc/net/{tcp,udp}[6] -> socket inode.

    TCP sockets count when listening (state 0A), UDP sockets when bound (state 07).
    """
    want = "0A" if protocol == "tcp" else "07"
    out = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10 or parts[3] != want:
            continue
        _, _, port_hex = parts[1].rpartition(":")
        try:
            out[int(port_hex, 16)] = parts[9]
        except ValueError:
            continue
    return out


def socket_owners(root: Path) -> dict[str, str]:
    """Socket inode -> process name, from /proc/<pid>/fd (best effort)."""
    owners: dict[str, str] = {}
    proc = root / "proc"
    try:
        pids = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return owners
    for pid in pids:
        try:
            name = (pid / "comm").read_text().strip()
            for fd in (pid / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners.setdefault(target[8:-1], name)
        except OSError:
            continue
    return owners


def check_ports(root: Path) -> list[Check]:
    """Ports Cilium needs that another process already holds."""
    bound: dict[str, dict[int, str]] = {"tcp": {}, "udp": {}}
    for protocol in ("tcp", "udp"):
        for suffix in ("", "6"):
            try:
                text = (root / f"proc/net/{protocol}{suffix}").read_text()
            except OSError:
                continue
            bound[protocol].update(parse_proc_net(text, protocol))
    owners: dict[str, str] | None = None
    out = []
    taken = []
    for need in PORTS:
        inode = bound[need.protocol].get(need.port)
        if inode is None:
            continue
        if owners is None:
            owners = socket_owners(root)
        owner = owners.get(inode, "")
        label = f"{need.port}/{need.protocol}"
        if owner and any(word in owner for word in CILIUM_PROCESSES):
            out.append(
                Check("ports", label, Status.OK, f"held by {owner} ({need.user}), Cilium itself")
            )
            continue
        taken.append(label)
        who = owner or "another process"
        out.append(
            Check(
                "ports",
                label,
                Status.FAIL if need.critical else Status.WARN,
                f"already in use by {who}",
                f"{need.user} cannot listen on {label}",
                f"stop {who} or move it to another port",
            )
        )
    if not taken:
        checked = ", ".join(f"{p.port}/{p.protocol}" for p in PORTS)
        out.insert(0, Check("ports", "Cilium ports", Status.OK, f"all free: {checked}"))
    return out


# ----------------------------------------------------------------- eBPF probes

BPF_MAP_CREATE = 0
BPF_PROG_LOAD = 5
#: bpf(2) system call numbers.
SYSCALL_BPF = {"x86_64": 321, "aarch64": 280, "arm64": 280}

#: (name, prog_type, expected_attach_type, return value, what Cilium uses it for)
PROGRAM_TYPES: tuple[tuple[str, int, int, int, str], ...] = (
    ("sched_cls", 3, 0, 0, "tc/tcx datapath programs on every device (required)"),
    ("xdp", 6, 0, 2, "XDP acceleration and prefiltering"),
    ("cgroup_skb", 8, 0, 1, "host firewall and cgroup traffic accounting"),
    ("cgroup_sock", 9, 0, 1, "socket-level load balancing (post-bind hooks)"),
    ("sock_ops", 13, 0, 1, "sockops acceleration"),
    ("cgroup_sock_addr", 18, 10, 1, "socket-level load balancing (kube-proxy replacement)"),
)
REQUIRED_PROGRAMS = {"sched_cls"}

#: (name, map_type, key size, value size, flags, what Cilium uses it for)
MAP_TYPES: tuple[tuple[str, int, int, int, int, str], ...] = (
    ("hash", 1, 4, 4, 0, "policy, endpoint and tunnel maps (required)"),
    ("percpu_array", 6, 4, 4, 0, "metrics (required)"),
    ("lru_hash", 9, 4, 4, 0, "connection tracking and NAT (required)"),
    ("lpm_trie", 11, 8, 4, 1, "ipcache and CIDR policies (required)"),
)


def _bpf_syscall() -> Callable[[int, Any, int], int] | None:
    number = SYSCALL_BPF.get(platform.machine().lower())
    if number is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def call(cmd: int, attr: Any, size: int) -> int:
        return int(libc.syscall(number, cmd, attr, size))

    return call


def _load_program(call: Callable[[int, Any, int], int], prog_type: int, attach: int,
                  ret: int) -> int:  # fmt: skip
    """Load ``r0 = ret; exit``; returns 0 or the errno."""
    insns = struct.pack("<BBhi", 0xB7, 0x00, 0, ret) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    insn_buf = ctypes.create_string_buffer(insns, len(insns))
    license_buf = ctypes.create_string_buffer(b"GPL")
    attr = ctypes.create_string_buffer(128)
    struct.pack_into(
        "<IIQQIIQII16sII",
        attr,
        0,
        prog_type,
        2,
        ctypes.addressof(insn_buf),
        ctypes.addressof(license_buf),
        0,
        0,
        0,
        0,
        0,
        b"ciliumctl_probe",
        0,
        attach,
    )
    fd = call(BPF_PROG_LOAD, attr, len(attr))
    if fd < 0:
        return ctypes.get_errno() or errno.EINVAL
    os.close(fd)
    return 0


def _create_map(call: Callable[[int, Any, int], int], map_type: int, key: int, value: int,
                flags: int) -> int:  # fmt: skip
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIIII", attr, 0, map_type, key, value, 4, flags)
    fd = call(BPF_MAP_CREATE, attr, len(attr))
    if fd < 0:
        return ctypes.get_errno() or errno.EINVAL
    os.close(fd)
    return 0


def probe_bpf() -> list[Check]:
    """Load one minimal program per program type and one map per map type Cilium uses."""
    call = _bpf_syscall()
    if call is None:
        return [
            Check(
                "eBPF",
                "bpf(2) probes",
                Status.WARN,
                f"no bpf(2) syscall number known for {platform.machine()}",
                "eBPF support could not be probed",
            )
        ]
    out = []
    attempts: Iterable[tuple[str, str, Callable[[], int], bool]] = [
        *(
            (f"program {name}", use, (lambda t=t, a=a, r=r: _load_program(call, t, a, r)),
             name in REQUIRED_PROGRAMS)
            for name, t, a, r, use in PROGRAM_TYPES
        ),
        *(
            (f"map {name}", use, (lambda t=t, k=k, v=v, f=f: _create_map(call, t, k, v, f)),
             True)
            for name, t, k, v, f, use in MAP_TYPES
        ),
    ]  # fmt: skip
    for name, use, attempt, required in attempts:
        code = attempt()
        if code == 0:
            out.append(Check("eBPF", name, Status.OK, f"loads in this kernel ({use})"))
        elif code in (errno.EPERM, errno.EACCES):
            out.append(
                Check(
                    "eBPF",
                    name,
                    Status.WARN,
                    f"not allowed to probe ({errno.errorcode.get(code, code)})",
                    "eBPF support could not be verified",
                    "run as root (or with CAP_BPF and CAP_NET_ADMIN) to probe",
                )
            )
        else:
            out.append(
                Check(
                    "eBPF",
                    name,
                    Status.FAIL if required else Status.WARN,
                    f"rejected by the kernel ({errno.errorcode.get(code, code)}: "
                    f"{os.strerror(code)})",
                    f"unavailable: {use}",
                    "use a kernel with this eBPF type enabled",
                )
            )
    return out


# ----------------------------------------------------------------- LLVM

MIN_LLVM = (18, 1)


def parse_llvm_version(text: str) -> tuple[int, int] | None:
    """``clang version 18.1.8`` / ``LLVM version 16.0.6`` -> (major, minor)."""
    match = re.search(r"(?:clang|LLVM) version (\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _run_version(tool: str) -> str | None:
    path = shutil.which(tool)
    if path is None:
        return None
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout + done.stderr


def check_llvm(native: bool, run: Callable[[str], str | None] = _run_version) -> list[Check]:
    """clang/LLVM >= 18.1 with the BPF target, needed only when the agent runs natively."""
    bad = Status.FAIL if native else Status.WARN
    context = "" if native else " (only needed when cilium-agent runs natively, not in its image)"
    clang = run("clang")
    llc = run("llc")
    out = []
    version = parse_llvm_version(clang or "")
    if clang is None:
        out.append(Check("LLVM", "clang", bad, "clang not found" + context,
                         "the agent cannot compile its eBPF programs",
                         "install clang/LLVM >= 18.1"))  # fmt: skip
    elif version is None or version < MIN_LLVM:
        shown = f"{version[0]}.{version[1]}" if version else "unknown"
        out.append(Check("LLVM", "clang", bad, f"clang {shown} is older than 18.1" + context,
                         "the agent cannot compile its eBPF programs",
                         "install clang/LLVM >= 18.1"))  # fmt: skip
    else:
        out.append(Check("LLVM", "clang", Status.OK, f"clang {version[0]}.{version[1]}"))
    if llc is None:
        out.append(Check("LLVM", "llc BPF target", bad, "llc not found" + context,
                         "no LLVM backend to emit eBPF", "install llvm >= 18.1"))  # fmt: skip
    elif not re.search(r"^\s*bpf\s", llc, re.MULTILINE):
        out.append(Check("LLVM", "llc BPF target", bad, "LLVM is built without the BPF target",
                         "no LLVM backend to emit eBPF",
                         "install an LLVM built with the BPF target"))  # fmt: skip
    else:
        llc_version = parse_llvm_version(llc)
        status = Status.OK if llc_version and llc_version >= MIN_LLVM else bad
        shown = f"{llc_version[0]}.{llc_version[1]}" if llc_version else "unknown"
        out.append(Check("LLVM", "llc BPF target", status,
                         f"LLVM {shown} with the BPF target"
                         + ("" if status is Status.OK else " (older than 18.1)" + context),
                         "" if status is Status.OK else "the agent cannot emit eBPF",
                         "" if status is Status.OK else "install llvm >= 18.1"))  # fmt: skip
    return out


# ----------------------------------------------------------------- everything


def run_checks(root: Path = Path("/"), native: bool = False, probe: bool = True) -> SystemReport:
    """Every check against the machine under ``root`` (``/`` for this machine)."""
    report = SystemReport()
    uname = os.uname()
    report.checks.append(check_architecture(uname.machine))
    try:
        os_release = parse_os_release((root / "etc/os-release").read_text())
    except OSError:
        os_release = {}
    report.checks.append(check_kernel(uname.release, os_release))
    config, source = read_kernel_config(root, uname.release)
    report.checks.extend(check_kernel_config(config, source))
    try:
        mounts = (root / "proc/mounts").read_text()
    except OSError:
        mounts = ""
    report.checks.append(check_bpffs(mounts))
    if probe:
        report.checks.extend(probe_bpf())
    report.checks.extend(check_llvm(native))
    report.checks.extend(check_ports(root))
    return report
