"""IPv4 masquerading in iptables mode (``enable-ipv4-masquerade=true``, BPF masquerade off).

As upstream's iptables mode does, traffic from this node's pod CIDRs that leaves through a
device that is not Cilium's (``! -o cilium_+``, so the overlay is left alone) to a
destination outside the non-masquerade range is source-NATed to the node's address. The
range is ``ipv4-native-routing-cidr`` when set, else the node's own pod CIDRs (tunnel
mode, where other nodes' pods are reached through ``cilium_vxlan``). The rules live in
the chain ``CILIUM_POST_nat`` of the nat table, jumped to from POSTROUTING, and are
rewritten as a whole when the pod CIDRs change, so a restarted agent converges instead of
adding duplicates. The agent runs in the node's network namespace (hostNetwork), so these
are the node's rules.

With kube-proxy replacement the chain also masquerades NodePort traffic the node sends on to
a backend on another node (the host program marks it ``MARK_MAGIC_NODEPORT_SNAT``), so the
reply returns through this node for the reverse NAT (upstream's SNAT mode); this rule is
there whether or not pod traffic is masqueraded.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable, Sequence

from ciliumctl.agent.config import AgentConfig
from ciliumctl.errors import CiliumctlError, ConfigError

log = logging.getLogger("cilium-agent.masquerade")

CHAIN = "CILIUM_POST_nat"
COMMENT = "cilium masquerade non-cluster"
KEEP_COMMENT = "cilium exclude non-masquerade range"
NODEPORT_COMMENT = "cilium nodeport to a remote backend"
#: bpf/lib/common.h MARK_MAGIC_NODEPORT_SNAT under MARK_MAGIC_MASK
NODEPORT_MARK = "0xa00/0xf00"

#: runs one iptables argv (without the binary) and returns (exit code, stderr)
Runner = Callable[[Sequence[str]], tuple[int, str]]


def wanted(config: AgentConfig) -> bool:
    """Whether this agent masquerades in iptables (BPF masquerade is refused by config
    validation, so this is the only kind)."""
    return config.flag("enable-ipv4-masquerade")


def check_config(config: AgentConfig) -> None:
    """Native routing needs the range that is not masqueraded, as upstream requires."""
    if (
        wanted(config)
        and config.get("routing-mode") == "native"
        and not config.get("ipv4-native-routing-cidr")
    ):
        raise ConfigError(
            "enable-ipv4-masquerade=true with routing-mode=native needs "
            "ipv4-native-routing-cidr (the range reached without masquerading)",
            "set the Helm value ipv4NativeRoutingCIDR, or enableIPv4Masquerade=false",
        )


def rules(pod_cidrs: Sequence[str], keep: Sequence[str], nodeport: bool = False) -> list[list[str]]:
    """The chain's rules: NodePort traffic to a remote backend is masqueraded first (its
    backend may sit in a kept range), destinations in a kept range return unchanged, then
    traffic from each pod CIDR leaving through a non-Cilium device is masqueraded."""
    out = (
        [
            [
                "-A",
                CHAIN,
                "-m",
                "mark",
                "--mark",
                NODEPORT_MARK,
                "-m",
                "comment",
                "--comment",
                NODEPORT_COMMENT,
                "-j",
                "MASQUERADE",
            ]
        ]
        if nodeport
        else []
    )
    out += [["-A", CHAIN, "-d", dst, "-m", "comment", "--comment", KEEP_COMMENT, "-j", "RETURN"]
            for dst in keep]  # fmt: skip
    for src in pod_cidrs:
        out.append(
            ["-A", CHAIN, "-s", src, "!", "-o", "cilium_+",
             "-m", "comment", "--comment", COMMENT, "-j", "MASQUERADE"]
        )  # fmt: skip
    return out


def _iptables(args: Sequence[str]) -> tuple[int, str]:
    binary = shutil.which("iptables")
    if binary is None:
        raise CiliumctlError(
            "enable-ipv4-masquerade=true needs iptables and it is not installed",
            "install iptables in the agent image, or set enableIPv4Masquerade=false",
        )
    done = subprocess.run(
        [binary, "-w", "5", "-t", "nat", *args], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stderr.strip()


def needed(config: AgentConfig) -> bool:
    """Whether the agent keeps ``CILIUM_POST_nat`` at all: to masquerade pod traffic, or for
    NodePort backends on other nodes (kube-proxy replacement)."""
    return wanted(config) or config.flag("kube-proxy-replacement")


class Masquerader:
    """Keeps ``CILIUM_POST_nat`` equal to :func:`rules` for the current pod CIDRs."""

    def __init__(self, config: AgentConfig, run: Runner = _iptables) -> None:
        self.masquerade = wanted(config)
        self.nodeport = config.flag("kube-proxy-replacement")
        self.native_cidr = config.get("ipv4-native-routing-cidr")
        self.run = run
        self.applied: list[list[str]] = []
        self.error = ""

    def _must(self, args: Sequence[str]) -> None:
        code, err = self.run(args)
        if code != 0:
            raise CiliumctlError(f"iptables -t nat {' '.join(args)}: {err or f'exit {code}'}")

    def sync(self, pod_cidrs: Sequence[str]) -> None:
        """Rewrite the chain for ``pod_cidrs``; a failure is kept for ``status`` (and
        logged), so the agent reports masquerading as failing instead of enabled."""
        cidrs = [c for c in pod_cidrs if c and ":" not in c] if self.masquerade else []
        keep = ([self.native_cidr] if self.native_cidr else cidrs) if self.masquerade else []
        wanted_rules = rules(cidrs, keep, self.nodeport)
        try:
            if self.run(["-n", "-L", CHAIN])[0] != 0:
                self._must(["-N", CHAIN])
            if self.run(["-C", "POSTROUTING", "-j", CHAIN])[0] != 0:
                self._must(["-I", "POSTROUTING", "1", "-j", CHAIN])
            self._must(["-F", CHAIN])
            for rule in wanted_rules:
                self._must(rule)
        except CiliumctlError as exc:
            self.error = str(exc)
            log.error("masquerading not in place: %s", exc)
            return
        self.applied, self.error = wanted_rules, ""
        log.info(
            "masquerading %s%s (iptables %s)",
            ", ".join(cidrs) or "no pod CIDR",
            " and NodePort traffic to remote backends" if self.nodeport else "",
            CHAIN,
        )

    def status(self) -> dict[str, object]:
        """Upstream's ``masquerading`` status section, with what is really in place."""
        if not self.masquerade:
            return {"enabled": False, **({"msg": self.error} if self.error else {})}
        out: dict[str, object] = {"enabled": True, "mode": "IPTables", "enabledProtocols": {
            "ipv4": bool(self.applied)}}  # fmt: skip
        if self.error:
            out["msg"] = self.error
        elif not self.applied:
            out["msg"] = "waiting for this node's pod CIDRs"
        return out
