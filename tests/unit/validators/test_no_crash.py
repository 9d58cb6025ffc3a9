"""No input makes the policy validator crash: every input yields findings, never exceptions."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ciliumctl.validators import cnp, policy_rules
from ciliumctl.validators import policy_model as pm
from ciliumctl.validators.findings import Finding

from .corpus import load_cases

KEYS = [
    "spec", "specs", "endpointSelector", "nodeSelector", "ingress", "egress", "ingressDeny",
    "egressDeny", "fromEndpoints", "toEndpoints", "fromCIDR", "toCIDR", "fromCIDRSet",
    "toCIDRSet", "cidr", "except", "cidrGroupRef", "fromEntities", "toEntities", "toFQDNs",
    "matchName", "matchPattern", "toPorts", "ports", "port", "endPort", "protocol", "rules",
    "http", "dns", "kafka", "l7proto", "l7", "method", "path", "host", "headerMatches",
    "matchLabels", "matchExpressions", "key", "operator", "values", "listener", "icmps",
    "fields", "type", "family", "serverNames", "terminatingTLS", "toServices", "labels",
    "description", "metadata", "name", "kind", "apiVersion", "items", "role", "apiKey",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.sampled_from(
        [
            "TCP",
            "UDP",
            "ANY",
            "0",
            "53",
            "80",
            "10.0.0.0/8",
            "::/0",
            "all",
            "world",
            "reserved:init",
            "(?=x)",
            "*",
            "In",
            "Exists",
            "",
            "a" * 300,
            "k8s:app",
        ]
    ),
    st.text(max_size=20),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=5
        ),
    ),
    max_leaves=40,
)


def _check(findings: list[Finding]) -> None:
    for finding in findings:
        assert finding.message and finding.fix


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=values, kind=st.sampled_from([pm.CNP_KIND, pm.CCNP_KIND]))
def test_any_object_gives_findings_not_exceptions(spec: Any, kind: str) -> None:
    obj = {"apiVersion": pm.API_VERSION, "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    report = cnp.validate_texts([("f", yaml.safe_dump(obj))])
    _check(report.findings)
    list(policy_rules.check_policy(obj, kind, (1, 18)))


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400))
def test_any_text_gives_findings_not_exceptions(text: str) -> None:
    _check(cnp.validate_texts([("f", text)]).findings)


CORPUS_TEXTS = [case.path.read_text() for case in load_cases()]


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(CORPUS_TEXTS) - 1),
    cut=st.integers(min_value=0, max_value=4000),
    junk=st.text(max_size=5),
)
def test_mangled_corpus_files_give_findings(index: int, cut: int, junk: str) -> None:
    text = CORPUS_TEXTS[index]
    cut %= len(text) + 1
    _check(cnp.validate_texts([("f", text[:cut] + junk + text[cut:])]).findings)
