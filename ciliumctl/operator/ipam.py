"""Cluster-pool IPAM: pod CIDRs from ``clusterPoolIPv4PodCIDRList`` into CiliumNodes.

Each Node gets a CiliumNode (owned by the Node) and, once, one ``/mask-size`` subnet of the
pool in ``spec.ipam.podCIDRs``. Subnets already recorded in CiliumNodes are never handed out
twice, including after an operator restart (the CiliumNodes are the state).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from ciliumctl.errors import CiliumctlError
from ciliumctl.k8s.errors import ConflictError

log = logging.getLogger("cilium-operator.ipam")
CILIUM_API = "cilium.io/v2"


class PoolExhaustedError(CiliumctlError):
    """The cluster pool has no free subnet of the configured size."""


class ClusterPool:
    """Subnets of the cluster pool and which are taken."""

    def __init__(self, cidrs: Iterable[str], mask_size: int) -> None:
        self.networks = [ipaddress.ip_network(c, strict=False) for c in cidrs if c]
        self.mask_size = mask_size
        for net in self.networks:
            if net.prefixlen > mask_size:
                raise CiliumctlError(
                    f"cluster-pool-ipv4-cidr {net} is smaller than the mask size /{mask_size}",
                    "use a larger CIDR or a larger cluster-pool-ipv4-mask-size",
                )
        self.used: set[str] = set()

    def mark(self, cidrs: Iterable[str]) -> None:
        """Record subnets already allocated (read from CiliumNodes)."""
        self.used |= {str(ipaddress.ip_network(c, strict=False)) for c in cidrs}

    def allocate(self) -> str:
        """The first free subnet."""
        for net in self.networks:
            for subnet in net.subnets(new_prefix=self.mask_size):
                text = str(subnet)
                if text not in self.used:
                    self.used.add(text)
                    return text
        raise PoolExhaustedError(
            f"the cluster pool {', '.join(map(str, self.networks))} has no free "
            f"/{self.mask_size} left for another node",
            "add CIDRs to ipam.operator.clusterPoolIPv4PodCIDRList",
        )


def _pod_cidrs(cn: dict[str, Any]) -> list[str]:
    return list(((cn.get("spec") or {}).get("ipam") or {}).get("podCIDRs") or [])


def reconcile(client: Any, pool: ClusterPool) -> dict[str, str]:
    """Give every Node a CiliumNode with a pod CIDR; returns node -> CIDR newly allocated."""
    nodes = {n["metadata"]["name"]: n for n in client.list("v1", "Node")}
    cns = {c["metadata"]["name"]: c for c in client.list(CILIUM_API, "CiliumNode")}
    for cn in cns.values():
        pool.mark(_pod_cidrs(cn))
    allocated: dict[str, str] = {}
    for name in sorted(nodes):
        cn = cns.get(name)
        if cn is not None and _pod_cidrs(cn):
            continue
        cidr = pool.allocate()
        node = nodes[name]
        if cn is None:
            obj = {
                "apiVersion": CILIUM_API,
                "kind": "CiliumNode",
                "metadata": {
                    "name": name,
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "Node",
                            "name": name,
                            "uid": node["metadata"]["uid"],
                        }
                    ],
                },
                "spec": {"ipam": {"podCIDRs": [cidr]}},
            }
            try:
                client.create(obj)
            except ConflictError:
                pool.used.discard(cidr)
                continue  # the agent created it meanwhile: next round fills it
        else:
            # update with the read resourceVersion (the chart grants update, not patch)
            spec = dict(cn.get("spec") or {})
            spec["ipam"] = {**(spec.get("ipam") or {}), "podCIDRs": [cidr]}
            client.update({**cn, "spec": spec})
        log.info("allocated %s to node %s", cidr, name)
        allocated[name] = cidr
    return allocated
