"""The datapath's data model: what the agent asks the kernel side to enforce.

Plain dataclasses with no kernel or Kubernetes import, shared by the agent (which computes
them from Kubernetes objects and policies) and ``ciliumctl.datapath`` (which writes them into
BPF maps). Numbers follow Cilium's: identities as in "Terminology", protocols as IANA numbers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ReservedIdentity(enum.IntEnum):
    """Cilium's reserved security identities."""

    UNKNOWN = 0
    HOST = 1
    WORLD = 2
    UNMANAGED = 3
    HEALTH = 4
    INIT = 5
    REMOTE_NODE = 6
    KUBE_APISERVER = 7
    INGRESS = 8
    WORLD_IPV4 = 9
    WORLD_IPV6 = 10


#: The first identity number allocated for label sets (CRD mode).
MIN_ALLOCATED_IDENTITY = 256

#: Wildcards in a policy entry: any remote identity, any protocol, any port.
ANY_IDENTITY = 0
ANY_PROTOCOL = 0
ANY_PORT = 0


class Direction(enum.IntEnum):
    """Traffic direction from the endpoint's point of view."""

    INGRESS = 0  # delivered to the endpoint (its ingress policy)
    EGRESS = 1  # sent by the endpoint (its egress policy)


class Protocol(enum.IntEnum):
    """IP protocol numbers the policy and conntrack maps know."""

    ANY = 0
    ICMP = 1
    TCP = 6
    UDP = 17
    ICMPV6 = 58
    SCTP = 132


class Enforcement(enum.StrEnum):
    """Cilium's policy enforcement modes (``enable-policy``)."""

    DEFAULT = "default"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True, order=True)
class PolicyEntry:
    """One rule of an endpoint's policy map.

    ``port``..``port_end`` is an inclusive destination-port range (``port_end == port`` for one
    port; both 0 for any port). For ICMP/ICMPv6 ``port`` is the ICMP type. ``deny`` entries win
    over allow entries that match the same packet.
    """

    identity: int
    direction: Direction
    protocol: Protocol = Protocol.ANY
    port: int = ANY_PORT
    port_end: int = ANY_PORT
    deny: bool = False


@dataclass(frozen=True)
class EndpointPolicy:
    """An endpoint's whole policy, replaced atomically in the datapath.

    ``ingress_enforced`` / ``egress_enforced`` say whether the direction is default-deny (some
    rule selects the endpoint in that direction, or enforcement is ``always``); a direction
    that is not enforced allows everything not explicitly denied.
    """

    entries: tuple[PolicyEntry, ...] = ()
    ingress_enforced: bool = False
    egress_enforced: bool = False


@dataclass(frozen=True)
class EndpointSpec:
    """What the datapath needs to know about one local endpoint (a pod's veth)."""

    id: int
    host_ifname: str
    identity: int
    ipv4: str | None = None
    ipv6: str | None = None
    mac: str | None = None
    host_mac: str | None = None


@dataclass(frozen=True)
class IPCacheEntry:
    """A prefix's security identity and, for remote pods in tunnel mode, its node's address."""

    prefix: str
    identity: int
    tunnel_endpoint: str | None = None


@dataclass(frozen=True)
class Backend:
    """One backend of a service."""

    address: str
    port: int


@dataclass(frozen=True)
class ServiceFrontend:
    """A service frontend (ClusterIP or NodePort) and its backends."""

    address: str
    port: int
    protocol: Protocol = Protocol.TCP
    kind: str = "ClusterIP"  # ClusterIP | NodePort
    backends: tuple[Backend, ...] = field(default_factory=tuple)
