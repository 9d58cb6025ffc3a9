"""Plan and apply decisions against an in-memory cluster and Helm (see fakes.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.k8s.errors import FieldCause
from ciliumctl.reconcile import apply as applying
from ciliumctl.reconcile import inventory as inv
from ciliumctl.reconcile import plan as planning
from ciliumctl.reconcile.errors import DesiredStateError
from ciliumctl.reconcile.objects import INVENTORY_ANNOTATION, PRUNE_ANNOTATION, Key
from ciliumctl.reconcile.source import DesiredState, load
from ciliumctl.versions import chart_dir

from .fakes import FakeCluster, FakeHelm, fake_chart

NS = "kube-system"
CHART = [
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "ciliumnetworkpolicies.cilium.io"},
        "spec": {"group": "cilium.io"},
    },
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cilium-config", "namespace": NS},
        "data": {"debug": "false", "tunnel-protocol": "vxlan"},
    },
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hubble-server-certs", "namespace": NS},
        "data": {"ca.crt": "Q0E=", "tls.crt": "Q0VSVA==", "tls.key": "S0VZ"},
    },
    {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "cilium", "namespace": NS},
        "spec": {"template": {"spec": {"containers": [{"name": "cilium-agent"}]}}},
    },
]


def directory(tmp_path: Path, policies: dict[str, str] | None = None) -> Path:
    fake_chart(tmp_path, CHART)
    (tmp_path / "cilium.yaml").write_text("version: 1.18.5\n")
    for name, text in (policies or {}).items():
        path = tmp_path / "policies" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def policy(name: str, port: str = "80") -> str:
    return f"""\
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {{name: {name}, namespace: default}}
        spec:
          endpointSelector: {{matchLabels: {{app: {name}}}}}
          ingress:
            - toPorts: [{{ports: [{{port: "{port}", protocol: TCP}}]}}]
        """


@pytest.fixture
def world(tmp_path: Path) -> tuple[FakeCluster, FakeHelm, DesiredState]:
    cluster = FakeCluster()
    helm = FakeHelm(cluster, CHART)
    root = directory(tmp_path, {"a.yaml": policy("a"), "b.yaml": policy("b")})
    return cluster, helm, load(root, chart_dir())


def compute(cluster: FakeCluster, helm: FakeHelm, state: DesiredState) -> planning.Plan:
    return planning.compute(cluster, helm, state, state.directory / "_chart")


def actions(plan: planning.Plan) -> dict[str, str]:
    return {str(c.key): c.action for c in plan.changes}


def run_apply(
    cluster: FakeCluster, helm: FakeHelm, state: DesiredState, **kw: Any
) -> applying.ApplyResult:
    return applying.apply(cluster, helm, state, state.directory / "_chart", wait=False, **kw)


def test_empty_cluster_everything_created(
    world: tuple[FakeCluster, FakeHelm, DesiredState],
) -> None:
    cluster, helm, state = world
    plan = compute(cluster, helm, state)
    assert set(actions(plan).values()) == {"created"} and len(plan.changes) == 6
    assert plan.helm_needed and not plan.in_sync
    via = {str(c.key): c.via for c in plan.changes}
    assert via["ConfigMap kube-system/cilium-config"] == "helm"
    assert via["CustomResourceDefinition ciliumnetworkpolicies.cilium.io"] == "ssa"
    assert via["CiliumNetworkPolicy default/a"] == "ssa"
    secret = next(c for c in plan.changes if c.key.kind == "Secret")
    assert "Q0VSVA==" not in secret.diff and "***" in secret.diff
    assert plan.as_dict()["summary"] == {"created": 6, "changed": 0, "deleted": 0, "unchanged": 0}


def test_apply_stages_then_nothing_to_do(world: tuple[FakeCluster, FakeHelm, DesiredState]) -> None:
    cluster, helm, state = world
    result = run_apply(cluster, helm, state)
    order = [c for c in cluster.calls if c[0] != "apply" or "inventory" not in c[1]]
    assert order == [
        ("apply", "CustomResourceDefinition ciliumnetworkpolicies.cilium.io"),
        ("wait", "CustomResourceDefinition"),
        ("helm", "install"),
        ("apply", "CiliumNetworkPolicy default/a"),
        ("apply", "CiliumNetworkPolicy default/b"),
    ]
    assert result.helm_action == "install" and len(result.applied) == 6
    stored = inv.read(cluster, NS, "cilium")
    assert stored is not None and stored.complete and len(stored.entries) == 6
    # the second run: in sync, nothing sent, no resourceVersion moves
    versions = {k: o["metadata"]["resourceVersion"] for k, o in cluster.objects.items()}
    cluster.calls.clear()
    plan = compute(cluster, helm, state)
    assert plan.in_sync and not plan.helm_needed, [c.diff for c in plan.drifted]
    again = run_apply(cluster, helm, state)
    assert again.applied == [] and cluster.calls == [] and helm.calls == ["install"]
    assert versions == {k: o["metadata"]["resourceVersion"] for k, o in cluster.objects.items()}


def test_drift_is_shown_and_corrected(world: tuple[FakeCluster, FakeHelm, DesiredState]) -> None:
    cluster, helm, state = world
    run_apply(cluster, helm, state)
    cm = cluster.get_or_none("v1", "ConfigMap", "cilium-config", NS)
    assert cm is not None
    cm["data"]["debug"] = "true"
    cluster.put(cm)
    # rotated certificates do not count
    certs = cluster.get_or_none("v1", "Secret", "hubble-server-certs", NS)
    assert certs is not None
    certs["data"]["tls.crt"] = "Uk9UQVRFRA=="
    cluster.put(certs)
    pol = cluster.get_or_none("cilium.io/v2", "CiliumNetworkPolicy", "a", "default")
    assert pol is not None
    pol["spec"]["ingress"][0]["toPorts"][0]["ports"][0]["port"] = "8080"
    cluster.put(pol)
    plan = compute(cluster, helm, state)
    assert {str(c.key): c.action for c in plan.drifted} == {
        "ConfigMap kube-system/cilium-config": "changed",
        "CiliumNetworkPolicy default/a": "changed",
    }
    cm_diff = next(c.diff for c in plan.drifted if c.key.kind == "ConfigMap")
    assert "-  debug: 'true'" in cm_diff and "+  debug: 'false'" in cm_diff
    result = run_apply(cluster, helm, state)
    assert result.helm_action == "upgrade"
    assert compute(cluster, helm, state).in_sync
    assert (
        cluster.objects[Key("", "Secret", NS, "hubble-server-certs")]["data"]["tls.crt"]
        == "Q0VSVA=="
    )


def test_prune_only_what_ciliumctl_created(
    world: tuple[FakeCluster, FakeHelm, DesiredState], tmp_path: Path
) -> None:
    cluster, helm, state = world
    run_apply(cluster, helm, state)
    # another tool's policy in the previous inventory without our annotation is never pruned
    foreign = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "foreign", "namespace": "default"},
        "spec": {},
    }
    cluster.put(foreign)
    stored = inv.read(cluster, NS, "cilium")
    assert stored is not None
    inv.write(
        cluster,
        NS,
        "cilium",
        [*stored.entries, inv.Entry("cilium.io/v2", "CiliumNetworkPolicy", "default", "foreign")],
        complete=True,
        version="1.18.5",
    )
    (tmp_path / "policies" / "b.yaml").unlink()
    smaller = load(tmp_path, chart_dir())
    plan = compute(cluster, helm, smaller)
    assert {str(c.key): c.action for c in plan.drifted} == {
        "CiliumNetworkPolicy default/b": "deleted"
    }
    assert [(str(k), "not created by" in r) for k, r in plan.kept] == [
        ("CiliumNetworkPolicy default/foreign", True)
    ]
    kept = run_apply(cluster, helm, smaller, prune=False)
    assert (
        kept.pruned == []
        and Key("cilium.io", "CiliumNetworkPolicy", "default", "b") in cluster.objects
    )
    stored = inv.read(cluster, NS, "cilium")
    assert stored is not None and any(e.name == "b" for e in stored.entries)  # still tracked
    result = run_apply(cluster, helm, smaller)
    assert [str(c.key) for c in result.pruned] == ["CiliumNetworkPolicy default/b"]
    assert Key("cilium.io", "CiliumNetworkPolicy", "default", "foreign") in cluster.objects
    stored = inv.read(cluster, NS, "cilium")
    assert stored is not None and not any(e.name in ("b", "foreign") for e in stored.entries)


def test_prune_opt_out(world: tuple[FakeCluster, FakeHelm, DesiredState], tmp_path: Path) -> None:
    cluster, helm, state = world
    run_apply(cluster, helm, state)
    b = cluster.get_or_none("cilium.io/v2", "CiliumNetworkPolicy", "b", "default")
    assert b is not None and b["metadata"]["annotations"][INVENTORY_ANNOTATION] == "cilium"
    b["metadata"]["annotations"][PRUNE_ANNOTATION] = "false"
    cluster.put(b)
    (tmp_path / "policies" / "b.yaml").unlink()
    plan = compute(cluster, helm, load(tmp_path, chart_dir()))
    assert plan.drifted == [] and "opted out" in plan.kept[0][1]


def test_chart_object_dropped_by_the_render_is_deleted_by_helm(
    world: tuple[FakeCluster, FakeHelm, DesiredState],
) -> None:
    cluster, helm, state = world
    run_apply(cluster, helm, state)
    helm.objects = [o for o in CHART if o["kind"] != "DaemonSet"]
    (state.directory / "_chart" / "Chart.yaml").unlink()  # a new chart version
    (state.directory / "_chart" / "Chart.yaml").write_text("version: 2\n")
    plan = compute(cluster, helm, state)
    (gone,) = plan.drifted
    assert (str(gone.key), gone.action, gone.via) == (
        "DaemonSet kube-system/cilium",
        "deleted",
        "helm",
    )
    assert plan.helm_needed


def test_dry_run_changes_nothing(world: tuple[FakeCluster, FakeHelm, DesiredState]) -> None:
    cluster, helm, state = world
    result = run_apply(cluster, helm, state, dry_run=True)
    assert result.dry_run and len(result.plan.drifted) == 6
    assert cluster.calls == [] and helm.calls == []


def test_rejected_object_names_its_file(world: tuple[FakeCluster, FakeHelm, DesiredState]) -> None:
    cluster, helm, state = world
    cluster.invalid["b"] = [
        FieldCause("spec.ingress[0]", "Unsupported value", "FieldValueNotSupported")
    ]
    with pytest.raises(DesiredStateError) as exc:
        run_apply(cluster, helm, state)
    (problem,) = exc.value.problems
    assert problem.file.endswith("policies/b.yaml") and problem.line == 1
    assert "spec.ingress[0]: Unsupported value" in problem.message
    assert cluster.calls == [] and helm.calls == []


def test_object_rendered_by_the_chart_is_refused(tmp_path: Path) -> None:
    cluster = FakeCluster()
    helm = FakeHelm(cluster, CHART)
    directory(tmp_path)
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cilium-config, namespace: kube-system}\n"
    )
    with pytest.raises(DesiredStateError) as exc:
        compute(cluster, helm, load(tmp_path, chart_dir()))
    assert "extra/cm.yaml" in str(exc.value) and "rendered by the chart" in str(exc.value)


def test_untested_upgrade_path_is_refused(
    world: tuple[FakeCluster, FakeHelm, DesiredState],
) -> None:
    cluster, helm, state = world
    helm.revision = 1
    helm.record("cilium", NS, {"ciliumVersion": "1.16.3"}, [], "deployed")
    with pytest.raises(DesiredStateError) as exc:
        compute(cluster, helm, state)
    assert "cilium.yaml: version:" in str(exc.value) and "skips minor 1.17" in str(exc.value)


def test_interrupted_upgrade_is_repaired(world: tuple[FakeCluster, FakeHelm, DesiredState]) -> None:
    cluster, helm, state = world
    run_apply(cluster, helm, state)
    helm.revision = 2
    helm.record("cilium", NS, {"ciliumVersion": "1.18.5"}, [], "pending-upgrade")
    plan = compute(cluster, helm, state)
    assert (
        plan.helm_needed and plan.release is not None and plan.release.status == "pending-upgrade"
    )
    run_apply(cluster, helm, state)
    assert helm.calls == ["install", "rollback 1", "upgrade"]


def test_config_change_detection(world: tuple[FakeCluster, FakeHelm, DesiredState]) -> None:
    cluster, helm, state = world
    run_apply(cluster, helm, state)
    cm = cluster.get_or_none("v1", "ConfigMap", "cilium-config", NS)
    assert cm is not None
    cm["data"]["debug"] = "true"
    cluster.put(cm)
    assert applying.config_changed(compute(cluster, helm, state))
    run_apply(cluster, helm, state)
    assert not applying.config_changed(compute(cluster, helm, state))


class CountingHelm(FakeHelm):
    renders = 0

    def template(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        self.renders += 1
        return super().template(*args, **kwargs)


def test_render_cache_holds_no_secret_values(
    world: tuple[FakeCluster, FakeHelm, DesiredState], cache_home: Path
) -> None:
    cluster, _, state = world
    helm = CountingHelm(cluster, CHART)
    run_apply(cluster, helm, state)
    renders = helm.renders
    assert compute(cluster, helm, state).in_sync
    assert helm.renders == renders  # the same chart, values and cluster: no new render
    (cached,) = (cache_home / "renders").glob("*.json")
    text = cached.read_text()
    assert "hubble-server-certs" in text
    for value in ("Q0E=", "Q0VSVA==", "S0VZ"):
        assert value not in text
    # a certificate Secret deleted by hand: the cached render lacks its data, so it is not
    # dry-run (the API server would refuse a TLS Secret without a certificate); Helm, which
    # renders it in full, creates it
    del cluster.objects[Key("", "Secret", NS, "hubble-server-certs")]
    cluster.invalid["hubble-server-certs"] = [FieldCause("data[tls.crt]", "Required value")]
    (gone,) = compute(cluster, helm, state).drifted
    assert (str(gone.key), gone.action, gone.via) == (
        "Secret kube-system/hubble-server-certs",
        "created",
        "helm",
    )
    assert run_apply(cluster, helm, state).helm_action == "upgrade"
    del cluster.invalid["hubble-server-certs"]
    # a Secret with a value no rule ignores makes the render uncacheable
    token = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "token", "namespace": NS},
        "data": {"token": "c2VjcmV0"},
    }
    helm.objects = [*CHART, token]
    (state.directory / "_chart" / "values.yaml").unlink()
    (state.directory / "_chart" / "values.yaml").symlink_to(chart_dir() / "values.yaml")
    (state.directory / "_chart" / "extra.txt").write_text("changed chart")
    plan = compute(cluster, helm, state)
    assert any(c.key.name == "token" and c.action == "created" for c in plan.changes)
    assert all("c2VjcmV0" not in p.read_text() for p in cached.parent.glob("*.json"))
    renders = helm.renders
    compute(cluster, helm, state)
    assert helm.renders == renders + 1  # not cached: rendered again
