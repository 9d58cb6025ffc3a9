"""Feature detection, as cilium-cli does it: from the agents' ``cilium-config`` ConfigMap,
the agent pods themselves, and the nodes. Tests whose requirements are missing are skipped
with a reason naming the feature and where it was looked for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ciliumctl.connectivity import catalog


@dataclass(frozen=True)
class Feature:
    """One detected feature: on or off, and why (for skip reasons and ``--debug``)."""

    enabled: bool
    detail: str


@dataclass
class Features:
    """The detected features by name."""

    values: dict[str, Feature] = field(default_factory=dict)

    def enabled(self, name: str) -> bool:
        """Is feature ``name`` on?"""
        f = self.values.get(name)
        return bool(f and f.enabled)

    def missing(self, required: tuple[str, ...]) -> str | None:
        """The skip reason for a test needing ``required``, or None when all are on."""
        for name in required:
            f = self.values.get(name)
            if not f or not f.enabled:
                detail = f.detail if f else "not detected"
                return f"requires feature {name}: {detail}"
        return None


def _flag(config: Mapping[str, str], key: str, default: bool) -> bool:
    value = config.get(key)
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "enabled", "strict")


def detect(
    *,
    config: Mapping[str, str] | None,
    agents_ready: int,
    agents_total: int,
    cilium_namespace: str,
    nodes: list[dict[str, Any]],
    pod_ip_families: set[str],
) -> Features:
    """Compute the features from what the cluster shows.

    ``config`` is ``cilium-config``'s data (None when absent); ``agents_*`` count the pods
    matching the agent selector; ``pod_ip_families`` are the families the test pods got.
    """
    f: dict[str, Feature] = {}
    where = f"in namespace {cilium_namespace}"
    if agents_total == 0:
        f[catalog.AGENTS] = Feature(False, f"no Cilium agent pods (k8s-app=cilium) {where}")
    elif agents_ready < agents_total:
        f[catalog.AGENTS] = Feature(False, f"{agents_ready}/{agents_total} agent pods ready")
    else:
        f[catalog.AGENTS] = Feature(True, f"{agents_total} agent pods ready")
    cfg = dict(config or {})
    if not f[catalog.AGENTS].enabled:
        f[catalog.POLICY] = Feature(
            False,
            f"{f[catalog.AGENTS].detail}: the cluster's CNI does not enforce network policy",
        )
    else:
        mode = cfg.get("enable-policy", "default")
        if mode == "never":
            f[catalog.POLICY] = Feature(False, "cilium-config enable-policy=never")
        else:
            f[catalog.POLICY] = Feature(True, f"cilium-config enable-policy={mode}")
    if config is None:
        missing_cfg = f"no ConfigMap cilium-config {where}"
        f[catalog.ICMP_POLICY] = Feature(False, missing_cfg)
        f[catalog.HEALTH] = Feature(False, missing_cfg)
        f[catalog.HOST_PORT] = Feature(False, missing_cfg)
        f["l7-proxy"] = Feature(False, missing_cfg)
    else:
        icmp = _flag(cfg, "enable-icmp-rules", True)
        f[catalog.ICMP_POLICY] = Feature(icmp, f"cilium-config enable-icmp-rules={icmp}".lower())
        health = _flag(cfg, "enable-health-checking", True)
        f[catalog.HEALTH] = Feature(
            health, f"cilium-config enable-health-checking={health}".lower()
        )
        f[catalog.HOST_PORT] = host_port(cfg)
        l7 = _flag(cfg, "enable-l7-proxy", True)
        f["l7-proxy"] = Feature(l7, f"cilium-config enable-l7-proxy={l7}".lower())
    for fam, key in (("ipv4", "enable-ipv4"), ("ipv6", "enable-ipv6")):
        if fam in pod_ip_families:
            f[fam] = Feature(True, f"test pods have {fam} addresses")
        elif config is not None and _flag(cfg, key, fam == "ipv4"):
            f[fam] = Feature(False, f"cilium-config {key}=true but test pods have no {fam} address")
        else:
            f[fam] = Feature(False, f"test pods have no {fam} address")
    no_cilium = [
        n["metadata"]["name"]
        for n in nodes
        if (n["metadata"].get("labels") or {}).get("cilium.io/no-schedule") == "true"
    ]
    f[catalog.NODE_WITHOUT_CILIUM] = Feature(
        bool(no_cilium),
        f"nodes without Cilium: {', '.join(no_cilium)}"
        if no_cilium
        else "no node labelled cilium.io/no-schedule=true",
    )
    f[catalog.MULTI_NODE] = Feature(len(nodes) > 1, f"{len(nodes)} schedulable nodes")
    return Features(f)


def host_port(cfg: Mapping[str, str] | None) -> Feature:
    """hostPort support from cilium-config (kube-proxy replacement turns it on by default):
    known before the test workloads are deployed, which get hostPort 4000 only with it."""
    if cfg is None:
        return Feature(False, "no ConfigMap cilium-config")
    kpr = cfg.get("kube-proxy-replacement", "false")
    enabled = _flag(cfg, "enable-host-port", kpr in ("true", "strict"))
    return Feature(
        enabled, f"cilium-config enable-host-port={enabled} kube-proxy-replacement={kpr}"
    )
