"""Identity allocation logic that needs no API server (the race is tested against a real one)."""

from __future__ import annotations

from ciliumctl.agent import identity as ident
from ciliumctl.agent import labels as lbl
from ciliumctl.validators.labels import build_filter, default_filter


def test_probe_start_is_deterministic_and_in_range() -> None:
    labels = {"k8s:app": "web", "k8s:io.kubernetes.pod.namespace": "prod"}
    again = dict(reversed(list(labels.items())))
    assert ident.first_candidate(labels) == ident.first_candidate(again)
    assert 256 <= ident.first_candidate(labels) <= 65535


def test_reserved_labels_map_to_reserved_numbers() -> None:
    assert ident.reserved_for({"reserved:host": ""}) == 1
    assert ident.reserved_for({"reserved:health": ""}) == 4
    assert ident.reserved_for({"reserved:init": ""}) == 5
    assert ident.reserved_for({"k8s:app": "x"}) is None


def test_identity_object_keeps_security_labels_and_valid_k8s_labels() -> None:
    obj = ident.identity_object(300, {"k8s:app": "web", "k8s:io.kubernetes.pod.namespace": "a"})
    assert obj["metadata"]["name"] == "300"
    assert obj["metadata"]["labels"] == {"app": "web", "io.kubernetes.pod.namespace": "a"}
    assert ident.labels_of(obj) == {"k8s:app": "web", "k8s:io.kubernetes.pod.namespace": "a"}


def test_cache_observe_and_forget() -> None:
    alloc = ident.IdentityAllocator(client=None)  # type: ignore[arg-type]
    obj = ident.identity_object(4242, {"k8s:app": "web"})
    assert alloc.observe(obj) == 4242
    assert alloc.lookup({"k8s:app": "web"}) == 4242
    assert alloc.allocate({"k8s:app": "web"}).identity == 4242
    alloc.forget(4242)
    assert alloc.lookup({"k8s:app": "web"}) is None
    assert alloc.observe({"metadata": {"name": "not-a-number"}}) is None


def test_security_labels_follow_the_labels_option() -> None:
    pod = {
        "metadata": {
            "namespace": "prod",
            "labels": {"app": "web", "pod-template-hash": "abc", "team": "x"},
        },
        "spec": {"serviceAccountName": "sa"},
    }
    all_labels = lbl.endpoint_labels(pod, {"kubernetes.io/metadata.name": "prod"}, "default")
    default = lbl.security_labels(all_labels, default_filter())
    assert "k8s:app" in default and "k8s:team" in default
    assert "k8s:pod-template-hash" not in default
    assert default["k8s:io.cilium.k8s.policy.serviceaccount"] == "sa"
    only_app, _findings = build_filter(["k8s:app"])
    narrowed = lbl.security_labels(all_labels, only_app)
    assert "k8s:app" in narrowed and "k8s:team" not in narrowed
    assert "k8s:io.kubernetes.pod.namespace" in narrowed  # a default inclusive pattern
