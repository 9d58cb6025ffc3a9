"""Cilium's source-prefixed labels: an endpoint's, a reserved identity's, a CIDR's.

A label set maps ``source:key`` to a value (``k8s:app`` -> ``web``, ``reserved:host`` -> ``""``,
``cidr:10.0.0.0/8`` -> ``""``). Selectors match them through :func:`expand`, which adds the
``any:key`` form so that a selector key without a source matches a label of any source.
Which pod labels are identity-relevant is decided by :mod:`ciliumctl.validators.labels`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from ciliumctl.datapath.model import ReservedIdentity
from ciliumctl.validators import labels as vlabels

LabelSet = Mapping[str, str]

K8S = "k8s"
RESERVED = "reserved"
CIDR = "cidr"
ANY = "any"

#: The labels of each reserved identity, as Cilium gives them. The world identities also carry
#: the all-covering CIDR labels, so that ``fromCIDR: 0.0.0.0/0`` selects traffic from outside.
RESERVED_LABELS: dict[int, dict[str, str]] = {
    ReservedIdentity.HOST: {"reserved:host": ""},
    ReservedIdentity.WORLD: {"reserved:world": "", "cidr:0.0.0.0/0": "", "cidr:::/0": ""},
    ReservedIdentity.UNMANAGED: {"reserved:unmanaged": ""},
    ReservedIdentity.HEALTH: {"reserved:health": ""},
    ReservedIdentity.INIT: {"reserved:init": ""},
    ReservedIdentity.REMOTE_NODE: {"reserved:remote-node": ""},
    ReservedIdentity.KUBE_APISERVER: {"reserved:kube-apiserver": ""},
    ReservedIdentity.INGRESS: {"reserved:ingress": ""},
    ReservedIdentity.WORLD_IPV4: {
        "reserved:world": "",
        "reserved:world-ipv4": "",
        "cidr:0.0.0.0/0": "",
    },
    ReservedIdentity.WORLD_IPV6: {"reserved:world": "", "reserved:world-ipv6": "", "cidr:::/0": ""},
}

#: Reserved identity names as ``cilium-dbg identity list`` shows them.
RESERVED_NAMES: dict[int, str] = {
    int(ident): "reserved:" + ident.name.lower().replace("_", "-")
    for ident in ReservedIdentity
    if ident is not ReservedIdentity.UNKNOWN
}


def split(label: str) -> tuple[str, str]:
    """``k8s:app`` -> (``k8s``, ``app``); a key without a known source gets ``any``."""
    from ciliumctl.validators.selectors import split_source

    source, bare = split_source(label)
    return (source or ANY), bare


def expand(labels: LabelSet) -> dict[str, str]:
    """``labels`` plus the ``any:key`` form of each key, for selector matching."""
    out = dict(labels)
    for key, value in labels.items():
        _, bare = split(key)
        out.setdefault(f"{ANY}:{bare}", value)
    return out


def endpoint_labels(
    pod: dict[str, Any], namespace_labels: Mapping[str, str], cluster: str
) -> dict[str, str]:
    """Every k8s-source label of a pod's endpoint (pod, namespace, service account, cluster)."""
    raw = vlabels.pod_labels(pod, dict(namespace_labels), cluster)
    return {f"{K8S}:{k}": v for k, v in raw.items()}


def security_labels(labels: LabelSet, label_filter: vlabels.LabelFilter) -> dict[str, str]:
    """The identity-relevant subset of ``labels`` under the agent's ``labels`` option."""
    out: dict[str, str] = {}
    for key, value in labels.items():
        source, bare = split(key)
        if label_filter.relevant(bare, source):
            out[key] = value
    return out


def cidr_labels(prefix: str) -> dict[str, str]:
    """A CIDR identity's labels: ``cidr:`` of the prefix and of every prefix containing it."""
    net = ipaddress.ip_network(prefix, strict=False)
    out = {f"{CIDR}:{net.supernet(new_prefix=length)}": "" for length in range(net.prefixlen + 1)}
    out["reserved:world"] = ""
    out["reserved:world-ipv4" if net.version == 4 else "reserved:world-ipv6"] = ""
    return out


def format_labels(labels: LabelSet) -> list[str]:
    """Sorted ``source:key=value`` strings (``=value`` left out when empty), as upstream prints."""
    return sorted(f"{k}={v}" if v else k for k, v in labels.items())
