"""Pod address allocation from this node's pod CIDRs.

In ``cluster-pool`` mode the CIDRs are the ``spec.ipam.podCIDRs`` the operator wrote into this
node's CiliumNode; in ``kubernetes`` mode they are ``Node.spec.podCIDRs``. The first usable
address of the first CIDR is the router (``cilium_host``) address, never handed to a pod.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from ciliumctl.errors import CiliumctlError


class IPAMError(CiliumctlError):
    """No address can be handed out (no pool yet, or the pool is exhausted)."""

    def __init__(self, message: str, hint: str | None = None, *, code: str) -> None:
        super().__init__(message, hint)
        self.code = code  # "no-pool" | "exhausted" | "in-use" | "not-in-pool"


@dataclass(frozen=True)
class Allocation:
    """An address for an owner, with what CNI needs to configure the pod."""

    ip: str
    cidr: str
    gateway: str
    owner: str


class IPAM:
    """IPv4 allocation from a set of CIDRs; thread-safe."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._lock = threading.Lock()
        self._cidrs: list[ipaddress.IPv4Network] = []
        self._owners: dict[str, str] = {}  # ip -> owner

    def set_cidrs(self, cidrs: Iterable[str]) -> None:
        """The pool (from the CiliumNode or the Node); addresses in use stay allocated."""
        nets = []
        for cidr in cidrs:
            net = ipaddress.ip_network(cidr, strict=False)
            if isinstance(net, ipaddress.IPv4Network):
                nets.append(net)
        with self._lock:
            self._cidrs = nets

    @property
    def cidrs(self) -> list[str]:
        """The pool's CIDRs."""
        return [str(n) for n in self._cidrs]

    @property
    def router(self) -> str | None:
        """The node's router address (first usable of the first CIDR)."""
        return str(next(self._cidrs[0].hosts())) if self._cidrs else None

    def _capacity(self) -> int:
        return sum(max(n.num_addresses - 2, 0) for n in self._cidrs) - (1 if self._cidrs else 0)

    def allocate(self, owner: str, ip: str | None = None) -> Allocation:
        """Give ``owner`` an address (``ip`` when asked for a specific one)."""
        with self._lock:
            if not self._cidrs:
                raise IPAMError(
                    "this node has no pod CIDR yet",
                    "wait for cilium-operator to allocate one to the CiliumNode"
                    if self.mode == "cluster-pool"
                    else "set Node.spec.podCIDR (kube-controller-manager --allocate-node-cidrs)",
                    code="no-pool",
                )
            for existing, who in self._owners.items():
                if who == owner and ip in (None, existing):
                    return self._allocation(existing, owner)
            if ip is not None:
                if ip in self._owners:
                    raise IPAMError(f"{ip} is already in use", "release it first", code="in-use")
                if not any(ipaddress.ip_address(ip) in n for n in self._cidrs):
                    raise IPAMError(
                        f"{ip} is not in this node's pool {', '.join(self.cidrs)}",
                        "ask for an address of the pool",
                        code="not-in-pool",
                    )
                self._owners[ip] = owner
                return self._allocation(ip, owner)
            router = self.router
            for net in self._cidrs:
                for host in net.hosts():
                    text = str(host)
                    if text != router and text not in self._owners:
                        self._owners[text] = owner
                        return self._allocation(text, owner)
        raise IPAMError(
            f"the pod CIDR pool {', '.join(self.cidrs)} is exhausted ({len(self._owners)} in use)",
            "delete unused pods, or give the node more pod CIDRs "
            "(ipam.operator.clusterPoolIPv4PodCIDRList / clusterPoolIPv4MaskSize)",
            code="exhausted",
        )

    def _allocation(self, ip: str, owner: str) -> Allocation:
        addr = ipaddress.ip_address(ip)
        net = next(n for n in self._cidrs if addr in n)
        return Allocation(ip, str(net), self.router or "", owner)

    def release(self, ip: str) -> bool:
        """Free an address (idempotent); True when it was in use."""
        with self._lock:
            return self._owners.pop(ip, None) is not None

    def release_owner(self, owner: str) -> list[str]:
        """Free every address of ``owner``."""
        with self._lock:
            ips = [ip for ip, who in self._owners.items() if who == owner]
            for ip in ips:
                del self._owners[ip]
            return ips

    def status(self) -> dict[str, object]:
        """Upstream's IPAM status: used/total and the allocations."""
        with self._lock:
            used = len(self._owners)
            return {
                "ipv4": [f"{used}/{self._capacity()} allocated from {', '.join(self.cidrs)}"]
                if self._cidrs
                else [],
                "allocations": dict(sorted(self._owners.items())),
                "mode": self.mode,
            }
