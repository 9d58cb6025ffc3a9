"""The network policies the tests apply, written for this project (not upstream's files).

Each policy is a function of the test namespace returning the object to apply. Selectors use
the labels of the test workloads (``kind``, ``name``, ``other``) and Cilium's
``io.cilium.k8s.policy.serviceaccount`` label. ``port_range`` variants cover 8080-8081.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
CNP = ("cilium.io/v2", "CiliumNetworkPolicy")
KNP = ("networking.k8s.io/v1", "NetworkPolicy")
SA_LABEL = "io.cilium.k8s.policy.serviceaccount"
ECHO_PORT = 8080


def _cnp(name: str, selector: Obj, **spec: Any) -> Callable[[str], Obj]:
    def build(namespace: str) -> Obj:
        return {
            "apiVersion": CNP[0],
            "kind": CNP[1],
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"endpointSelector": selector, **spec},
        }

    return build


def _knp(name: str, selector: Obj, **spec: Any) -> Callable[[str], Obj]:
    def build(namespace: str) -> Obj:
        return {
            "apiVersion": KNP[0],
            "kind": KNP[1],
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"podSelector": selector, **spec},
        }

    return build


def _labels(**labels: str) -> Obj:
    return {"matchLabels": dict(labels)}


def _ports(port_range: bool, named: str | None = None) -> list[Obj]:
    if named:
        return [{"ports": [{"port": named, "protocol": "TCP"}]}]
    port: Obj = {"port": str(ECHO_PORT), "protocol": "TCP"}
    if port_range:
        port["endPort"] = ECHO_PORT + 1
    return [{"ports": [port]}]


def _knp_ports(port_range: bool) -> list[Obj]:
    port: Obj = {"port": ECHO_PORT, "protocol": "TCP"}
    if port_range:
        port["endPort"] = ECHO_PORT + 1
    return [port]


#: Egress to the cluster DNS, so that policies restricting egress still let names resolve.
_DNS_EGRESS: Obj = {
    "toEndpoints": [
        {
            "matchLabels": {
                "k8s:io.kubernetes.pod.namespace": "kube-system",
                "k8s:k8s-app": "kube-dns",
            }
        }
    ],
    "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]}],
}
_KNP_DNS_EGRESS: Obj = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}


def _icmp_echo() -> list[Obj]:
    return [{"fields": [{"type": 8, "family": "IPv4"}, {"type": 128, "family": "IPv6"}]}]


def _external(external_cidr: str, other_ip: str) -> Obj:
    return {"cidr": external_cidr, "except": [f"{other_ip}/32"]}


def build_policies(params: PolicyParams) -> dict[str, Callable[[str], Obj]]:
    """Every policy by id; ``params`` carries the external CIDR and IPs of the run."""
    p: dict[str, Callable[[str], Obj]] = {}
    everyone: Obj = {}
    p["allow-all-except-world"] = _cnp(
        "allow-all-except-world",
        everyone,
        ingress=[{"fromEntities": ["cluster"]}],
        egress=[{"toEntities": ["cluster"]}],
    )
    p["allow-all-ingress"] = _cnp(
        "allow-all-ingress", everyone, ingress=[{"fromEntities": ["all"]}]
    )
    p["allow-all-egress"] = _cnp("allow-all-egress", everyone, egress=[{"toEntities": ["all"]}])
    p["client-ingress-from-client2"] = _cnp(
        "client-ingress-from-client2",
        _labels(kind="client"),
        ingress=[{"fromEndpoints": [_labels(other="client")]}],
    )
    p["client-ingress-from-client2-knp"] = _knp(
        "client-ingress-from-client2",
        _labels(kind="client"),
        policyTypes=["Ingress"],
        ingress=[{"from": [{"podSelector": _labels(other="client")}]}],
    )
    p["deny-all-ingress"] = _cnp("deny-all-ingress", everyone, ingress=[{}])
    p["deny-all-ingress-knp"] = _knp("deny-all-ingress", everyone, policyTypes=["Ingress"])
    p["deny-all-egress"] = _cnp("deny-all-egress", everyone, egress=[{}])
    p["deny-all-egress-knp"] = _knp("deny-all-egress", everyone, policyTypes=["Egress"])
    p["deny-all-entities"] = _cnp(
        "deny-all-entities", everyone, egressDeny=[{"toEntities": ["all"]}]
    )
    p["allow-cluster-entity"] = _cnp(
        "allow-cluster-entity", _labels(kind="client"), egress=[{"toEntities": ["cluster"]}]
    )
    p["allow-host-entity-egress"] = _cnp(
        "allow-host-entity-egress",
        _labels(kind="client"),
        egress=[{"toEntities": ["host", "remote-node"]}],
    )
    p["allow-host-entity-ingress"] = _cnp(
        "allow-host-entity-ingress",
        _labels(kind="echo"),
        ingress=[{"fromEntities": ["host", "remote-node"]}],
    )
    p["echo-ingress-from-other-client"] = _cnp(
        "echo-ingress-from-other-client",
        _labels(kind="echo"),
        ingress=[{"fromEndpoints": [_labels(other="client")], "toPorts": _ports(False)}],
    )
    p["echo-ingress-from-other-client-knp"] = _knp(
        "echo-ingress-from-other-client",
        _labels(kind="echo"),
        policyTypes=["Ingress"],
        ingress=[{"from": [{"podSelector": _labels(other="client")}], "ports": _knp_ports(False)}],
    )
    p["client-ingress-icmp"] = _cnp(
        "client-ingress-icmp",
        _labels(kind="client"),
        ingress=[{"fromEndpoints": [_labels(other="client")], "icmps": _icmp_echo()}],
    )
    p["client-ingress-icmp-deny"] = _cnp(
        "client-ingress-icmp-deny",
        _labels(kind="client"),
        ingressDeny=[{"fromEndpoints": [_labels(other="client")], "icmps": _icmp_echo()}],
    )
    for suffix, port_range in (("", False), ("-port-range", True)):
        p["client-egress-to-echo" + suffix] = _cnp(
            "client-egress-to-echo" + suffix,
            _labels(kind="client"),
            egress=[
                {"toEndpoints": [_labels(kind="echo")], "toPorts": _ports(port_range)},
                _DNS_EGRESS,
            ],
        )
        p["client-egress-to-echo-knp" + suffix] = _knp(
            "client-egress-to-echo" + suffix,
            _labels(kind="client"),
            policyTypes=["Egress"],
            egress=[
                {"to": [{"podSelector": _labels(kind="echo")}], "ports": _knp_ports(port_range)},
                _KNP_DNS_EGRESS,
            ],
        )
        expression = {"matchExpressions": [{"key": "kind", "operator": "In", "values": ["echo"]}]}
        p["client-egress-to-echo-expression" + suffix] = _cnp(
            "client-egress-to-echo-expression" + suffix,
            {"matchExpressions": [{"key": "kind", "operator": "In", "values": ["client"]}]},
            egress=[{"toEndpoints": [expression], "toPorts": _ports(port_range)}, _DNS_EGRESS],
        )
        p["client-egress-to-echo-expression-knp" + suffix] = _knp(
            "client-egress-to-echo-expression" + suffix,
            {"matchExpressions": [{"key": "kind", "operator": "In", "values": ["client"]}]},
            policyTypes=["Egress"],
            egress=[
                {"to": [{"podSelector": expression}], "ports": _knp_ports(port_range)},
                _KNP_DNS_EGRESS,
            ],
        )
        p["client-sa-egress-to-echo" + suffix] = _cnp(
            "client-sa-egress-to-echo" + suffix,
            _labels(**{SA_LABEL: "client"}),
            egress=[{"toEndpoints": [_labels(kind="echo")], "toPorts": _ports(port_range)}],
        )
        p["client-egress-to-echo-sa" + suffix] = _cnp(
            "client-egress-to-echo-sa" + suffix,
            _labels(kind="client"),
            egress=[
                {
                    "toEndpoints": [_labels(**{SA_LABEL: "echo-same-node"})],
                    "toPorts": _ports(port_range),
                }
            ],
        )
        p["client-egress-to-world-80" + suffix] = _cnp(
            "client-egress-to-world-80" + suffix,
            _labels(kind="client"),
            egress=[
                {"toEntities": ["world"], "toPorts": _ports_world(port_range)},
                _DNS_EGRESS,
            ],
        )
        p["client-egress-to-echo-deny" + suffix] = _cnp(
            "client-egress-to-echo-deny" + suffix,
            _labels(kind="client"),
            egressDeny=[{"toEndpoints": [_labels(kind="echo")], "toPorts": _ports(port_range)}],
        )
        p["client-egress-to-echo-expression-deny" + suffix] = _cnp(
            "client-egress-to-echo-expression-deny" + suffix,
            _labels(name="client"),
            egressDeny=[{"toEndpoints": [expression], "toPorts": _ports(port_range)}],
        )
        p["client-sa-egress-to-echo-deny" + suffix] = _cnp(
            "client-sa-egress-to-echo-deny" + suffix,
            _labels(**{SA_LABEL: "client"}),
            egressDeny=[{"toEndpoints": [_labels(kind="echo")], "toPorts": _ports(port_range)}],
        )
        p["client-egress-to-echo-sa-deny" + suffix] = _cnp(
            "client-egress-to-echo-sa-deny" + suffix,
            _labels(kind="client"),
            egressDeny=[
                {
                    "toEndpoints": [_labels(**{SA_LABEL: "echo-same-node"})],
                    "toPorts": _ports(port_range),
                }
            ],
        )
    p["echo-ingress-from-other-client-deny"] = _cnp(
        "echo-ingress-from-other-client-deny",
        _labels(kind="echo"),
        ingressDeny=[{"fromEndpoints": [_labels(other="client")]}],
    )
    p["echo-ingress-named-port-deny"] = _cnp(
        "echo-ingress-named-port-deny",
        _labels(kind="echo"),
        ingressDeny=[
            {"fromEndpoints": [_labels(name="client")], "toPorts": _ports(False, "http-8080")}
        ],
    )
    p["client-egress-to-cidr-external"] = _cnp(
        "client-egress-to-cidr-external",
        _labels(kind="client"),
        egress=[{"toCIDRSet": [_external(params.external_cidr, params.external_other_ip)]}],
    )
    p["client-egress-to-cidr-external-knp"] = _knp(
        "client-egress-to-cidr-external",
        _labels(kind="client"),
        policyTypes=["Egress"],
        egress=[{"to": [{"ipBlock": _external(params.external_cidr, params.external_other_ip)}]}],
    )
    p["client-egress-to-cidr-deny"] = _cnp(
        "client-egress-to-cidr-deny",
        _labels(kind="client"),
        egressDeny=[{"toCIDRSet": [{"cidr": f"{params.external_other_ip}/32"}]}],
    )
    p["echo-ingress-from-cidr"] = _cnp(
        "echo-ingress-from-cidr",
        _labels(kind="echo"),
        ingress=[{"fromCIDRSet": [{"cidr": c} for c in params.node_cidrs or ("0.0.0.0/0",)]}],
    )
    return p


def _ports_world(port_range: bool) -> list[Obj]:
    port: Obj = {"port": "80", "protocol": "TCP"}
    if port_range:
        port["endPort"] = 81
    return [{"ports": [port]}]


class PolicyParams:
    """The run's values that policies embed."""

    def __init__(
        self,
        external_cidr: str = "1.0.0.0/8",
        external_other_ip: str = "1.0.0.1",
        node_cidrs: tuple[str, ...] = (),
    ) -> None:
        self.external_cidr = external_cidr
        self.external_other_ip = external_other_ip
        self.node_cidrs = node_cidrs
