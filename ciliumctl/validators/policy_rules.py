"""Semantic rules for CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy objects.

The schema (:mod:`policy_model`) says which fields exist and their types; these rules say
what the Cilium agent would still reject or silently ignore when it sanitizes a rule,
plus the mistakes that are valid but almost never intended. Every rule works on the raw
parsed document and tolerates wrong types (the schema reports those).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from ciliumctl.validators import policy_model as pm
from ciliumctl.validators import re2check, selectors
from ciliumctl.validators.findings import Path, Severity
from ciliumctl.validators.schema import walk_since
from ciliumctl.validators.selectors import Problem

E, W = Severity.ERROR, Severity.WARNING

#: Kafka API key names the agent knows (case-insensitive).
_KAFKA_KEYS_TEXT = (
    "produce fetch offsets metadata leaderandisr stopreplica updatemetadata "
    "controlledshutdown offsetcommit offsetfetch findcoordinator joingroup heartbeat "
    "leavegroup syncgroup describegroups listgroups saslhandshake apiversions createtopics "
    "deletetopics deleterecords initproducerid offsetforleaderepoch addpartitionstotxn "
    "addoffsetstotxn endtxn writetxnmarkers txnoffsetcommit describeacls createacls "
    "deleteacls describeconfigs alterconfigs"
)
KAFKA_API_KEYS = frozenset(_KAFKA_KEYS_TEXT.split(" "))

INGRESS_L3 = ("fromEndpoints", "fromCIDR", "fromCIDRSet", "fromEntities", "fromNodes", "fromGroups")
EGRESS_L3 = (
    "toEndpoints",
    "toCIDR",
    "toCIDRSet",
    "toEntities",
    "toServices",
    "toFQDNs",
    "toGroups",
    "toNodes",
)
#: ingress? -> (direction word, its L3 members, its peer selector lists), spelled once.
_DIRECTION_NAMES = {
    ingress: (
        word,
        INGRESS_L3 if ingress else EGRESS_L3,
        tuple(word + n for n in ("Endpoints", "Requires", "Nodes")),
    )
    for ingress, word in ((True, "from"), (False, "to"))
}
#: The fields of a direction rule that check_direction_rule looks at after the peer selectors.
_MORE_FIELDS = frozenset(
    {
        *("fromEntities", "toEntities", "fromCIDR", "toCIDR", "fromCIDRSet", "toCIDRSet"),
        *("toServices", "toFQDNs", "toPorts"),
    }
)
#: ingress? -> its entities, CIDR and CIDR set field names.
_DIRECTION_LISTS = {
    ingress: (word + "Entities", word + "CIDR", word + "CIDRSet")
    for ingress, word in ((True, "from"), (False, "to"))
}
L7_KINDS = ("http", "kafka", "dns", "l7proto")
RESERVED_INIT = "reserved:init"
_DNS_LABEL_MAX = 63


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def rules_of(obj: dict[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, rule) for ``spec`` and each entry of ``specs``."""
    if isinstance(obj.get("spec"), dict):
        yield ("spec",), obj["spec"]
    for index, rule in enumerate(_list(obj.get("specs"))):
        if isinstance(rule, dict):
            yield ("specs", index), rule


def check_policy(obj: dict[str, Any], kind: str, target: tuple[int, int]) -> Iterator[Problem]:
    """Every semantic problem of one CNP/CCNP object."""
    if _clean_policy(obj, kind, target):
        return
    clusterwide = kind == pm.CCNP_KIND
    spec, specs = obj.get("spec"), obj.get("specs")
    if spec is None and (specs is None or specs == []):
        yield Problem(
            (),
            E,
            "no-spec",
            f"the {kind} has neither spec nor specs, so it has no rules",
            "add spec: with an endpointSelector and ingress/egress rules",
        )
    schema = pm.rule_schema(kind)
    newest = pm.rule_newest_since(kind)
    check_since = newest is not None and newest > target
    for path, rule in rules_of(obj):
        yield from check_rule(rule, path, clusterwide)
        if not check_since:
            continue
        for where, since in walk_since(schema, rule, path, target):
            yield Problem(
                where,
                E,
                "target-version",
                f"{where[-1]} needs Cilium {since[0]}.{since[1]} or newer; the target "
                f"version is {target[0]}.{target[1]}",
                f"remove it or upgrade to Cilium {since[0]}.{since[1]} first",
            )
    yield from _fqdn_without_dns(obj)


_SECTIONS = (
    ("ingress", True, False),
    ("ingressDeny", True, True),
    ("egress", False, False),
    ("egressDeny", False, True),
)


def _clean_policy(obj: dict[str, Any], kind: str, target: tuple[int, int]) -> bool:
    """True when :func:`check_policy` surely finds nothing in ``obj``, in one pass without
    generators: the usual policy (one ``spec`` with an endpointSelector, peers selected by
    matchLabels, plain IPv4 CIDRs, TCP ports with HTTP rules). Anything it does not model
    (specs, nodeSelector, matchExpressions, FQDNs, services, other L7 protocols, endPort,
    listeners, fields newer than the target, a possible finding) answers False, and the
    full checks run and word the findings."""
    spec = obj.get("spec")
    if not isinstance(spec, dict) or obj.get("specs") is not None or "nodeSelector" in spec:
        return False
    newest = pm.rule_newest_since(kind)
    if newest is not None and newest > target:
        return False
    endpoint_sel = spec.get("endpointSelector")
    if not _clean_selector(endpoint_sel):
        return False
    assert isinstance(endpoint_sel, dict)
    if kind != pm.CCNP_KIND and RESERVED_INIT in endpoint_sel["matchLabels"]:
        return False
    has_sections = False
    for section, ingress, deny in _SECTIONS:
        items = spec.get(section)
        if items is None:
            continue
        has_sections = True
        for item in _list(items):
            if isinstance(item, dict) and not _clean_direction_rule(item, ingress, deny):
                return False
    return has_sections


def _clean_selector(selector: Any) -> bool:
    """True for a selector with valid, non-empty matchLabels and no matchExpressions:
    :func:`selectors.check` finds nothing, and it selects neither everything nor (as the
    caller checks) reserved:init through an expression."""
    if not isinstance(selector, dict) or selector.get("matchExpressions") is not None:
        return False
    labels = selector.get("matchLabels")
    if not isinstance(labels, dict) or not labels:
        return False
    if _VALID_KEYS.issuperset(labels):  # policies repeat their label keys
        return True
    key_problem = selectors.key_problem
    if not all(isinstance(key, str) and key_problem(key) is None for key in labels):
        return False
    if len(_VALID_KEYS) < 8192:
        _VALID_KEYS.update(labels)
    return True


#: Label keys :func:`selectors.key_problem` found nothing wrong with.
_VALID_KEYS: set[str] = set()


#: ingress? -> field of a direction rule -> what :func:`_clean_direction_rule` checks in it.
_CLEAN_FIELDS = {
    ingress: {
        word + "Endpoints": "peers",
        word + "Nodes": "peers",
        word + "Requires": "requires",
        word + "Entities": "entities",
        word + "CIDR": "cidr",
        word + "CIDRSet": "cidr-set",
        "toServices": "unmodelled",
        "toFQDNs": "unmodelled",
        "toPorts": "ports",
    }
    for ingress, word in ((True, "from"), (False, "to"))
}


def _clean_direction_rule(item: dict[str, Any], ingress: bool, deny: bool) -> bool:
    """True when :func:`check_direction_rule` surely finds nothing in ``item`` (of a rule
    without nodeSelector), and the entry adds no toFQDNs for :func:`_fqdn_without_dns`.
    Only the fields present are visited (usually one or two)."""
    if len(item) > 1:
        members = _DIRECTION_NAMES[ingress][1]
        if sum(1 for m in members if m in item and _list(item[m])) > 1:
            return False
        if "icmps" in item and _list(item["icmps"]) and _list(item.get("toPorts")):
            return False
    fields = _CLEAN_FIELDS[ingress]
    for name, value in item.items():
        what = fields.get(name)
        if what is None or not isinstance(value, list):
            continue  # a field no rule looks at, or one the rules skip
        if what == "peers":
            for sel in value:
                if isinstance(sel, dict) and not _clean_selector(sel):
                    return False
        elif what == "cidr-set":
            for cidr_rule in value:
                if isinstance(cidr_rule, dict) and not _clean_v4_cidr_rule(cidr_rule):
                    return False
        elif what == "ports":
            for port_rule in value:
                if isinstance(port_rule, dict) and not _clean_port_rule(port_rule, ingress, deny):
                    return False
        elif what == "cidr":
            for cidr in value:
                if isinstance(cidr, str) and "/" in cidr:
                    prefix = _v4(cidr)
                    if prefix is None or prefix[0] & ~prefix[2]:
                        return False
        elif what == "entities":
            if "all" in value:
                return False
        elif value:  # deprecated Requires; services and FQDNs take the full checks
            return False
    return True


#: The L7 fields of a port rule other than http (:func:`_clean_port_rule` leaves them to
#: the full checks).
_L7_OTHERS = frozenset({"kafka", "dns", "l7proto", "l7"})


def _clean_port_rule(rule: dict[str, Any], ingress: bool, deny: bool) -> bool:
    """True when :func:`check_port_rule` surely finds nothing in ``rule`` (not of a host
    policy): no endPort, at most HTTP rules, on TCP ports other than 0."""
    ports = _list(rule.get("ports"))
    if len(ports) > pm.MAX_PORTS:
        return False
    for port in ports:
        if isinstance(port, dict) and "endPort" in port:
            return False
    if deny:
        return True
    l7 = _dict(rule.get("rules"))
    for other in l7:
        if other in _L7_OTHERS and l7[other] is not None:
            return False
    has_l7 = l7.get("http") is not None
    if has_l7 and _list(rule.get("serverNames")) and rule.get("terminatingTLS") is None:
        return False
    if rule.get("listener") is not None:
        return False
    if not has_l7:
        return True
    for port in ports:
        if isinstance(port, dict) and (_port_number(port) == 0 or _proto(port) != "TCP"):
            return False
    for http in _list(l7.get("http")):
        if not isinstance(http, dict):
            continue
        for field in ("method", "path", "host"):
            pattern = http.get(field)
            if isinstance(pattern, str) and pattern and re2check.check(pattern):
                return False
        for match in _list(http.get("headerMatches")):
            secret = _dict(match).get("secret")
            if isinstance(secret, dict) and not secret.get("name"):
                return False
    return True


def check_rule(rule: dict[str, Any], path: Path, clusterwide: bool) -> Iterator[Problem]:
    """Problems of one rule (``spec`` or ``specs[i]``)."""
    scope = "cluster" if clusterwide else "namespace"
    endpoint_sel = rule.get("endpointSelector")
    node_sel = rule.get("nodeSelector")
    if not clusterwide and "nodeSelector" in rule:
        yield Problem(
            (*path, "nodeSelector"),
            E,
            "cnp-node-selector",
            "nodeSelector (host policies) is only allowed in CiliumClusterwideNetworkPolicy",
            "use a CiliumClusterwideNetworkPolicy for host policies, or endpointSelector here",
        )
    if not clusterwide and selectors.selects_key(endpoint_sel, RESERVED_INIT):
        yield Problem(
            (*path, "endpointSelector"),
            E,
            "cnp-reserved-init",
            "a CiliumNetworkPolicy cannot select reserved:init endpoints (init endpoints "
            "have no namespace yet)",
            "select reserved:init from a CiliumClusterwideNetworkPolicy instead",
        )
    for name, sel in (("endpointSelector", endpoint_sel), ("nodeSelector", node_sel)):
        if not isinstance(sel, dict):
            continue
        yield from selectors.check(sel, (*path, name))
        if selectors.is_empty(sel):
            what = "endpoint in the " + scope if name == "endpointSelector" else "node"
            yield Problem(
                (*path, name),
                W,
                "select-all",
                f"{name} {{}} selects every {what}",
                "add matchLabels to narrow it, or keep it if the policy is meant for all",
            )
    host_policy = isinstance(node_sel, dict) and not isinstance(endpoint_sel, dict)
    has_sections = False
    for section, ingress, deny in _SECTIONS:
        items = rule.get(section)
        if items is not None:
            has_sections = True
        for index, item in enumerate(_list(items)):
            if isinstance(item, dict):
                yield from check_direction_rule(
                    item, (*path, section, index), ingress, deny, clusterwide, host_policy
                )
    if not has_sections and isinstance(endpoint_sel or node_sel, dict):
        default_deny = _dict(rule.get("enableDefaultDeny"))
        if not default_deny:
            yield Problem(
                path,
                W,
                "no-rules",
                "the rule has no ingress, egress, ingressDeny or egressDeny section, so it "
                "has no effect",
                "add ingress/egress rules (ingress: [{}] denies all ingress)",
            )


def check_direction_rule(
    item: dict[str, Any],
    path: Path,
    ingress: bool,
    deny: bool,
    clusterwide: bool,
    host_policy: bool,
) -> Iterator[Problem]:
    """Problems of one ingress / ingressDeny / egress / egressDeny entry."""
    scope = "cluster" if clusterwide else "namespace"
    direction, members, peers = _DIRECTION_NAMES[ingress]
    get = item.get
    if len(item) > 1:  # one key cannot combine anything
        present = [m for m in members if m in item and _list(item[m])]
        if len(present) > 1:
            yield Problem(
                path,
                E,
                "l3-combination",
                f"{' and '.join(present)} cannot be combined in one rule; the agent rejects it",
                "split them into separate rules in the same list",
            )
        if "icmps" in item and _list(item["icmps"]) and _list(get("toPorts")):
            yield Problem(
                (*path, "icmps"),
                E,
                "icmp-with-ports",
                "icmps and toPorts cannot be in the same rule",
                "move icmps into a separate rule",
            )
    for name in peers:
        sels = get(name)
        if sels.__class__ is not list and not isinstance(sels, list):
            continue
        for index, sel in enumerate(sels):
            where = (*path, name, index)
            yield from selectors.check(sel, where)
            if selectors.is_empty(sel) and name.endswith("Endpoints"):
                verb = "denies traffic" if deny else "allows traffic"
                yield Problem(
                    where,
                    W,
                    "select-all",
                    f"{{}} in {name} selects every endpoint in the {scope}: this {verb} "
                    f"{direction} all of them",
                    "add matchLabels to narrow the peer selector",
                )
        if name.endswith("Requires") and sels:
            yield Problem(
                (*path, name),
                W,
                "deprecated",
                f"{name} is deprecated and will be removed in a future Cilium release",
                "express the requirement in the endpoint selectors of each rule",
            )
    entities_name, cidr_name, cidr_set_name = _DIRECTION_LISTS[ingress]
    if not _MORE_FIELDS.intersection(item):
        return  # none of the fields checked below (the usual peer + toPorts rule ends here)
    for index, entity in enumerate(_list(get(entities_name))):
        if entity == "all":
            verb = "denies" if deny else "allows"
            yield Problem(
                (*path, entities_name, index),
                W,
                "select-all",
                f"entity 'all' {verb} traffic {direction} every peer, inside and outside the "
                "cluster",
                "name narrower entities (cluster, world, host, ...) if that is not intended",
            )
    for index, cidr in enumerate(_list(get(cidr_name))):
        yield from check_cidr(cidr, (*path, cidr_name, index))
    for index, cidr_rule in enumerate(_list(get(cidr_set_name))):
        yield from check_cidr_rule(cidr_rule, (*path, cidr_set_name, index))
    for index, svc in enumerate(_list(get("toServices"))):
        sel = _dict(_dict(svc).get("k8sServiceSelector")).get("selector")
        yield from selectors.check(
            sel, (*path, "toServices", index, "k8sServiceSelector", "selector")
        )
    for index, fqdn in enumerate(_list(get("toFQDNs"))):
        yield from check_fqdn(fqdn, (*path, "toFQDNs", index))
    for index, port_rule in enumerate(_list(get("toPorts"))):
        if isinstance(port_rule, dict):
            yield from check_port_rule(
                port_rule, (*path, "toPorts", index), ingress, deny, host_policy
            )


def check_cidr(value: Any, path: Path) -> Iterator[Problem]:
    """A prefix must parse; host bits set is a warning."""
    if not isinstance(value, str) or "/" not in value:
        return
    prefix = _v4(value)
    if prefix is not None and not prefix[0] & ~prefix[2]:
        return  # a plain IPv4 prefix without host bits
    network = _network(value)
    if isinstance(network, str):
        yield Problem(
            path,
            E,
            "cidr",
            f"invalid CIDR {value!r}: {network}",
            "write address/length, e.g. 10.0.0.0/8 or 2001:db8::/32",
        )
        return
    if network.network_address != _address(value):
        yield Problem(
            path,
            W,
            "cidr-host-bits",
            f"{value} has host bits set; it means {network}",
            f"write {network}",
        )


@lru_cache(maxsize=8192)
def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_interface(value).ip


@lru_cache(maxsize=8192)
def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | str:
    """The network of a prefix (host bits allowed), or why it does not parse (memoised)."""
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        return str(exc)


def _v4(text: str) -> tuple[int, int, int] | None:
    """(address, prefix length, netmask) of an IPv4 prefix in the plain form ipaddress
    always accepts (decimal octets without leading zeros); None for anything else.
    Memoised: policies repeat their prefixes."""
    known = _V4_MEMO.get(text, _V4_UNKNOWN)
    if known is not _V4_UNKNOWN:
        return known
    match = _V4_PREFIX.fullmatch(text)
    prefix: tuple[int, int, int] | None = None
    if match is not None:
        a, b, c, d, length = map(int, match.groups())
        if a <= 255 and b <= 255 and c <= 255 and d <= 255 and length <= 32:
            mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
            prefix = a << 24 | b << 16 | c << 8 | d, length, mask
    if len(_V4_MEMO) < 8192:
        _V4_MEMO[text] = prefix
    return prefix


_V4_MEMO: dict[str, tuple[int, int, int] | None] = {}
_V4_UNKNOWN = (-1, -1, -1)


_OCTET = r"(0|[1-9][0-9]{0,2})"
_V4_PREFIX = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}/(0|[1-9][0-9]?)")


def _clean_v4_cidr_rule(value: dict[str, Any]) -> bool:
    """True when :func:`check_cidr_rule` surely finds nothing: a plain IPv4 cidr without
    host bits, no label selector, and exceptions that are plain IPv4 prefixes inside it
    and no larger (anything else takes the full checks, which word the findings)."""
    cidr = value.get("cidr")
    outer = _v4(cidr) if isinstance(cidr, str) else None
    if outer is None or outer[0] & ~outer[2] or isinstance(value.get("cidrGroupSelector"), dict):
        return False
    address, length, mask = outer
    for exc in _list(value.get("except")):
        if not isinstance(exc, str) or "/" not in exc:
            continue
        inner = _v4(exc)
        if inner is None or inner[0] & inner[2] & mask != address or inner[1] < length:
            return False
    return True


def check_cidr_rule(value: Any, path: Path) -> Iterator[Problem]:
    """A CIDR rule: its prefix, and every exception inside it."""
    if not isinstance(value, dict) or _clean_v4_cidr_rule(value):
        return
    cidr = value.get("cidr")
    yield from check_cidr(cidr, (*path, "cidr"))
    yield from selectors.check(value.get("cidrGroupSelector"), (*path, "cidrGroupSelector"))
    outer = _network(cidr) if isinstance(cidr, str) and "/" in cidr else None
    for index, exc in enumerate(_list(value.get("except"))):
        where = (*path, "except", index)
        if not isinstance(exc, str) or "/" not in exc:
            continue
        inner = _network(exc)
        if isinstance(inner, str):
            yield Problem(
                where, E, "cidr", f"invalid CIDR {exc!r}: {inner}", "write address/length"
            )
            continue
        if outer is None or isinstance(outer, str):
            continue
        if inner.version != outer.version:
            yield Problem(
                where,
                E,
                "cidr-except",
                f"except {exc} is IPv{inner.version} but cidr {cidr} is IPv{outer.version}",
                "use an exception of the same address family inside the cidr",
            )
        elif inner.network_address not in outer:
            yield Problem(
                where,
                E,
                "cidr-except",
                f"except {exc} is outside cidr {cidr}",
                f"use exceptions inside {outer}, or remove this one",
            )
        elif inner.prefixlen < outer.prefixlen:
            yield Problem(
                where,
                W,
                "cidr-except",
                f"except {exc} is larger than cidr {cidr}: it excludes the whole prefix",
                "narrow the exception or remove the rule",
            )


def check_fqdn(value: Any, path: Path) -> Iterator[Problem]:
    """A toFQDNs entry or a DNS rule: names and wildcard patterns."""
    if not isinstance(value, dict):
        return
    name, pattern = value.get("matchName"), value.get("matchPattern")
    if name is None and pattern is None:
        yield Problem(
            path,
            W,
            "fqdn-empty",
            "neither matchName nor matchPattern is set: this entry matches no DNS name",
            "set matchName: example.com or matchPattern: '*.example.com'",
        )
    for field, text in (("matchName", name), ("matchPattern", pattern)):
        if not isinstance(text, str) or not text:
            continue
        where = (*path, field)
        trimmed = text[:-1] if text.endswith(".") else text
        if any(len(part) > _DNS_LABEL_MAX for part in trimmed.split(".")):
            yield Problem(
                where,
                E,
                "fqdn-syntax",
                f"{text!r} has a DNS label longer than 63 characters",
                "shorten the label",
            )
        if field == "matchPattern" and ".*" in text:
            yield Problem(
                where,
                W,
                "fqdn-regex",
                f"{text!r} looks like a regular expression; matchPattern uses DNS "
                "wildcards, where '.' is a literal dot",
                "write '*.example.com' to match subdomains",
            )


def _proto(port: dict[str, Any]) -> str:
    proto = port.get("protocol")
    return proto.upper() if isinstance(proto, str) and proto else "ANY"


def _port_number(port: dict[str, Any]) -> int | None:
    text = port.get("port")
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if isinstance(text, str) and text.isascii() and text.isdigit():
        return int(text)
    return None


def check_port_rule(
    rule: dict[str, Any], path: Path, ingress: bool, deny: bool, host_policy: bool
) -> Iterator[Problem]:
    """A toPorts entry: ports, ranges, TLS, listener and the L7 rules it carries."""
    raw_ports = _list(rule.get("ports"))
    ports = [p for p in raw_ports if isinstance(p, dict)]
    if len(raw_ports) > pm.MAX_PORTS:
        yield Problem(
            (*path, "ports"),
            E,
            "too-many-ports",
            f"{len(raw_ports)} ports in one rule; the agent accepts at most {pm.MAX_PORTS}",
            "use a port range (endPort) or split the ports over several toPorts entries",
        )
    for index, port in enumerate(raw_ports):
        if isinstance(port, dict) and "endPort" in port:  # check_port needs an endPort
            yield from check_port(port, (*path, "ports", index))
    if deny:
        return
    l7 = _dict(rule.get("rules"))
    kinds = [k for k in L7_KINDS if l7.get(k) is not None]
    has_l7 = bool(kinds) or l7.get("l7") is not None
    has_dns = bool(_list(l7.get("dns")))
    direction = "ingress" if ingress else "egress"
    if len(kinds) > 1:
        yield Problem(
            (*path, "rules"),
            E,
            "l7-multiple",
            f"one port rule cannot mix L7 protocols ({', '.join(kinds)})",
            "split them into separate toPorts entries, one protocol each",
        )
    if l7.get("l7") is not None and not isinstance(l7.get("l7proto"), str):
        yield Problem(
            (*path, "rules", "l7"),
            E,
            "l7-without-proto",
            "'l7' rules need 'l7proto' to name the parser",
            "add l7proto: <parser name>",
        )
    if has_dns and ingress:
        yield Problem(
            (*path, "rules", "dns"),
            E,
            "dns-ingress",
            "DNS rules are only allowed on egress",
            "move the DNS rule to an egress rule towards the DNS server",
        )
    if host_policy and has_l7:
        yield Problem(
            (*path, "rules"),
            E,
            "host-l7",
            "host policies (nodeSelector) do not support L7 rules",
            "remove the L7 rules or select pods with endpointSelector",
        )
    server_names = _list(rule.get("serverNames"))
    if server_names and has_l7 and rule.get("terminatingTLS") is None:
        yield Problem(
            (*path, "serverNames"),
            E,
            "server-names-l7",
            "serverNames with L7 rules need terminatingTLS",
            "add terminatingTLS, or drop serverNames or the L7 rules",
        )
    listener = rule.get("listener")
    if listener is not None:
        if ingress:
            yield Problem(
                (*path, "listener"),
                E,
                "listener-ingress",
                "a listener is not allowed on ingress",
                "use the listener in an egress rule",
            )
        if has_l7:
            yield Problem(
                (*path, "listener"),
                E,
                "listener-l7",
                "a listener cannot be combined with L7 rules",
                "remove either the listener or the rules",
            )
    if not has_l7:
        return
    for index, port in enumerate(ports):
        where = (*path, "ports", index)
        number = _port_number(port)
        if number == 0:
            yield Problem(
                (*where, "port"),
                E,
                "l7-port-zero",
                "L7 rules cannot be used on port 0 (all ports)",
                "name the real port(s) the L7 protocol runs on",
            )
        if not has_dns and _proto(port) != "TCP":
            yield Problem(
                where,
                E,
                "l7-protocol",
                f"L7 rules other than DNS only apply to TCP, not {_proto(port)}"
                + (" (protocol defaults to ANY)" if "protocol" not in port else ""),
                "set protocol: TCP",
            )
        if has_dns:
            end = port.get("endPort")
            if number is not None and isinstance(end, int) and end > number:
                yield Problem(
                    where,
                    E,
                    "dns-port-range",
                    "DNS rules do not support port ranges",
                    "use port: '53' without endPort",
                )
    if has_dns and not ports:
        yield Problem(
            (*path, "rules", "dns"),
            E,
            "dns-no-port",
            "DNS rules need the DNS port listed in ports",
            "add ports: [{port: '53', protocol: ANY}]",
        )
    elif has_dns and not any(_port_number(p) == 53 for p in ports):
        yield Problem(
            (*path, "ports"),
            W,
            "dns-port",
            f"DNS rules on {direction} ports other than 53: the DNS proxy only sees the "
            "ports listed here",
            "make sure your DNS server really listens on these ports (usually 53)",
        )
    for index, http in enumerate(_list(l7.get("http"))):
        yield from check_http(http, (*path, "rules", "http", index))
    for index, kafka in enumerate(_list(l7.get("kafka"))):
        yield from check_kafka(kafka, (*path, "rules", "kafka", index))
    for index, dns in enumerate(_list(l7.get("dns"))):
        yield from check_fqdn(dns, (*path, "rules", "dns", index))


def check_port(port: dict[str, Any], path: Path) -> Iterator[Problem]:
    """One port: endPort must not be below port, and needs a numeric port."""
    end = port.get("endPort")
    if not isinstance(end, int) or isinstance(end, bool) or end == 0:
        return
    text = port.get("port")
    number = _port_number(port)
    if isinstance(text, str) and number is None:
        yield Problem(
            (*path, "endPort"),
            E,
            "end-port",
            f"endPort needs a numeric port, not the named port {text!r}",
            "use a port number with endPort, or drop endPort",
        )
    elif number is not None and end < number:
        yield Problem(
            (*path, "endPort"),
            E,
            "end-port",
            f"endPort {end} is below port {number}",
            f"set endPort to {number} or more, or swap the two",
        )


def check_http(rule: Any, path: Path) -> Iterator[Problem]:
    """HTTP method, path and host are RE2 regexes."""
    if not isinstance(rule, dict):
        return
    for field in ("method", "path", "host"):
        pattern = rule.get(field)
        if isinstance(pattern, str) and pattern:
            why = re2check.check(pattern)
            if why:
                yield Problem(
                    (*path, field),
                    E,
                    "http-regex",
                    f"{field} {pattern!r} is not a valid RE2 regex: {why}",
                    "rewrite it without lookarounds, backreferences or possessive/atomic "
                    "groups (RE2 syntax)",
                )
    for index, match in enumerate(_list(rule.get("headerMatches"))):
        secret = _dict(match).get("secret")
        if isinstance(secret, dict) and not secret.get("name"):
            yield Problem(
                (*path, "headerMatches", index, "secret"),
                E,
                "header-secret",
                "the header secret has no name",
                "set secret.name",
            )


def check_kafka(rule: Any, path: Path) -> Iterator[Problem]:
    """Kafka: role xor apiKey, known API keys, numeric API version."""
    if not isinstance(rule, dict):
        return
    role, api_key, version = rule.get("role"), rule.get("apiKey"), rule.get("apiVersion")
    if role and api_key:
        yield Problem(
            path,
            E,
            "kafka",
            "role and apiKey cannot both be set",
            "keep role (produce/consume) or apiKey, not both",
        )
    if isinstance(api_key, str) and api_key and api_key.lower() not in KAFKA_API_KEYS:
        yield Problem(
            (*path, "apiKey"),
            E,
            "kafka",
            f"unknown Kafka API key {api_key!r}",
            "use a Kafka API key name such as produce, fetch or metadata",
        )
    if (
        isinstance(version, str)
        and version
        and (not re.fullmatch(r"[0-9]+", version) or int(version) > 32767)
    ):
        yield Problem(
            (*path, "apiVersion"),
            E,
            "kafka",
            f"apiVersion {version!r} is not a number 0-32767",
            "use a non-negative integer, quoted",
        )


def _fqdn_without_dns(obj: dict[str, Any]) -> Iterator[Problem]:
    """toFQDNs only works when DNS answers pass the DNS proxy (a rule with rules.dns)."""
    fqdn_paths: list[Path] = []
    has_dns_rule = False
    for path, rule in rules_of(obj):
        for index, egress in enumerate(_list(rule.get("egress"))):
            if not isinstance(egress, dict):
                continue
            if _list(egress.get("toFQDNs")):
                fqdn_paths.append((*path, "egress", index, "toFQDNs"))
            for port_rule in _list(egress.get("toPorts")):
                if _list(_dict(_dict(port_rule).get("rules")).get("dns")):
                    has_dns_rule = True
    if fqdn_paths and not has_dns_rule:
        yield Problem(
            fqdn_paths[0],
            W,
            "fqdn-without-dns",
            "toFQDNs needs DNS lookups to pass the DNS proxy, but no egress rule in this "
            "policy has rules.dns; unless another policy selecting the same endpoints does, "
            "no IP will ever match",
            "add an egress rule to your DNS server (e.g. k8s:k8s-app: kube-dns) with "
            "toPorts: [{ports: [{port: '53', protocol: ANY}], rules: {dns: "
            "[{matchPattern: '*'}]}}]",
        )
