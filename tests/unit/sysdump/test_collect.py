"""The collector end to end with a small in-process fake of the cluster: objects from
dicts, logs from bytes, and exec run as local processes with the test stand-ins (as kwok
does on the dev cluster)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ciliumctl.k8s import ExecResult, KubeError, NotFoundError
from ciliumctl.sysdump.collect import Collector, SysdumpError
from ciliumctl.sysdump.plan import Options

STANDINS = Path(__file__).parents[2] / "integration" / "sysdump_standins"
SECRET = "hunter2-0123456789abcdef"


def helm_release(values: dict[str, Any]) -> str:
    rel = {
        "name": "cilium",
        "namespace": "kube-system",
        "version": 2,
        "info": {"status": "deployed", "description": "Upgrade complete"},
        "chart": {"metadata": {"name": "cilium", "version": "1.18.5", "appVersion": "1.18.5"}},
        "config": values,
    }
    raw = gzip.compress(json.dumps(rel).encode())
    return base64.b64encode(base64.b64encode(raw)).decode()


def pod(name: str, node: str, labels: dict[str, str], containers: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": c, "image": "x"} for c in containers]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": c, "ready": True, "restartCount": 0} for c in containers
            ],
        },
    }


class FakeCluster:
    """Just enough of ciliumctl.k8s.Client for a sysdump."""

    def __init__(self, workdir: Path, *, nodes: int = 2) -> None:
        self.workdir = workdir
        self.nodes = [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": f"node-{i}", "managedFields": [{"manager": "x"}]},
                "status": {"addresses": [{"type": "InternalIP", "address": f"10.0.0.{i}"}]},
            }
            for i in range(nodes)
        ]
        agents = [
            pod(f"cilium-{i}", f"node-{i}", {"k8s-app": "cilium"}, ["cilium-agent"])
            for i in range(nodes)
        ]
        operator = pod("cilium-operator-1", "node-0", {"io.cilium/app": "operator"}, ["op"])
        self.objects: dict[str, list[dict[str, Any]]] = {
            "Node": self.nodes,
            "Pod": [*agents, operator],
            "ConfigMap": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "cilium-config", "namespace": "kube-system"},
                    "data": {"kvstore-password": SECRET, "routing-mode": "tunnel"},
                }
            ],
            "Secret": [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": "sh.helm.release.v1.cilium.v2",
                        "namespace": "kube-system",
                        "labels": {
                            "owner": "helm",
                            "name": "cilium",
                            "status": "deployed",
                            "version": "2",
                        },
                    },
                    "data": {
                        "release": helm_release(
                            {"extraEnv": [{"name": "CILIUM_API_TOKEN", "value": SECRET}]}
                        )
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "creds", "namespace": "kube-system"},
                    "data": {"password": base64.b64encode(SECRET.encode()).decode()},
                },
            ],
        }
        self.logs = {
            ("cilium-0", "cilium-agent"): f"boot\nlevel=info password={SECRET}\n".encode() * 50,
        }
        self.no_exec = {"cilium-1"}

    def server_version(self) -> dict[str, Any]:
        return {"major": "1", "minor": "34", "gitVersion": "v1.34.4"}

    def iter_list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        if kind == "NetworkPolicy":
            raise NotFoundError(f"the API server does not serve {api_version}")
        wanted = dict(kv.split("=", 1) for kv in (label_selector or "").split(",") if kv)
        for obj in self.objects.get(kind, []):
            labels = obj["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in wanted.items()):
                yield obj

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        return list(self.iter_list(api_version, kind, namespace, label_selector=label_selector))

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return next((o for o in self.objects.get(kind, []) if o["metadata"]["name"] == name), None)

    def stream_pod_logs(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        *,
        since_time: datetime | None = None,
        limit_bytes: int | None = None,
        previous: bool = False,
        timestamps: bool = False,
    ) -> Iterator[bytes]:
        data = self.logs.get((pod, container or ""))
        if data is None:
            raise NotFoundError(f"no logs for {pod}/{container}", status=404)
        data = data[:limit_bytes] if limit_bytes else data
        for i in range(0, len(data), 100):
            yield data[i : i + 100]

    def exec_stream(
        self,
        namespace: str,
        pod: str,
        command: list[str],
        container: str | None = None,
        *,
        on_stdout: Callable[[bytes], None],
        timeout: float = 60.0,
    ) -> ExecResult:
        if pod in self.no_exec:
            raise KubeError(f"exec in pod {namespace}/{pod}: no exec found")
        env = dict(os.environ, PATH=f"{STANDINS}:{os.environ['PATH']}", CILIUM_ETCD_PASSWORD=SECRET)
        proc = subprocess.run(
            command, capture_output=True, cwd=self.workdir, env=env, timeout=timeout
        )
        on_stdout(proc.stdout)
        return ExecResult(b"", proc.stderr, proc.returncode)


def run(tmp_path: Path, **options: Any) -> tuple[Any, dict[str, bytes]]:
    cluster = FakeCluster(tmp_path)
    out = tmp_path / "out"
    collector = Collector(
        cluster, Options(output_filename=str(out / "dump-<ts>"), **options), version="t"
    )
    out.mkdir()
    result = collector.run()
    with zipfile.ZipFile(result.path) as zf:
        assert zf.testzip() is None
        root = result.path.name[: -len(".zip")]
        files = {n[len(root) + 1 :]: zf.read(n) for n in zf.namelist()}
    return result, files


def test_a_full_run_collects_redacts_and_reports(tmp_path: Path) -> None:
    result, files = run(tmp_path)
    blob = b"\n".join(files.values())
    assert SECRET.encode() not in blob
    assert base64.b64encode(SECRET.encode()) not in blob
    names = list(files)
    assert any(n.startswith("cilium-dbg-status-verbose-cilium-0-") for n in names)
    assert any(n.startswith("cilium-dbg-debuginfo-cilium-0-") for n in names)
    assert any(n.startswith("cilium-bugtool-cilium-0-") and "/cmd/" in n for n in names)
    assert not any("cilium-1-" in n and n.startswith("cilium-dbg") for n in names)
    nodes = yaml.safe_load(next(v for k, v in files.items() if k.startswith("k8s-nodes-")))
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["node-0", "node-1"]
    assert "managedFields" not in nodes["items"][0]["metadata"]
    summary = json.loads(files["summary.json"])
    assert summary["kubernetes"]["version"] == "v1.34.4"
    assert summary["cilium"]["version"] == "1.18.5"
    assert summary["cilium"]["helm_release"]["revision"] == 2
    assert summary["nodes"] == {"total": 2, "selected": 2, "selected_names": ["node-0", "node-1"]}
    failures = {f["task"]: f["error"] for f in summary["failures"]}
    assert any(t.endswith("in cilium-1") and "no exec found" in e for t, e in failures.items())
    assert any(t.startswith("logs cilium-1/cilium-agent") for t in failures)
    skipped = [line for line in files["sysdump.log"].decode().splitlines() if " skipped " in line]
    assert any("Kubernetes NetworkPolicy list" in line for line in skipped)
    redactions = json.loads(files["redactions.json"])
    assert redactions["total"] >= 4
    by_entry = {k.split("-20")[0]: sum(v.values()) for k, v in redactions["entries"].items()}
    assert by_entry["cilium-configmap"] == 1
    assert by_entry["cilium-helm-values"] == 1
    assert by_entry["logs-cilium-0-cilium-agent"] == 50
    assert "Secrets in kube-system" in files["sysdump.log"].decode()
    secrets = yaml.safe_load(next(v for k, v in files.items() if k.startswith("k8s-secrets-")))
    assert {s["metadata"]["name"]: s["keys"] for s in secrets["items"]}["creds"] == ["password"]
    assert result.summary["tasks"]["total"] == sum(
        1 for r in result.results if r.action != "inventory"
    )
    index = files["index.md"].decode()
    assert "Kubernetes: v1.34.4" in index and "## What failed" in index
    assert not result.interrupted and not result.collected_nothing


def test_no_redact_keeps_values_but_never_secret_data(tmp_path: Path) -> None:
    _, files = run(tmp_path, redact=False)
    blob = b"\n".join(files.values())
    assert SECRET.encode() in blob  # ConfigMap, Helm values, logs, command output
    assert base64.b64encode(SECRET.encode()) not in blob  # the Secret's data
    assert json.loads(files["redactions.json"])["enabled"] is False


def test_large_cluster_guard_waits_and_warns(tmp_path: Path) -> None:
    cluster = FakeCluster(tmp_path, nodes=25)
    waited: list[float] = []
    warnings: list[str] = []
    collector = Collector(
        cluster,
        Options(output_filename=str(tmp_path / "g"), quick=False),
        sleep=waited.append,
        on_warning=warnings.append,
    )
    collector.run()
    assert waited == [5.0]
    assert "large cluster: 25 nodes" in warnings[0]
    limited = Collector(
        cluster,
        Options(output_filename=str(tmp_path / "h"), node_list="node-1"),
        sleep=waited.append,
    )
    limited.run()
    assert waited == [5.0]


def test_unreachable_cluster_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    class Down(FakeCluster):
        def list(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
            raise KubeError("cannot reach the Kubernetes API server at https://x: refused")

    with pytest.raises(SysdumpError, match="cannot list the cluster's nodes"):
        Collector(Down(tmp_path), Options(output_filename=str(tmp_path / "d"))).run()
    assert not (tmp_path / "d.zip").exists()
