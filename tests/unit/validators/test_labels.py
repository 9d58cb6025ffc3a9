"""Identity-relevant label patterns: parsing, matching, identity counting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ciliumctl.errors import CiliumctlError
from ciliumctl.validators import labels as L
from ciliumctl.validators.findings import Severity

ROOT = Path(__file__).resolve().parents[3]


def rules(findings: list[Any]) -> set[tuple[str, str]]:
    return {(f.severity.value, f.rule) for f in findings}


@pytest.mark.parametrize(
    ("key", "relevant"),
    [
        ("app", True),
        ("io.kubernetes.pod.namespace", True),
        ("io.kubernetes.container.name", False),
        ("kubernetes.io/metadata.name", False),
        ("statefulset.kubernetes.io/pod-name", False),
        ("apps.kubernetes.io/pod-index", False),
        ("batch.kubernetes.io/job-completion-index", False),
        ("batch.kubernetes.io/controller-uid", False),
        ("failure-domain.beta.kubernetes.io/zone", False),
        ("k8s.io/thing", False),
        ("pod-template-hash", False),
        ("pod-template-generation", False),
        ("controller-revision-hash", False),
        ("annotation.foo", False),
        ("controller-uid", False),
        ("etcd_node", False),
        ("app.kubernetes.io/name", True),
        ("io.cilium.k8s.namespace.labels.team", True),
        ("io.cilium.k8s.policy.serviceaccount", True),
        ("io.cilium.k8s.policy.cluster", True),
    ],
)
def test_default_patterns(key: str, relevant: bool) -> None:
    assert L.default_filter().relevant(key) is relevant


def test_inclusive_pattern_turns_on_allow_list_with_automatic_inclusions() -> None:
    # The example of the "Including Labels" section of the 1.18 docs.
    user = L.split_config(r"io\.kubernetes\.pod\.namespace k8s-app app name kind$ other$")
    label_filter, findings = L.build_filter(user)
    assert label_filter.allow_list
    for key in ("k8s-app", "k8s-app-team", "app-production", "name-defined", "kind", "other"):
        assert label_filter.relevant(key), key
    for key in ("kinder", "env", "team"):
        assert not label_filter.relevant(key), key
    for key in (
        "io.kubernetes.pod.namespace",
        "io.cilium.k8s.namespace.labels.x",
        "io.cilium.k8s.policy.cluster",
        "io.cilium.k8s.policy.serviceaccount",
        "app.kubernetes.io/part-of",
    ):
        assert label_filter.relevant(key), key
    assert label_filter.relevant("init", source="reserved")
    assert ("note", "allow-list") in rules(findings)
    assert ("note", "label-default") in rules(findings)


def test_exclusions_keep_defaults_and_drop_matches() -> None:
    label_filter, findings = L.build_filter(["!controller-uid", "!job-name"])
    assert not label_filter.allow_list
    assert not label_filter.relevant("job-name")
    assert label_filter.relevant("team")
    assert ("error", "label-pattern") not in rules(findings)


def test_patterns_are_anchored_at_the_start_and_longest_match_wins() -> None:
    label_filter, _ = L.build_filter([r"example\.com"])
    assert label_filter.relevant("example.com/team")
    assert not label_filter.relevant("www.example.com/team")
    label_filter, _ = L.build_filter([r".*example\.com"])
    assert label_filter.relevant("www.example.com/team")
    # {!foo, foo.bar}: the longer inclusive match keeps foo.bar.
    label_filter, _ = L.build_filter(["!foo", r"foo\.bar"])
    assert label_filter.relevant("foo.bar")
    assert not label_filter.relevant("foo.baz")


def test_source_prefixes() -> None:
    label_filter, _ = L.build_filter(["container:!team"])
    assert label_filter.relevant("team", source="k8s")
    assert not label_filter.relevant("team", source="container")


def test_excluding_the_service_account_is_allowed_but_flagged() -> None:
    label_filter, findings = L.build_filter([r"!io\.cilium\.k8s\.policy\.serviceaccount"])
    assert not label_filter.relevant("io.cilium.k8s.policy.serviceaccount")
    assert ("warning", "label-core") in rules(findings)
    # The shortest exclusion (!io\.kubernetes) loses against the longer inclusive default.
    label_filter, findings = L.build_filter([r"!io\.kubernetes\.pod\.namespace"])
    assert label_filter.relevant("io.kubernetes.pod.namespace")
    assert ("warning", "label-no-effect") in rules(findings)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("k8s:", ("error", "label-pattern")),
        ("app(?=x)", ("error", "label-pattern")),
        ("[a-", ("error", "label-pattern")),
        ("!k8s:team", ("warning", "label-source")),
        ("any:team", ("warning", "label-source")),
        ("!x*", ("warning", "label-empty-match")),
        ("app.kubernetes.io", ("warning", "label-unescaped-dot")),
        (r"app\.kubernetes\.io", ("note", "label-default")),
    ],
)
def test_pattern_problems(pattern: str, expected: tuple[str, str]) -> None:
    _, findings = L.build_filter([pattern], source="--labels")
    assert expected in rules(findings)
    for finding in findings:
        assert finding.file == "--labels"
        if finding.path:
            assert finding.path == ("labels", 0)


class FakeCluster:
    """The two list calls and one get the label analysis makes."""

    def __init__(self, pods: list[dict[str, Any]], config: dict[str, str] | None) -> None:
        self.pods = pods
        self.config = config

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[Any]:
        if kind == "Namespace":
            return [
                {"metadata": {"name": "shop", "labels": {"team": "shop"}}},
                {"metadata": {"name": "ops", "labels": {"team": "ops"}}},
            ]
        assert kind == "Pod"
        return self.pods

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        assert (kind, name, namespace) == ("ConfigMap", "cilium-config", "kube-system")
        return None if self.config is None else {"data": self.config}


def pod(name: str, namespace: str, labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
        "status": {"phase": "Running"},
    }


def shop_pods() -> list[dict[str, Any]]:
    pods = []
    for i in range(6):
        pods.append(
            pod(
                f"web-{i}",
                "shop",
                {"app": "web", "pod-template-hash": "7d4b9c", "build-id": f"a1b2c3d{i}"},
                serviceAccountName="web",
            )
        )
        pods.append(
            pod(
                f"db-{i}",
                "shop",
                {
                    "app": "db",
                    "statefulset.kubernetes.io/pod-name": f"db-{i}",
                    "instance": f"db-{i}",
                },
            )
        )
    pods.append(pod("web-0", "ops", {"app": "web"}))
    pods.append(pod("agent", "ops", {"app": "agent"}, hostNetwork=True))
    done = pod("job", "ops", {"app": "job"})
    done["status"]["phase"] = "Succeeded"
    pods.append(done)
    return pods


def test_identity_count_and_multipliers() -> None:
    result = L.analyse_cluster(FakeCluster(shop_pods(), {"labels": ""}), "kube-system", None)
    assert result.source == "ConfigMap kube-system/cilium-config key labels"
    assert result.defaults is not None and result.configured is not None
    # 6 web pods x distinct build-id + 6 db pods x distinct instance + 1 ops web pod.
    assert result.defaults.pods == 13
    assert result.defaults.identities == 13
    impacts = {i.key: i for i in result.defaults.impacts}
    assert impacts["build-id"].identities_saved == 5
    assert impacts["build-id"].kind == "hash"
    assert impacts["instance"].kind == "per-pod"
    assert "pod-template-hash" not in impacts
    assert "statefulset.kubernetes.io/pod-name" not in impacts
    multipliers = {f.message.split()[1] for f in result.findings if f.rule == "identity-multiplier"}
    assert multipliers == {"build-id", "instance"}


def test_identity_count_with_patterns_from_the_flag() -> None:
    cluster = FakeCluster(shop_pods(), {"labels": "!build-id"})
    result = L.analyse_cluster(cluster, "kube-system", "!build-id !instance")
    assert result.source == "--labels"
    assert result.configured is not None and result.defaults is not None
    # web@shop, db@shop (service account default), web@ops.
    assert result.configured.identities == 3
    assert result.defaults.identities == 13
    assert not [f for f in result.findings if f.severity is Severity.WARNING]


def test_identity_limit_warning() -> None:
    count = L.IdentityCount(identities=60000, pods=60000)
    (finding,) = L._identity_findings(count, "x")
    assert finding.severity is Severity.WARNING and finding.rule == "identity-limit"
    (finding,) = L._identity_findings(L.IdentityCount(70000, 70000), "x")
    assert finding.severity is Severity.ERROR
    assert L._identity_findings(L.IdentityCount(100, 100), "x") == []


def test_missing_configmap_without_flag_is_a_clear_error() -> None:
    with pytest.raises(CiliumctlError, match="cilium-config not found"):
        L.analyse_cluster(FakeCluster([], None), "kube-system", None)


def test_namespace_labels_and_cluster_name_are_part_of_the_identity() -> None:
    labels = L.pod_labels(pod("p", "shop", {"app": "x"}), {"team": "shop"}, "c1")
    assert labels == {
        "app": "x",
        "io.kubernetes.pod.namespace": "shop",
        "io.cilium.k8s.namespace.labels.team": "shop",
        "io.cilium.k8s.policy.serviceaccount": "default",
        "io.cilium.k8s.policy.cluster": "c1",
    }


@settings(max_examples=300, deadline=None)
@given(patterns=st.lists(st.text(max_size=12), max_size=5), key=st.text(max_size=20))
def test_any_pattern_gives_findings_not_exceptions(patterns: list[str], key: str) -> None:
    label_filter, findings = L.build_filter(patterns)
    label_filter.relevant(key)
    for finding in findings:
        assert finding.message and finding.fix


def cilium(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip


def test_cli_labels() -> None:
    good = cilium("validate", "labels", "--labels", r"k8s:app !controller-uid", "-o", "json")
    assert good.returncode == 0, good.stderr
    data = json.loads(good.stdout)
    assert data["allowList"] is True
    assert {"pattern": "k8s:app", "source": "k8s", "regex": "app", "type": "include",
            "origin": "user"} in data["patterns"]  # fmt: skip
    bad = cilium("validate", "labels", "app(?=x)")
    assert bad.returncode == 1
    assert "not a valid RE2 regular expression" in bad.stdout
    warn = cilium("validate", "labels", "--warnings-as-errors", "app.kubernetes.io")
    assert warn.returncode == 1
    assert cilium("validate", "labels").returncode == 2


def test_relevance_is_worked_out_once_per_key_and_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent asks for every label of every pod update: each (key, source) is matched
    against the patterns once, and the remembered answer is the same one."""
    flt = L.default_filter()
    keys = ["app", "pod-template-hash", "io.kubernetes.pod.namespace", "controller-uid"]
    first = {k: flt.relevant(k) for k in keys}
    assert first["app"] is True and first["pod-template-hash"] is False

    def no_more_matching(*_a: Any) -> None:
        raise AssertionError("matched again")

    monkeypatch.setattr(L.LabelPattern, "match_length", no_more_matching)
    assert {k: flt.relevant(k) for k in keys} == first
    with pytest.raises(AssertionError, match="matched again"):
        flt.relevant("app", "container")  # another source is another question
