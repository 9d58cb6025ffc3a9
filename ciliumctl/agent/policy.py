"""Policy translation: CNP, CCNP and NetworkPolicy objects into each endpoint's policy map.

Objects are parsed once into :class:`Rule` trees (CNP/CCNP after the validators accepted
them: :func:`ciliumctl.validators.cnp.validate_object`), kept in a :class:`PolicyRepository`,
and computed per endpoint into a :class:`ciliumctl.datapath.model.EndpointPolicy` against the
identities the agent knows (:class:`SelectorCache`).

What this agent cannot enforce (L7 rules, toFQDNs, toServices, CIDR groups, node selectors,
``*Requires``) is never allowed instead: the part is left out of the allow entries (so default
deny refuses it) and reported as not enforced on the endpoint.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ciliumctl.agent import labels as lbl
from ciliumctl.agent.selector import (
    NAMESPACE_KEY,
    Selector,
    compile_selector,
    has_label,
    in_namespace,
    names_namespace,
)
from ciliumctl.datapath.model import (
    ANY_IDENTITY,
    Direction,
    EndpointPolicy,
    Enforcement,
    PolicyEntry,
    Protocol,
    ReservedIdentity,
)
from ciliumctl.nodeconfig.selectors import Requirement
from ciliumctl.validators import policy_model as pm
from ciliumctl.validators.findings import Severity, format_path
from ciliumctl.validators.labels import NAMESPACE_LABELS_PREFIX

log = logging.getLogger("cilium-agent.policy")

KNP_KIND = "NetworkPolicy"
KNP_API_VERSION = "networking.k8s.io/v1"
KINDS = (pm.CNP_KIND, pm.CCNP_KIND, KNP_KIND)

#: ICMP type names of the policy language, per family.
ICMP_TYPES: dict[Protocol, dict[str, int]] = {
    Protocol.ICMP: {
        "EchoReply": 0,
        "DestinationUnreachable": 3,
        "Redirect": 5,
        "Echo": 8,
        "EchoRequest": 8,
        "RouterAdvertisement": 9,
        "RouterSelection": 10,
        "TimeExceeded": 11,
        "ParameterProblem": 12,
        "Timestamp": 13,
        "TimestampReply": 14,
        "Photuris": 40,
        "ExtendedEchoRequest": 42,
        "ExtendedEchoReply": 43,
    },
    Protocol.ICMPV6: {
        "DestinationUnreachable": 1,
        "PacketTooBig": 2,
        "TimeExceeded": 3,
        "ParameterProblem": 4,
        "EchoRequest": 128,
        "EchoReply": 129,
        "MulticastListenerQuery": 130,
        "MulticastListenerReport": 131,
        "MulticastListenerDone": 132,
        "RouterSolicitation": 133,
        "RouterAdvertisement": 134,
        "NeighborSolicitation": 135,
        "NeighborAdvertisement": 136,
        "RedirectMessage": 137,
        "RouterRenumbering": 138,
        "ICMPNodeInformationQuery": 139,
        "ICMPNodeInformationResponse": 140,
        "InverseNeighborDiscoverySolicitation": 141,
        "InverseNeighborDiscoveryAdvertisement": 142,
        "HomeAgentAddressDiscoveryRequest": 144,
        "HomeAgentAddressDiscoveryReply": 145,
        "MobilePrefixSolicitation": 146,
        "MobilePrefixAdvertisement": 147,
        "DuplicateAddressRequestCodeSuffix": 157,
        "DuplicateAddressConfirmationCodeSuffix": 158,
        "ExtendedEchoRequest": 160,
        "ExtendedEchoReply": 161,
    },
}
_PROTOCOLS = {"TCP": Protocol.TCP, "UDP": Protocol.UDP, "SCTP": Protocol.SCTP, "ANY": Protocol.ANY}
#: What protocol ANY with a port stands for.
ANY_L4 = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
_L7_FIELDS = ("rules", "listener", "terminatingTLS", "originatingTLS", "serverNames")
_CLUSTER_RESERVED = ("host", "remote-node", "init", "health", "unmanaged", "kube-apiserver")
_UNENFORCED_PEERS = {
    "fromRequires": "fromRequires",
    "toRequires": "toRequires",
    "fromGroups": "fromGroups (cloud provider groups)",
    "toGroups": "toGroups (cloud provider groups)",
    "fromNodes": "fromNodes (node selector labels)",
    "toNodes": "toNodes (node selector labels)",
    "toServices": "toServices",
    "toFQDNs": "toFQDNs (DNS-based policy)",
}


@dataclass(frozen=True, order=True)
class PolicyKey:
    """Which object a rule came from."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass(frozen=True)
class PortSpec:
    """An L4 match of a peer: protocol and inclusive port range, or a named port."""

    protocol: Protocol
    port: int = 0
    port_end: int = 0
    name: str | None = None


@dataclass(frozen=True)
class Peer:
    """One ingress/egress (allow or deny) item: whom it selects and on which ports.

    ``ports`` None means every protocol and port; an empty tuple means none (its ports were
    all left out as not enforced). ``wildcard`` selects every identity.
    """

    direction: Direction
    deny: bool
    wildcard: bool
    selectors: tuple[Selector, ...]
    ports: tuple[PortSpec, ...] | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """One rule of a policy: the endpoints it selects and its peers."""

    source: PolicyKey
    subject: Selector
    peers: tuple[Peer, ...]
    enforces: frozenset[Direction]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedPolicy:
    """A policy object after parsing; ``errors`` non-empty means it was rejected."""

    key: PolicyKey
    rules: tuple[Rule, ...]
    errors: tuple[str, ...] = ()
    #: Whom a rejected policy was meant for (to report the rejection on those endpoints).
    targets: tuple[Selector, ...] = ()
    cidrs: frozenset[str] = frozenset()


def selects(parsed: ParsedPolicy | None, labels: lbl.LabelSet) -> bool:
    """Whether a policy (or a rejected policy's targets) selects an endpoint's labels."""
    if parsed is None:
        return False
    expanded = lbl.expand(labels)
    subjects = parsed.targets if parsed.errors else tuple(r.subject for r in parsed.rules)
    return any(s.matches(expanded) for s in subjects)


@dataclass(frozen=True)
class EndpointContext:
    """What policy computation needs to know about one endpoint."""

    labels: lbl.LabelSet  # its identity's (security-relevant) labels
    named_ports: Mapping[str, tuple[tuple[Protocol, int], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyResult:
    """An endpoint's computed policy and what the agent has to say about it."""

    policy: EndpointPolicy
    policies: tuple[str, ...]  # the objects that select it
    not_enforced: tuple[str, ...]  # parts left out (L7, FQDN, ...), nothing allowed instead
    rejected: tuple[str, ...]  # policies meant for it that the validators rejected
    revision: int


class SelectorCache:
    """The identities the agent knows and, memoized per selector, which ones a selector picks."""

    def __init__(self) -> None:
        self._labels: dict[int, dict[str, str]] = {}
        self._cache: dict[Selector, frozenset[int]] = {}
        self.version = 0

    def set_identities(self, identities: Mapping[int, lbl.LabelSet]) -> None:
        """Replace the whole identity set (invalidates the memo)."""
        self._labels = {num: lbl.expand(labels) for num, labels in identities.items()}
        self._cache.clear()
        self.version += 1

    def upsert(self, identity: int, labels: lbl.LabelSet) -> None:
        """Add or change one identity."""
        self._labels[identity] = lbl.expand(labels)
        self._cache.clear()
        self.version += 1

    def remove(self, identity: int) -> None:
        """Forget one identity."""
        if self._labels.pop(identity, None) is not None:
            self._cache.clear()
            self.version += 1

    def select(self, selector: Selector) -> frozenset[int]:
        """The identities ``selector`` matches."""
        hit = self._cache.get(selector)
        if hit is None:
            hit = frozenset(n for n, labels in self._labels.items() if selector.matches(labels))
            self._cache[selector] = hit
        return hit

    def selectors(self) -> dict[Selector, frozenset[int]]:
        """Every selector used so far and its identities (``cilium-dbg policy selectors``)."""
        return dict(self._cache)


def reserved_identities() -> dict[int, dict[str, str]]:
    """The reserved identities and their labels."""
    return {int(k): dict(v) for k, v in lbl.RESERVED_LABELS.items()}


# ------------------------------------------------------------------------- parsing
def policy_key(obj: Mapping[str, Any]) -> PolicyKey:
    """The key of a policy object (CCNP namespace ignored: it is cluster-scoped)."""
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind") or "")
    namespace = "" if kind == pm.CCNP_KIND else str(meta.get("namespace") or "default")
    return PolicyKey(kind, namespace, str(meta.get("name") or ""))


def parse(obj: dict[str, Any], cluster: str = "default") -> ParsedPolicy:
    """Parse one CNP, CCNP or NetworkPolicy; invalid CNP/CCNPs come back with ``errors``."""
    key = policy_key(obj)
    if key.kind == KNP_KIND:
        try:
            return _parse_knp(obj, key)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return ParsedPolicy(key, (), (f"NetworkPolicy cannot be read: {exc}",))
    if key.kind not in (pm.CNP_KIND, pm.CCNP_KIND):
        return ParsedPolicy(key, (), (f"kind {key.kind!r} is not a policy kind",))
    from ciliumctl.validators.cnp import validate_object

    report = validate_object({"apiVersion": pm.API_VERSION, **obj})
    errors = tuple(
        f"{format_path(f.path) or '.'}: {f.message} ({f.fix})"
        for f in report.findings
        if f.severity is Severity.ERROR
    )
    if errors:
        return ParsedPolicy(key, (), errors, _targets(obj, key))
    rules: list[Rule] = []
    cidrs: set[str] = set()
    for raw in _specs(obj):
        rule, rule_cidrs = _parse_rule(raw, key, cluster)
        rules.append(rule)
        cidrs |= rule_cidrs
    return ParsedPolicy(key, tuple(rules), (), (), frozenset(cidrs))


def _specs(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = [obj["spec"]] if isinstance(obj.get("spec"), dict) else []
    out += [r for r in obj.get("specs") or [] if isinstance(r, dict)]
    return out


def _targets(obj: Mapping[str, Any], key: PolicyKey) -> tuple[Selector, ...]:
    out: list[Selector] = []
    for raw in _specs(obj):
        try:
            out.append(_subject(raw.get("endpointSelector"), key))
        except (KeyError, TypeError, AttributeError):
            out.append(_subject({}, key))
    return tuple(out) or (_subject({}, key),)


def _subject(raw: Any, key: PolicyKey) -> Selector:
    selector = compile_selector(raw)
    return in_namespace(selector, key.namespace) if key.namespace else selector


def _parse_rule(raw: dict[str, Any], key: PolicyKey, cluster: str) -> tuple[Rule, set[str]]:
    notes: list[str] = []
    if "nodeSelector" in raw:
        notes.append("nodeSelector (host firewall) is not enforced by this agent")
        # The host is not firewalled by this agent: the rule selects no endpoint.
        subject = Selector(
            (
                Requirement("reserved:host", "Exists", frozenset()),
                Requirement("reserved:host", "DoesNotExist", frozenset()),
            )
        )
    else:
        subject = _subject(raw.get("endpointSelector"), key)
    default_deny = raw.get("enableDefaultDeny") or {}
    enforces: set[Direction] = set()
    peers: list[Peer] = []
    cidrs: set[str] = set()
    for section, direction, deny in (
        ("ingress", Direction.INGRESS, False),
        ("ingressDeny", Direction.INGRESS, True),
        ("egress", Direction.EGRESS, False),
        ("egressDeny", Direction.EGRESS, True),
    ):
        items = raw.get(section) or []
        wanted = default_deny.get("ingress" if direction is Direction.INGRESS else "egress")
        if items and wanted is not False:
            enforces.add(direction)
        for item in items:
            peer, peer_cidrs = _parse_peer(item, direction, deny, key, cluster)
            peers.append(peer)
            cidrs |= peer_cidrs
    return Rule(key, subject, tuple(peers), frozenset(enforces), tuple(notes)), cidrs


def entity_selectors(entity: str, cluster: str) -> tuple[Selector, ...] | None:
    """The selectors an entity stands for; None for ``all`` (every identity)."""
    if entity == "all":
        return None
    if entity == "none":
        return ()
    if entity == "cluster":
        members = [has_label(f"reserved:{name}") for name in _CLUSTER_RESERVED]
        cluster_key = "k8s:io.cilium.k8s.policy.cluster"
        members.append(Selector((Requirement(cluster_key, "In", frozenset({cluster})),)))
        return tuple(members)
    return (has_label(f"reserved:{entity}"),)


def cidr_selector(prefix: str, excepts: Iterable[str] = ()) -> Selector:
    """Selects the CIDR identities inside ``prefix`` and outside every ``excepts`` prefix."""
    reqs = [Requirement(f"cidr:{_net(prefix)}", "Exists", frozenset())]
    reqs += [Requirement(f"cidr:{_net(e)}", "DoesNotExist", frozenset()) for e in excepts]
    return Selector(()).with_requirements(reqs)


def _net(prefix: str) -> str:
    return str(ipaddress.ip_network(prefix, strict=False))


def _parse_peer(
    item: dict[str, Any], direction: Direction, deny: bool, key: PolicyKey, cluster: str
) -> tuple[Peer, set[str]]:
    side = "from" if direction is Direction.INGRESS else "to"
    selectors: list[Selector] = []
    wildcard = False
    l3 = False
    notes: list[str] = []
    cidrs: set[str] = set()
    for raw in item.get(f"{side}Endpoints") or []:
        l3 = True
        sel = compile_selector(raw)
        if key.namespace and not names_namespace(sel):
            sel = in_namespace(sel, key.namespace)
        selectors.append(sel)
    for entity in item.get(f"{side}Entities") or []:
        l3 = True
        found = entity_selectors(str(entity), cluster)
        if found is None:
            wildcard = True
        else:
            selectors.extend(found)
    for prefix in item.get(f"{side}CIDR") or []:
        l3 = True
        selectors.append(cidr_selector(prefix))
        cidrs.add(_net(prefix))
    for cidr_rule in item.get(f"{side}CIDRSet") or []:
        l3 = True
        if "cidr" not in cidr_rule:
            notes.append(f"{side}CIDRSet with a CiliumCIDRGroup is not enforced by this agent")
            continue
        excepts = [str(e) for e in cidr_rule.get("except") or []]
        selectors.append(cidr_selector(cidr_rule["cidr"], excepts))
        cidrs |= {_net(cidr_rule["cidr"]), *(_net(e) for e in excepts)}
    for name, what in _UNENFORCED_PEERS.items():
        if name.startswith(side) and item.get(name):
            l3 = True
            notes.append(f"{what} is not enforced by this agent")
    ports, port_notes = _parse_ports(item)
    notes += port_notes
    if not l3 and (ports is not None or "toPorts" in item or "icmps" in item):
        wildcard = True  # an L4-only rule applies to every peer
    return Peer(direction, deny, wildcard, tuple(selectors), ports, tuple(notes)), cidrs


def _parse_ports(item: dict[str, Any]) -> tuple[tuple[PortSpec, ...] | None, list[str]]:
    notes: list[str] = []
    if item.get("icmps"):
        specs: list[PortSpec] = []
        for icmp in item["icmps"]:
            for fld in icmp.get("fields") or []:
                proto = Protocol.ICMPV6 if fld.get("family") == "IPv6" else Protocol.ICMP
                raw_type = fld["type"]
                if isinstance(raw_type, int) or str(raw_type).isdigit():
                    number = int(raw_type)
                elif str(raw_type) in ICMP_TYPES[proto]:
                    number = ICMP_TYPES[proto][str(raw_type)]
                else:
                    notes.append(f"ICMP type {raw_type} has no {proto.name} number; left out")
                    continue
                specs.append(PortSpec(proto, number, number))
        return tuple(specs), notes
    if "toPorts" not in item:
        return None, notes
    specs = []
    for port_rule in item.get("toPorts") or []:
        ports = port_rule.get("ports") or [{"port": "0"}]
        if any(port_rule.get(f) for f in _L7_FIELDS):
            shown = ", ".join(
                f"{p.get('port')}/{p.get('protocol', 'ANY')}" for p in port_rule.get("ports") or []
            )
            notes.append(
                f"L7 rules on port(s) {shown or 'any'} are not enforced by this agent; "
                "traffic to them is not allowed by this rule"
            )
            continue
        for port in ports:
            specs.extend(_port_specs(port, _PROTOCOLS[str(port.get("protocol") or "ANY")]))
    return tuple(specs), notes


def _port_specs(port: Mapping[str, Any], protocol: Protocol) -> list[PortSpec]:
    raw = str(port.get("port", "0"))
    if not raw.isdigit():
        return [PortSpec(protocol, name=raw)]
    number = int(raw)
    end = int(port.get("endPort") or 0)
    return [PortSpec(protocol, number, max(end, number))]


def _parse_knp(obj: Mapping[str, Any], key: PolicyKey) -> ParsedPolicy:
    spec = obj.get("spec") or {}
    subject = in_namespace(compile_selector(spec.get("podSelector") or {}), key.namespace)
    types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))
    enforces = {Direction.INGRESS if t == "Ingress" else Direction.EGRESS for t in types}
    peers: list[Peer] = []
    cidrs: set[str] = set()
    for section, direction, side in (
        ("ingress", Direction.INGRESS, "from"),
        ("egress", Direction.EGRESS, "to"),
    ):
        if direction not in enforces:
            continue
        for item in spec.get(section) or []:
            selectors: list[Selector] = []
            for peer in item.get(side) or []:
                sel, prefixes = _knp_peer(peer, key.namespace)
                selectors.append(sel)
                cidrs |= prefixes
            ports: tuple[PortSpec, ...] | None = None
            if item.get("ports"):
                found: list[PortSpec] = []
                for port in item["ports"]:
                    proto = _PROTOCOLS[str(port.get("protocol") or "TCP")]
                    found.extend(_port_specs({**port, "port": port.get("port", 0)}, proto))
                ports = tuple(found)
            wildcard = not item.get(side)
            peers.append(Peer(direction, False, wildcard, tuple(selectors), ports))
    rule = Rule(key, subject, tuple(peers), frozenset(enforces))
    return ParsedPolicy(key, (rule,), (), (), frozenset(cidrs))


def _knp_peer(peer: Mapping[str, Any], namespace: str) -> tuple[Selector, set[str]]:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        excepts = [str(e) for e in block.get("except") or []]
        return cidr_selector(block["cidr"], excepts), {_net(block["cidr"]), *map(_net, excepts)}
    pods = compile_selector(peer.get("podSelector") or {})
    if "namespaceSelector" not in peer:
        return in_namespace(pods, namespace), set()
    spaces = compile_selector(peer["namespaceSelector"], key_prefix=NAMESPACE_LABELS_PREFIX)
    pod_only = Requirement(NAMESPACE_KEY, "Exists", frozenset())
    return pods.with_requirements([*spaces.requirements, pod_only]), set()


# ------------------------------------------------------------------------- repository
class PolicyRepository:
    """Every policy the agent has seen, and the computation of an endpoint's policy map."""

    def __init__(
        self,
        cluster: str = "default",
        enforcement: Enforcement = Enforcement.DEFAULT,
        allow_localhost: bool = True,
    ) -> None:
        self.cluster = cluster
        self.enforcement = enforcement
        self.allow_localhost = allow_localhost
        self._policies: dict[PolicyKey, ParsedPolicy] = {}
        self.revision = 1
        self._sorted: list[ParsedPolicy] = []
        self._sorted_at = 0

    def upsert(self, obj: dict[str, Any]) -> ParsedPolicy:
        """Add or replace a policy object; a rejected one is logged with the validators' text."""
        parsed = parse(obj, self.cluster)
        self._policies[parsed.key] = parsed
        self.revision += 1
        for error in parsed.errors:
            log.error("policy %s rejected: %s", parsed.key, error)
        return parsed

    def delete(self, key: PolicyKey) -> bool:
        """Remove a policy; True when it was known."""
        if self._policies.pop(key, None) is None:
            return False
        self.revision += 1
        return True

    def policies(self) -> list[ParsedPolicy]:
        """The policies, in key order (sorted once per revision)."""
        if self._sorted_at != self.revision:
            self._sorted = [self._policies[k] for k in sorted(self._policies)]
            self._sorted_at = self.revision
        return self._sorted

    def get(self, key: PolicyKey) -> ParsedPolicy | None:
        """One policy by key."""
        return self._policies.get(key)

    def cidr_prefixes(self) -> frozenset[str]:
        """Every prefix a policy names (each needs a CIDR identity and an ipcache entry)."""
        out: set[str] = set()
        for parsed in self._policies.values():
            out |= parsed.cidrs
        return frozenset(out)

    def compute(
        self,
        endpoint: EndpointContext,
        cache: SelectorCache,
        cluster_named_ports: Callable[[str], tuple[tuple[Protocol, int], ...]] = lambda _: (),
    ) -> PolicyResult:
        """The endpoint's policy map from every rule that selects it.

        Named ports resolve against the endpoint's own ports (ingress) or every endpoint's
        (egress, ``cluster_named_ports``).
        """
        expanded = lbl.expand(endpoint.labels)
        entries: set[PolicyEntry] = set()
        enforced: set[Direction] = set()
        sources: set[str] = set()
        notes: list[str] = []
        rejected: list[str] = []
        for parsed in self.policies():
            if parsed.errors:
                if any(t.matches(expanded) for t in parsed.targets):
                    rejected.extend(f"{parsed.key}: {e}" for e in parsed.errors)
                continue
            for rule in parsed.rules:
                if not rule.subject.matches(expanded):
                    continue
                sources.add(str(rule.source))
                enforced |= rule.enforces
                notes.extend(f"{rule.source}: {n}" for n in rule.notes)
                for peer in rule.peers:
                    notes.extend(f"{rule.source}: {n}" for n in peer.notes)
                    own = peer.direction is Direction.INGRESS
                    entries |= self._peer_entries(
                        peer,
                        cache,
                        (lambda n: endpoint.named_ports.get(n, ())) if own else cluster_named_ports,
                        notes,
                        rule.source,
                    )
        if self.enforcement is Enforcement.NEVER:
            enforced, entries = set(), set()
        elif self.enforcement is Enforcement.ALWAYS:
            enforced = {Direction.INGRESS, Direction.EGRESS}
        if Direction.INGRESS in enforced and self.allow_localhost:
            entries.add(PolicyEntry(int(ReservedIdentity.HOST), Direction.INGRESS))
        policy = EndpointPolicy(
            tuple(sorted(entries)),
            ingress_enforced=Direction.INGRESS in enforced,
            egress_enforced=Direction.EGRESS in enforced,
        )
        return PolicyResult(
            policy,
            tuple(sorted(sources)),
            tuple(dict.fromkeys(notes)),
            tuple(dict.fromkeys(rejected)),
            self.revision,
        )

    @staticmethod
    def _peer_entries(
        peer: Peer,
        cache: SelectorCache,
        named: Callable[[str], tuple[tuple[Protocol, int], ...]],
        notes: list[str],
        source: PolicyKey,
    ) -> set[PolicyEntry]:
        identities: set[int] = {ANY_IDENTITY} if peer.wildcard else set()
        if not peer.wildcard:
            for sel in peer.selectors:
                identities |= cache.select(sel)
        if not identities:
            return set()
        l4: list[tuple[Protocol, int, int]] = []
        if peer.ports is None:
            l4.append((Protocol.ANY, 0, 0))
        else:
            for spec in peer.ports:
                if spec.name is not None:
                    found = [
                        (proto, num, num)
                        for proto, num in named(spec.name)
                        if spec.protocol in (Protocol.ANY, proto)
                    ]
                    if not found:
                        notes.append(f"{source}: named port {spec.name!r} is not defined; no entry")
                    l4.extend(found)
                elif spec.protocol is Protocol.ANY and spec.port != 0:
                    l4.extend((proto, spec.port, spec.port_end) for proto in ANY_L4)
                else:
                    l4.append((spec.protocol, spec.port, spec.port_end))
        return {
            PolicyEntry(ident, peer.direction, proto, port, end, peer.deny)
            for ident in identities
            for proto, port, end in l4
        }
