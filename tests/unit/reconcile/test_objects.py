"""Staging order, ignore rules, comparison normalisation, Secret masking, the fast path."""

from __future__ import annotations

from typing import Any

import pytest

from ciliumctl.reconcile.objects import (
    HASH_ANNOTATION,
    IgnoreRule,
    Key,
    PointerError,
    builtin_ignore_rules,
    desired_hash,
    is_generated,
    is_subset,
    json_patch,
    mask_secrets,
    normalize,
    parse_pointer,
    pointer_get,
    pointer_remove,
    pointer_set,
    respect_ignored,
    stage_of,
    stage_order,
    unchanged_fast,
    unified_diff,
)


def obj(
    api_version: str, kind: str, name: str, namespace: str | None = None, **rest: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **rest}


def test_stages_in_apply_order() -> None:
    objects = [
        obj("cilium.io/v2", "CiliumNetworkPolicy", "p", "app"),
        obj("apps/v1", "DaemonSet", "cilium", "kube-system"),
        obj("v1", "ConfigMap", "cilium-config", "kube-system"),
        obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "x.cilium.io"),
        obj("rbac.authorization.k8s.io/v1", "ClusterRole", "cilium"),
        obj("v1", "Namespace", "app"),
        obj("v1", "Service", "hubble-peer", "kube-system"),
        obj("gateway.networking.k8s.io/v1", "Gateway", "gw", "app"),
        obj("v1", "ServiceAccount", "cilium", "kube-system"),
    ]
    stages = stage_order(objects)
    names = [[f"{o['kind']}/{o['metadata']['name']}" for o in s] for s in stages]
    assert names == [
        ["CustomResourceDefinition/x.cilium.io"],
        ["Namespace/app", "ConfigMap/cilium-config", "ServiceAccount/cilium", "ClusterRole/cilium"],
        ["Service/hubble-peer", "DaemonSet/cilium"],
        ["CiliumNetworkPolicy/p", "Gateway/gw"],
    ]
    assert stage_of("policy/v1", "PodDisruptionBudget") == "workloads"
    assert stage_of("v1", "Secret") == "base"


def test_generated_kinds() -> None:
    for kind in ("CiliumIdentity", "CiliumEndpoint", "CiliumEndpointSlice", "CiliumNode"):
        assert is_generated("cilium.io", kind)
    assert not is_generated("cilium.io", "CiliumNodeConfig")
    assert not is_generated("example.com", "CiliumIdentity")


def test_pointers() -> None:
    assert parse_pointer("/data/ca.crt") == ("data", "ca.crt")
    assert parse_pointer("/metadata/annotations/a~1b~0c") == ("metadata", "annotations", "a/b~c")
    with pytest.raises(PointerError):
        parse_pointer("data/x")
    with pytest.raises(PointerError):
        parse_pointer("/data/~2")  # RFC 6901 has only ~0 and ~1


def test_pointer_get_set_remove() -> None:
    obj: dict[str, Any] = {"spec": {"ports": [{"port": 80}, {"port": 81}]}, "s": "text"}
    assert pointer_get(obj, ("spec", "ports", "1", "port")) == (True, 81)
    for absent in (("spec", "ports", "2"), ("spec", "ports", "-"), ("spec", "ports", "01")):
        assert pointer_get(obj, absent) == (False, None)
    assert pointer_get(obj, ("s", "0")) == (False, None)  # strings are not containers
    pointer_set(obj, ("metadata", "labels", "a/b"), "x")
    assert obj["metadata"] == {"labels": {"a/b": "x"}}
    pointer_set(obj, ("spec", "ports", "5"), {})  # out of range: nothing to set
    pointer_remove(obj, ("spec", "ports", "0"))
    pointer_remove(obj, ("spec", "missing", "x"))
    assert obj["spec"] == {"ports": [{"port": 81}]}


def test_json_patch_turns_before_into_after_and_masks_secrets() -> None:
    import jsonpatch

    before = {"kind": "ConfigMap", "apiVersion": "v1", "data": {"a": "1", "b": "2"}}
    after = {"kind": "ConfigMap", "apiVersion": "v1", "data": {"a": "1", "c": "3"}}
    patch = json_patch(before, after)
    assert jsonpatch.apply_patch(before, patch) == after
    secret = {"kind": "Secret", "apiVersion": "v1", "data": {"token": "czNjcjN0"}}
    changed = json_patch(secret, {**secret, "data": {"token": "bmV3"}})
    assert changed == [{"op": "replace", "path": "/data/token", "value": "*** (after)"}]


def test_builtin_rules_cover_hubble_certificates() -> None:
    rules = builtin_ignore_rules("kube-system")
    server = Key("", "Secret", "kube-system", "hubble-server-certs")
    pointers = {p for r in rules if r.matches(server) for p in r.pointers}
    assert pointers == {"/data/ca.crt", "/data/tls.crt", "/data/tls.key"}
    assert any(r.matches(Key("", "ConfigMap", "kube-system", "hubble-ca-cert")) for r in rules)
    assert any(r.matches(Key("", "Secret", "kube-system", "cilium-ca")) for r in rules)
    # other namespaces and other secrets are compared in full
    assert not any(r.matches(Key("", "Secret", "other", "hubble-server-certs")) for r in rules)
    assert not any(r.matches(Key("", "Secret", "kube-system", "my-secret")) for r in rules)


def secret(name: str, data: dict[str, str], namespace: str = "kube-system") -> dict[str, Any]:
    return obj("v1", "Secret", name, namespace, type="kubernetes.io/tls", data=data)


def test_rotated_certificates_do_not_count() -> None:
    rules = builtin_ignore_rules("kube-system")
    live = secret("hubble-server-certs", {"ca.crt": "A", "tls.crt": "B", "tls.key": "C"})
    live["metadata"].update(resourceVersion="7", uid="u", managedFields=[{"manager": "helm"}])
    desired = secret("hubble-server-certs", {"ca.crt": "X", "tls.crt": "Y", "tls.key": "Z"})
    assert normalize(live, rules) == normalize(desired, rules)
    # respect_ignored keeps the live certificate, so applying never rotates it
    prepared = respect_ignored(desired, live, rules)
    assert prepared["data"] == live["data"]
    # a field the live object lacks is left out instead of being set
    partial = respect_ignored(desired, secret("hubble-server-certs", {"ca.crt": "A"}), rules)
    assert partial["data"] == {"ca.crt": "A"}
    # creation keeps the desired data
    assert respect_ignored(desired, None, rules)["data"] == desired["data"]


def test_user_rule_with_selector() -> None:
    rule = IgnoreRule(("/spec/replicas",), kind="Deployment", group="apps", name="relay")
    a = obj("apps/v1", "Deployment", "relay", "ns", spec={"replicas": 1, "x": 1})
    b = obj("apps/v1", "Deployment", "relay", "ns", spec={"replicas": 3, "x": 1})
    c = obj("apps/v1", "Deployment", "other", "ns", spec={"replicas": 3, "x": 1})
    assert normalize(a, [rule]) == normalize(b, [rule])
    assert normalize(a, [rule]) != normalize(c.copy() | {"metadata": a["metadata"]}, [])
    assert not rule.matches(Key.of(c))
    assert rule.as_argocd() == {
        "group": "apps",
        "kind": "Deployment",
        "name": "relay",
        "jsonPointers": ["/spec/replicas"],
    }


def test_normalize_drops_server_fields() -> None:
    live = obj("apps/v1", "DaemonSet", "cilium", "kube-system", spec={"a": 1}, status={"n": 3})
    live["metadata"].update(
        generation=4,
        resourceVersion="9",
        uid="x",
        creationTimestamp="t",
        managedFields=[],
        annotations={"deprecated.daemonset.template.generation": "4"},
    )
    assert normalize(live) == obj("apps/v1", "DaemonSet", "cilium", "kube-system", spec={"a": 1})


def test_secret_values_are_masked() -> None:
    before = secret("s", {"same": "c2VjcmV0", "old": "b2xk", "changed": "MQ=="})
    after = secret("s", {"same": "c2VjcmV0", "new": "bmV3", "changed": "Mg=="})
    b, a = mask_secrets(before, after)
    assert b is not None and a is not None
    assert b["data"] == {"same": "***", "old": "*** (before)", "changed": "*** (before)"}
    assert a["data"] == {"same": "***", "new": "*** (after)", "changed": "*** (after)"}
    text = unified_diff(Key.of(after), before, after)
    for raw in ("c2VjcmV0", "b2xk", "MQ==", "Mg==", "bmV3"):
        assert raw not in text
    assert "-  changed: '*** (before)'" in text and "+  changed: '*** (after)'" in text
    created = unified_diff(Key.of(after), None, after)
    assert "Mg==" not in created and "***" in created
    cm = obj("v1", "ConfigMap", "c", "ns", data={"k": "visible"})
    assert "visible" in unified_diff(Key.of(cm), None, cm)


def test_subset_and_fast_path() -> None:
    desired = obj(
        "cilium.io/v2",
        "CiliumNodeConfig",
        "c",
        "kube-system",
        spec={"defaults": {"a": "1"}, "nodeSelector": {}},
    )
    desired["metadata"]["annotations"] = {HASH_ANNOTATION: desired_hash(desired)}
    live = {**desired, "metadata": {**desired["metadata"], "uid": "u"}}
    assert is_subset(desired, live)
    assert unchanged_fast(desired, live)
    assert not is_subset({"a": [1, 2]}, {"a": [1]})
    assert not is_subset({"a": 1}, {"a": True})
    drifted = {**live, "spec": {"defaults": {"a": "2"}, "nodeSelector": {}}}
    assert not unchanged_fast(desired, drifted)
    # a field removed from the desired object changes the hash: the dry run decides
    smaller = obj(
        "cilium.io/v2",
        "CiliumNodeConfig",
        "c",
        "kube-system",
        spec={"defaults": {}, "nodeSelector": {}},
    )
    smaller["metadata"]["annotations"] = {HASH_ANNOTATION: desired_hash(smaller)}
    assert is_subset({k: v for k, v in smaller.items() if k != "metadata"}, live)
    assert not unchanged_fast(smaller, live)
    # the hash ignores its own annotation
    assert desired_hash(desired) == desired["metadata"]["annotations"][HASH_ANNOTATION]
