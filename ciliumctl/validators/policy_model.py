"""The CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy model (cilium.io/v2, Cilium 1.18).

One source of truth: the validator checks documents against these trees and
:mod:`ciliumctl.validators.crdgen` renders the CRDs in ``charts/cilium/crds`` from them.
Descriptions are written for this project; field names and constraints follow the
policy language of Cilium 1.18.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from ciliumctl.validators.findings import Path
from ciliumctl.validators.schema import (
    Arr,
    Bool,
    Forbidden,
    Int,
    IntOrStr,
    Issue,
    Node,
    Obj,
    Str,
    newest_since,
)

API_GROUP = "cilium.io"
API_VERSION = "cilium.io/v2"
CNP_KIND = "CiliumNetworkPolicy"
CCNP_KIND = "CiliumClusterwideNetworkPolicy"

#: Entities a rule may name in fromEntities / toEntities.
ENTITIES: tuple[str, ...] = (
    "all",
    "world",
    "cluster",
    "host",
    "init",
    "ingress",
    "unmanaged",
    "remote-node",
    "health",
    "none",
    "kube-apiserver",
)

#: L4 protocols of a port rule.
PROTOCOLS: tuple[str, ...] = ("TCP", "UDP", "SCTP", "ANY")

#: The most ports one port rule may list (the agent rejects more).
MAX_PORTS = 40
#: The most ICMP fields one ICMP rule may list.
MAX_ICMP_FIELDS = 40

# A Kubernetes label value: empty, or alphanumerics with '-', '_' and '.' inside, max 63.
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# A port: a number 0-65535 or an IANA service name (letters required, single dashes inside).
PORT_PATTERN = (
    r"^((6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
    r"|([a-zA-Z0-9]-?)*[a-zA-Z](-?[a-zA-Z0-9])*)$"
)
# A prefix in address/length form; the address itself is checked by the semantic rules.
CIDR_PATTERN = r"^[0-9A-Fa-f:.]+/[0-9]{1,3}$"
# A DNS-1123 subdomain (names of CiliumCIDRGroups, secrets, envoy configs).
SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
FQDN_NAME_PATTERN = r"^([-a-zA-Z0-9_]+[.]?)+$"
FQDN_GLOB_PATTERN = r"^([-a-zA-Z0-9_*]+[.]?)+$"
ICMP_TYPE_NAMES: tuple[str, ...] = (
    "EchoReply",
    "DestinationUnreachable",
    "Redirect",
    "Echo",
    "EchoRequest",
    "RouterAdvertisement",
    "RouterSelection",
    "TimeExceeded",
    "ParameterProblem",
    "Timestamp",
    "TimestampReply",
    "Photuris",
    "ExtendedEchoRequest",
    "ExtendedEchoReply",
    "PacketTooBig",
    "MulticastListenerQuery",
    "MulticastListenerReport",
    "MulticastListenerDone",
    "RouterSolicitation",
    "NeighborSolicitation",
    "NeighborAdvertisement",
    "RedirectMessage",
    "RouterRenumbering",
    "ICMPNodeInformationQuery",
    "ICMPNodeInformationResponse",
    "InverseNeighborDiscoverySolicitation",
    "InverseNeighborDiscoveryAdvertisement",
    "HomeAgentAddressDiscoveryRequest",
    "HomeAgentAddressDiscoveryReply",
    "MobilePrefixSolicitation",
    "MobilePrefixAdvertisement",
    "DuplicateAddressRequestCodeSuffix",
    "DuplicateAddressConfirmationCodeSuffix",
)
ICMP_TYPE_PATTERN = (
    r"^([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]|" + "|".join(ICMP_TYPE_NAMES) + r")$"
)


class Metadata(Node):
    """Object metadata: Kubernetes owns its schema; the policy needs a name."""

    def openapi(self) -> dict[str, Any]:
        return {"type": "object"}

    def ok(self, value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        name = value.get("name")
        if not name and not value.get("generateName"):
            return False
        return name is None or isinstance(name, str)

    def validate(self, value: Any, path: Path) -> Iterator[Issue]:
        if not isinstance(value, dict):
            yield self._wrong_type(value, path, "an object", "add metadata: {name: ...}")
            return
        name = value.get("name")
        if not name and not value.get("generateName"):
            yield Issue(path, "metadata.name is missing", "add metadata.name", "metadata")
        elif name is not None and not isinstance(name, str):
            yield Issue((*path, "name"), "metadata.name must be a string", "quote the name")


def label_selector(description: str, since: tuple[int, int] | None = None) -> Obj:
    """A Kubernetes label selector with Cilium's source-prefixed keys."""
    return Obj(
        description=description,
        since=since,
        fields={
            "matchLabels": Obj(
                description="Labels (key: value) an endpoint must all carry. Keys may "
                "start with a source, e.g. k8s:app or reserved:host.",
                values=Str(
                    max_length=63,
                    pattern=LABEL_VALUE_PATTERN,
                    pattern_hint="label values are empty or up to 63 letters, digits, '-', "
                    "'_' and '.', starting and ending with a letter or digit",
                ),
            ),
            "matchExpressions": Arr(
                description="Set-based requirements, all of which must hold.",
                items=Obj(
                    description="One requirement on one label key.",
                    fields={
                        "key": Str(description="The label key the requirement applies to."),
                        "operator": Str(
                            description="How the key relates to the values.",
                            enum=("In", "NotIn", "Exists", "DoesNotExist"),
                        ),
                        "values": Arr(
                            description="Values for In/NotIn; must be empty for "
                            "Exists/DoesNotExist.",
                            items=Str(),
                        ),
                    },
                    required=("key", "operator"),
                ),
            ),
        },
    )


def endpoint_selectors(description: str, since: tuple[int, int] | None = None) -> Arr:
    """A list of endpoint selectors (fromEndpoints, toEndpoints, ...)."""
    return Arr(description=description, since=since, items=label_selector("Endpoint selector."))


def cidr_list(description: str) -> Arr:
    """A list of CIDR prefixes."""
    return Arr(
        description=description,
        items=Str(
            description="An IPv4 or IPv6 prefix, e.g. 192.0.2.0/24.",
            pattern=CIDR_PATTERN,
            pattern_hint="write the prefix as address/length, e.g. 10.0.0.0/8 or 2001:db8::/32",
        ),
    )


def cidr_rules(description: str) -> Arr:
    """A list of CIDR rules (a prefix or a CiliumCIDRGroup, with exceptions)."""
    return Arr(
        description=description,
        items=Obj(
            description="A prefix, a CiliumCIDRGroup by name or by labels, with optional "
            "exceptions inside the prefix.",
            one_of=("cidr", "cidrGroupRef", "cidrGroupSelector"),
            fields={
                "cidr": Str(
                    description="The allowed prefix.",
                    pattern=CIDR_PATTERN,
                    pattern_hint="write the prefix as address/length, e.g. 10.0.0.0/8",
                ),
                "cidrGroupRef": Str(
                    description="Name of a CiliumCIDRGroup.",
                    max_length=253,
                    pattern=SUBDOMAIN_PATTERN,
                    pattern_hint="use the lower-case DNS name of a CiliumCIDRGroup",
                ),
                "cidrGroupSelector": label_selector(
                    "Selects CiliumCIDRGroups by their labels.", since=(1, 17)
                ),
                "except": cidr_list("Prefixes inside the allowed prefix that stay excluded."),
            },
        ),
    )


def port_protocols(description: str) -> Arr:
    """The ``ports`` list of a port rule."""
    return Arr(
        description=description,
        items=Obj(
            description="A port (or range with endPort) and its L4 protocol.",
            required=("port",),
            fields={
                "port": Str(
                    description="A port number 0-65535 (0 means every port) or a named "
                    "container port. Quote numbers in YAML.",
                    pattern=PORT_PATTERN,
                    pattern_hint="use a number 0-65535 or an IANA service name "
                    "(letters, digits and single dashes, at least one letter)",
                ),
                "endPort": Int(
                    description="The last port of a range starting at port.",
                    minimum=0,
                    maximum=65535,
                ),
                "protocol": Str(
                    description="L4 protocol; ANY (the default) matches TCP, UDP and SCTP.",
                    enum=PROTOCOLS,
                ),
            },
        ),
    )


def secret_ref() -> Obj:
    """A reference to a Kubernetes secret."""
    return Obj(
        description="A Kubernetes secret.",
        required=("name",),
        fields={
            "name": Str(description="Name of the secret."),
            "namespace": Str(description="Namespace of the secret."),
        },
    )


def tls_context(description: str) -> Obj:
    """TLS parameters of the L7 proxy."""
    return Obj(
        description=description,
        required=("secret",),
        fields={
            "secret": secret_ref(),
            "trustedCA": Str(description="Item of the secret holding the trusted CA."),
            "certificate": Str(description="Item of the secret holding the certificate chain."),
            "privateKey": Str(description="Item of the secret holding the private key."),
        },
    )


def http_rule() -> Obj:
    """One HTTP rule."""
    return Obj(
        description="HTTP request constraints; method, path and host are RE2 regexes.",
        fields={
            "method": Str(description="RE2 regex matched against the request method."),
            "path": Str(description="RE2 regex matched against the request path."),
            "host": Str(description="RE2 regex matched against the Host header."),
            "headers": Arr(description="Headers that must be present.", items=Str()),
            "headerMatches": Arr(
                description="Headers that must be present and match.",
                items=Obj(
                    description="A header and the value it must have.",
                    required=("name",),
                    fields={
                        "name": Str(description="Header name.", min_length=1),
                        "value": Str(description="Exact value to match."),
                        "secret": secret_ref(),
                        "mismatch": Str(
                            description="What to do when the value does not match.",
                            enum=("LOG", "ADD", "DELETE", "REPLACE"),
                        ),
                    },
                ),
            ),
        },
    )


def kafka_rule() -> Obj:
    """One Kafka rule."""
    return Obj(
        description="Kafka request constraints.",
        fields={
            "role": Str(
                description="produce or consume (expands to the API keys needed).",
                enum=("produce", "consume"),
            ),
            "apiKey": Str(description="A Kafka API key name, e.g. fetch."),
            "apiVersion": Str(description="The Kafka API version, a non-negative integer."),
            "clientID": Str(description="The client identifier."),
            "topic": Str(
                description="The topic name.",
                max_length=255,
                pattern=r"^[a-zA-Z0-9._-]+$",
                pattern_hint="Kafka topics use letters, digits, '.', '_' and '-'",
            ),
        },
    )


def fqdn_selector(description: str) -> Obj:
    """A DNS name or wildcard pattern."""
    return Obj(
        description=description,
        fields={
            "matchName": Str(
                description="An exact DNS name.",
                max_length=255,
                pattern=FQDN_NAME_PATTERN,
                pattern_hint="use letters, digits, '-', '_' and '.', e.g. api.example.com "
                "(for wildcards use matchPattern)",
            ),
            "matchPattern": Str(
                description="A DNS name where '*' matches any run of DNS characters.",
                max_length=255,
                pattern=FQDN_GLOB_PATTERN,
                pattern_hint="use letters, digits, '-', '_', '.' and '*', e.g. *.example.com",
            ),
        },
    )


def l7_rules() -> Obj:
    """The ``rules`` of a port rule (one L7 protocol per rule)."""
    return Obj(
        description="L7 rules; only one protocol per port rule.",
        fields={
            "http": Arr(description="HTTP rules.", items=http_rule()),
            "kafka": Arr(description="Kafka rules.", items=kafka_rule()),
            "dns": Arr(
                description="DNS lookups the DNS proxy allows (egress, port 53).",
                items=fqdn_selector("A DNS name or pattern."),
            ),
            "l7proto": Str(description="Name of a proxylib L7 parser."),
            "l7": Arr(
                description="Key-value rules for l7proto.",
                items=Obj(description="Key-value pairs.", values=Str()),
            ),
        },
    )


def port_rules(description: str) -> Arr:
    """``toPorts`` of an allow rule."""
    return Arr(
        description=description,
        items=Obj(
            description="Ports, optionally with TLS and L7 rules.",
            fields={
                "ports": port_protocols("The ports and protocols."),
                "terminatingTLS": tls_context("TLS terminated by the proxy."),
                "originatingTLS": tls_context("TLS originated by the proxy."),
                "serverNames": Arr(
                    description="TLS SNI names allowed on these ports.",
                    items=Str(min_length=1),
                ),
                "listener": Obj(
                    description="Redirect to an Envoy listener of a CiliumEnvoyConfig.",
                    required=("envoyConfig", "name"),
                    fields={
                        "envoyConfig": Obj(
                            description="The (Clusterwide) CiliumEnvoyConfig.",
                            required=("name",),
                            fields={
                                "kind": Str(
                                    enum=("CiliumEnvoyConfig", "CiliumClusterwideEnvoyConfig")
                                ),
                                "name": Str(
                                    max_length=253,
                                    pattern=SUBDOMAIN_PATTERN,
                                    pattern_hint="use the name of the CiliumEnvoyConfig",
                                ),
                            },
                        ),
                        "name": Str(description="Listener name.", min_length=1),
                        "priority": Int(
                            description="Priority among listeners (1 highest, 100 lowest).",
                            minimum=1,
                            maximum=100,
                            fmt="int32",
                        ),
                    },
                ),
                "rules": l7_rules(),
            },
        ),
    )


_DENY_L7 = Forbidden(
    "L7 fields are not allowed in deny rules",
    "deny rules match L3/L4 only: keep 'ports' here and move L7 rules to an allow rule",
    "deny-l7",
)


def port_deny_rules(description: str) -> Arr:
    """``toPorts`` of a deny rule: ports only, no L7."""
    return Arr(
        description=description,
        items=Obj(
            description="Ports to deny.",
            fields={"ports": port_protocols("The ports and protocols.")},
            forbidden={
                name: _DENY_L7
                for name in (
                    "rules",
                    "listener",
                    "serverNames",
                    "terminatingTLS",
                    "originatingTLS",
                )
            },
        ),
    )


def icmp_rules() -> Arr:
    """``icmps``."""
    return Arr(
        description="ICMP types; cannot be combined with toPorts in the same rule.",
        items=Obj(
            description="A list of ICMP fields.",
            fields={
                "fields": Arr(
                    description="ICMP types and their address family.",
                    max_items=MAX_ICMP_FIELDS,
                    items=Obj(
                        description="One ICMP type.",
                        required=("type",),
                        fields={
                            "family": Str(
                                description="IPv4 (the default) or IPv6.",
                                enum=("IPv4", "IPv6"),
                            ),
                            "type": IntOrStr(
                                description="ICMP type: 0-255 or its CamelCase name.",
                                pattern=ICMP_TYPE_PATTERN,
                                pattern_hint="use 0-255 or a name such as EchoRequest",
                                minimum=0,
                                maximum=255,
                            ),
                        },
                    ),
                )
            },
        ),
    )


def authentication() -> Obj:
    """``authentication`` (mutual authentication)."""
    return Obj(
        description="Authentication required for the allowed traffic.",
        required=("mode",),
        fields={
            "mode": Str(
                description="disabled, required or test-always-fail.",
                enum=("disabled", "required", "test-always-fail"),
            )
        },
    )


def services() -> Arr:
    """``toServices``."""
    return Arr(
        description="Kubernetes services whose backends may be reached.",
        items=Obj(
            description="A service by name or by label selector.",
            fields={
                "k8sService": Obj(
                    description="A service by name and namespace.",
                    fields={"serviceName": Str(), "namespace": Str()},
                ),
                "k8sServiceSelector": Obj(
                    description="Services by label selector and namespace.",
                    required=("selector",),
                    fields={
                        "selector": label_selector("Service labels."),
                        "namespace": Str(),
                    },
                ),
            },
        ),
    )


def groups() -> Arr:
    """``toGroups`` (cloud provider groups)."""
    return Arr(
        description="Cloud provider groups (AWS security groups).",
        items=Obj(
            description="A provider-specific group.",
            fields={
                "aws": Obj(
                    description="AWS instances by tags or security groups.",
                    fields={
                        "labels": Obj(values=Str()),
                        "securityGroupsIds": Arr(items=Str()),
                        "securityGroupsNames": Arr(items=Str()),
                        "region": Str(),
                    },
                )
            },
        ),
    )


def _ingress_common() -> dict[str, Node]:
    return {
        "fromEndpoints": endpoint_selectors("Endpoints traffic may come from."),
        "fromRequires": endpoint_selectors(
            "Extra selectors every source must also match (deprecated)."
        ),
        "fromCIDR": cidr_list("Prefixes traffic may come from."),
        "fromCIDRSet": cidr_rules("Prefixes (with exceptions) traffic may come from."),
        "fromEntities": Arr(
            description="Special entities traffic may come from.",
            items=Str(enum=ENTITIES),
        ),
        "fromGroups": groups(),
        "fromNodes": endpoint_selectors(
            "Nodes traffic may come from (needs enable-node-selector-labels).", since=(1, 16)
        ),
        "icmps": icmp_rules(),
    }


def _egress_common() -> dict[str, Node]:
    return {
        "toEndpoints": endpoint_selectors("Endpoints traffic may go to."),
        "toRequires": endpoint_selectors(
            "Extra selectors every destination must also match (deprecated)."
        ),
        "toCIDR": cidr_list("Prefixes traffic may go to."),
        "toCIDRSet": cidr_rules("Prefixes (with exceptions) traffic may go to."),
        "toEntities": Arr(
            description="Special entities traffic may go to.",
            items=Str(enum=ENTITIES),
        ),
        "toServices": services(),
        "toGroups": groups(),
        "toNodes": endpoint_selectors(
            "Nodes traffic may go to (needs enable-node-selector-labels).", since=(1, 16)
        ),
        "icmps": icmp_rules(),
    }


def ingress_rule() -> Obj:
    """One ingress allow rule."""
    fields = _ingress_common()
    fields["toPorts"] = port_rules("Ports (and L7 rules) of the selected endpoints.")
    fields["authentication"] = authentication()
    return Obj(description="Traffic allowed into the selected endpoints.", fields=fields)


def ingress_deny_rule() -> Obj:
    """One ingress deny rule."""
    fields = _ingress_common()
    fields["toPorts"] = port_deny_rules("Ports to deny.")
    return Obj(
        description="Traffic denied into the selected endpoints.",
        fields=fields,
        forbidden={"authentication": _DENY_AUTH},
    )


def egress_rule() -> Obj:
    """One egress allow rule."""
    fields = _egress_common()
    fields["toPorts"] = port_rules("Destination ports (and L7 rules).")
    fields["toFQDNs"] = Arr(
        description="DNS names (learned through the DNS proxy) traffic may go to.",
        items=fqdn_selector("A DNS name or pattern."),
    )
    fields["authentication"] = authentication()
    return Obj(description="Traffic allowed out of the selected endpoints.", fields=fields)


_DENY_AUTH = Forbidden(
    "authentication is not allowed in deny rules",
    "remove it; authentication only applies to allowed traffic",
    "deny-auth",
)
_DENY_FQDN = Forbidden(
    "toFQDNs is not allowed in deny rules",
    "deny by toCIDRSet, toEntities or toEndpoints instead",
    "deny-fqdn",
)


def egress_deny_rule() -> Obj:
    """One egress deny rule."""
    fields = _egress_common()
    fields["toPorts"] = port_deny_rules("Ports to deny.")
    return Obj(
        description="Traffic denied out of the selected endpoints.",
        fields=fields,
        forbidden={"authentication": _DENY_AUTH, "toFQDNs": _DENY_FQDN},
    )


def rule(clusterwide: bool) -> Obj:
    """One policy rule (the ``spec``, or one entry of ``specs``)."""
    scope = "cluster" if clusterwide else "namespace"
    return Obj(
        description="A policy rule: the endpoints (or nodes) it selects and what they may "
        "send and receive.",
        one_of=("endpointSelector", "nodeSelector"),
        one_of_message="a rule needs exactly one of endpointSelector or nodeSelector",
        one_of_fix="add endpointSelector (pods) or nodeSelector (hosts"
        + ("" if clusterwide else ", CiliumClusterwideNetworkPolicy only")
        + "), not both",
        fields={
            "endpointSelector": label_selector(
                f"Endpoints in the {scope} the rule applies to; {{}} selects all of them."
            ),
            "nodeSelector": label_selector(
                "Nodes the rule applies to (host firewall); CiliumClusterwideNetworkPolicy only."
            ),
            "ingress": Arr(description="Ingress allow rules.", items=ingress_rule()),
            "ingressDeny": Arr(description="Ingress deny rules.", items=ingress_deny_rule()),
            "egress": Arr(description="Egress allow rules.", items=egress_rule()),
            "egressDeny": Arr(description="Egress deny rules.", items=egress_deny_rule()),
            "labels": Arr(
                description="Labels identifying the rule.",
                items=Obj(
                    description="A label.",
                    required=("key",),
                    fields={"key": Str(), "value": Str(), "source": Str()},
                ),
            ),
            "description": Str(description="Free text explaining the rule."),
            "enableDefaultDeny": Obj(
                description="Whether the rule puts the selected endpoints in default-deny "
                "mode per direction (default: true for a direction with rules).",
                fields={"ingress": Bool(), "egress": Bool()},
            ),
            "log": Obj(
                description="Text attached to Hubble flows matched by this policy.",
                since=(1, 18),
                fields={"value": Str(description="The text.")},
            ),
        },
    )


def policy_object(clusterwide: bool) -> Obj:
    """The whole CNP or CCNP object."""
    kind = CCNP_KIND if clusterwide else CNP_KIND
    top_description = Forbidden(
        "description is not allowed at the top level of the object",
        "move it into the rule: spec.description",
        "top-level-description",
    )
    return Obj(
        description=f"{kind}: Cilium network policy "
        + ("for the whole cluster." if clusterwide else "for one namespace."),
        required=("metadata",),
        fields={
            "apiVersion": Str(description="cilium.io/v2"),
            "kind": Str(description=kind),
            "metadata": Metadata(),
            "spec": rule(clusterwide),
            "specs": Arr(description="Several rules in one object.", items=rule(clusterwide)),
            "status": Obj(description="Maintained by Cilium.", preserve=True),
        },
        forbidden={"description": top_description},
    )


CNP_SCHEMA = policy_object(clusterwide=False)
CCNP_SCHEMA = policy_object(clusterwide=True)


def schema_for(kind: str) -> Obj:
    """The schema of ``kind`` (CNP or CCNP)."""
    return CCNP_SCHEMA if kind == CCNP_KIND else CNP_SCHEMA


def rule_schema(kind: str) -> Node:
    """The schema of one rule (``spec``) of ``kind``, built once with the object's."""
    return schema_for(kind).fields["spec"]


@cache
def rule_newest_since(kind: str) -> tuple[int, int] | None:
    """The newest Cilium version that added a rule field of ``kind``: targets from it on
    know every field, so the per-field version walk has nothing to find."""
    return newest_since(rule_schema(kind))
