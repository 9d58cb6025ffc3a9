"""The watch loop (metrics, backoff, events, git pull, stop) and the Argo CD / Flux export."""

from __future__ import annotations

import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ciliumctl import yamlio
from ciliumctl.errors import UsageError
from ciliumctl.reconcile import export, watch
from ciliumctl.reconcile.errors import ReconcileError
from ciliumctl.reconcile.source import DesiredState, load
from ciliumctl.versions import chart_dir

from .fakes import FakeCluster, FakeHelm
from .test_plan_apply import CHART, directory, policy

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "gitops"


class EventCluster(FakeCluster):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        self.events.append(obj)
        return obj


def test_backoff_doubles_and_caps() -> None:
    options = watch.WatchOptions(interval=60, backoff_initial=5, backoff_max=30)
    assert [watch.backoff_delay(n, options) for n in range(6)] == [60, 5, 10, 20, 30, 30]


@pytest.mark.parametrize(
    ("text", "addr"),
    [("127.0.0.1:9962", ("127.0.0.1", 9962)), (":80", ("0.0.0.0", 80)), ("[::1]:1", ("::1", 1))],
)
def test_parse_addr(text: str, addr: tuple[str, int]) -> None:
    assert watch.parse_addr(text) == addr


def test_parse_addr_rejects_garbage() -> None:
    with pytest.raises(UsageError):
        watch.parse_addr("localhost")


def test_metrics_are_served() -> None:
    metrics = watch.Metrics()
    metrics.sync("drift", 3, 0.5)
    metrics.error(0.1)
    server = watch.MetricsServer(metrics, "127.0.0.1:0").start()
    try:
        with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=5) as resp:
            text = resp.read().decode()
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    finally:
        server.stop()
    assert "ciliumctl_reconcile_drifted_objects 3\n" in text
    assert "ciliumctl_reconcile_errors_total 1\n" in text
    assert 'ciliumctl_reconcile_syncs_total{result="drift"} 1\n' in text
    assert 'ciliumctl_reconcile_syncs_total{result="error"} 1\n' in text
    stamp = next(
        line for line in text.splitlines() if line.startswith("ciliumctl_reconcile_last_success")
    )
    assert float(stamp.split()[1]) > 1.7e9


def test_loop_warns_then_corrects_with_events(tmp_path: Path) -> None:
    cluster = EventCluster()
    helm = FakeHelm(cluster, CHART)
    root = directory(tmp_path, {"a.yaml": policy("a")})
    logs: list[str] = []
    metrics = watch.Metrics()

    def run(mode: str, cycles: int) -> int:
        options = watch.WatchOptions(interval=0, mode=mode, max_cycles=cycles, wait=False)
        return watch.run(
            lambda: load(root, chart_dir()),
            cluster,
            helm,
            root / "_chart",
            root,
            options,
            threading.Event(),
            log=logs.append,
            metrics=metrics,
        )

    assert run("warn", 1) == 1
    assert "drift: 5 object(s)" in logs[-1] and helm.calls == []
    assert metrics.drifted == 5
    assert run("correct", 1) == 1
    assert logs[-1].startswith("sync 1: corrected") and helm.calls == ["install"]
    assert metrics.drifted == 0
    assert run("warn", 2) == 2
    assert "in sync" in logs[-1]
    reasons = [e["reason"] for e in cluster.events]
    assert reasons == ["DriftDetected", "Synced", "InSync", "InSync"]
    event = cluster.events[0]
    assert event["type"] == "Warning" and event["involvedObject"]["kind"] == "ConfigMap"
    assert event["involvedObject"]["name"] == "ciliumctl-inventory-cilium"
    assert metrics.syncs == {"drift": 1, "corrected": 1, "in-sync": 2}


def test_loop_survives_errors_and_stops(tmp_path: Path) -> None:
    cluster = EventCluster()
    helm = FakeHelm(cluster, CHART)
    directory(tmp_path)
    (tmp_path / "cilium.yaml").write_text("version: 1.16.0\n")
    logs: list[str] = []
    metrics = watch.Metrics()
    stop = threading.Event()
    options = watch.WatchOptions(interval=0, backoff_initial=0.01, backoff_max=0.02, max_cycles=3)
    cycles = watch.run(
        lambda: load(tmp_path, chart_dir()),
        cluster,
        helm,
        tmp_path / "_chart",
        tmp_path,
        options,
        stop,
        log=logs.append,
        metrics=metrics,
    )
    assert cycles == 3 and metrics.errors == 3
    assert all("error: invalid desired state" in line for line in logs)
    assert "cilium.yaml:1: version:" in logs[0] and "retry in 0s" in logs[0]
    stop.set()  # a stop request before the first cycle ends the loop at once
    assert (
        watch.run(
            lambda: load(tmp_path, chart_dir()),
            cluster,
            helm,
            tmp_path / "_chart",
            tmp_path,
            options,
            stop,
            log=logs.append,
        )
        == 0
    )


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_pull_fast_forwards_from_a_bare_repository(tmp_path: Path) -> None:
    bare, work, clone = tmp_path / "bare.git", tmp_path / "work", tmp_path / "clone"
    git("init", "--bare", "-q", str(bare), cwd=tmp_path)
    git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    for repo in (work,):
        git("config", "user.email", "t@example.com", cwd=repo)
        git("config", "user.name", "t", cwd=repo)
    (work / "cilium.yaml").write_text("version: 1.18.4\n")
    git("add", "cilium.yaml", cwd=work)
    git("commit", "-q", "-m", "one", cwd=work)
    git("push", "-q", "origin", "HEAD", cwd=work)
    git("clone", "-q", str(bare), str(clone), cwd=tmp_path)
    (work / "cilium.yaml").write_text("version: 1.18.5\n")
    git("commit", "-q", "-am", "two", cwd=work)
    git("push", "-q", "origin", "HEAD", cwd=work)
    watch.git_pull(clone)
    assert (clone / "cilium.yaml").read_text() == "version: 1.18.5\n"
    with pytest.raises(ReconcileError) as exc:
        watch.git_pull(tmp_path / "bare.git" / "hooks")
    assert "git pull --ff-only" in exc.value.message


def example() -> DesiredState:
    return load(EXAMPLE, chart_dir())


def test_argocd_export_follows_the_troubleshooting_page() -> None:
    state = example()
    git_src = export.GitSource("https://git.example/fleet.git", "main", "examples/gitops")
    app, cm = export.argocd(state, git_src)
    spec = app["spec"]
    assert "ServerSideApply=true" in spec["syncPolicy"]["syncOptions"]
    assert "RespectIgnoreDifferences=true" in spec["syncPolicy"]["syncOptions"]
    ignore = {(d["kind"], d.get("name")): d["jsonPointers"] for d in spec["ignoreDifferences"]}
    # exactly the entries the Argo CD troubleshooting page lists, and ours on top
    assert ignore[("ConfigMap", "hubble-ca-cert")] == ["/data/ca.crt"]
    for name in ("hubble-relay-client-certs", "hubble-server-certs"):
        assert ignore[("Secret", name)] == ["/data/ca.crt", "/data/tls.crt", "/data/tls.key"]
    assert ignore[("Deployment", "hubble-relay")] == ["/spec/replicas"]  # the user's rule
    chart, files = spec["sources"]
    assert (chart["chart"], chart["targetRevision"]) == ("cilium", "1.18.5")
    assert chart["helm"]["valuesObject"] == state.values
    assert files["path"] == "examples/gitops" and files["targetRevision"] == "main"
    assert "policies/*.yaml" in files["directory"]["include"]
    exclusions = yamlio.load(cm["data"]["resource.exclusions"])
    assert exclusions[0]["apiGroups"] == ["cilium.io"] and exclusions[0]["clusters"] == ["*"]
    assert "CiliumIdentity" in exclusions[0]["kinds"]
    text = export.render("argocd", [app, cm])
    assert "resource.exclusions: |" in text
    assert [d["kind"] for d in yamlio.load_all(text)] == ["Application", "ConfigMap"]


def test_flux_export() -> None:
    state = example()
    objects = export.flux(state, export.GitSource("u", "HEAD", "examples/gitops"))
    kinds = [o["kind"] for o in objects]
    assert kinds == [
        "HelmRepository",
        "HelmRelease",
        "Kustomization",
        "Kustomization",
        "Kustomization",
    ]
    release = objects[1]["spec"]
    assert release["chart"]["spec"]["version"] == "1.18.5" and release["values"] == state.values
    assert release["targetNamespace"] == release["storageNamespace"] == "kube-system"
    assert release["install"]["crds"] == "CreateReplace"
    targets = {
        (i["target"]["kind"], i["target"].get("name")) for i in release["driftDetection"]["ignore"]
    }
    assert ("Secret", "hubble-server-certs") in targets
    paths = sorted(o["spec"]["path"] for o in objects[2:])
    assert paths == [
        "./examples/gitops/extra",
        "./examples/gitops/nodeconfigs",
        "./examples/gitops/policies",
    ]


def test_git_source_from_a_clone(tmp_path: Path) -> None:
    git("init", "-q", str(tmp_path), cwd=tmp_path)
    git("remote", "add", "origin", "https://git.example/fleet.git", cwd=tmp_path)
    (tmp_path / "clusters" / "prod").mkdir(parents=True)
    found = export.git_source(tmp_path / "clusters" / "prod")
    assert found == export.GitSource("https://git.example/fleet.git", "HEAD", "clusters/prod")
    with pytest.raises(ReconcileError):
        export.git_source(tmp_path.parent / "nowhere-such")
