"""migrate-kpr checks that need no cluster: preflight errors and kube-proxy's affinity."""

from __future__ import annotations

from typing import Any

import pytest

from ciliumctl.errors import CiliumctlError
from ciliumctl.nodeconfig import migrate

NS = "kube-system"
CRD = {"spec": {"versions": [{"name": "v2", "served": True}, {"name": "v2alpha1", "served": True}]}}


class FakeClient:
    """Answers get_or_none from a dict; records writes (there must be none here)."""

    def __init__(self, objects: dict[tuple[str, str, str | None], dict[str, Any]]) -> None:
        self.objects = objects
        self.writes: list[Any] = []

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self.objects.get((kind, name, namespace))

    def list(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return [{"metadata": {"name": "n1", "labels": {}}}]

    def apply(self, obj: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
        self.writes.append(obj)
        return obj

    def patch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.writes.append(args)
        return {}

    def delete(self, *args: Any, **kwargs: Any) -> bool:
        self.writes.append(args)
        return True

    def request(self, method: str, path: str, *, what: str, body: Any = None) -> Any:
        self.writes.append(path)
        return {}


def agent_ds(env: dict[str, str]) -> dict[str, Any]:
    return {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "cilium-agent",
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                        }
                    ]
                }
            }
        }
    }


def objects(env: dict[str, str], kube_proxy: bool = True) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {
        ("DaemonSet", "cilium", NS): agent_ds(env),
        ("CustomResourceDefinition", "ciliumnodeconfigs.cilium.io", None): CRD,
        ("ConfigMap", "cilium-config", NS): {"data": {"kube-proxy-replacement": "false"}},
    }
    if kube_proxy:
        out[("DaemonSet", "kube-proxy", NS)] = {"spec": {"template": {"spec": {}}}}
    return out


def test_missing_k8s_service_host_is_refused_before_any_change() -> None:
    client = FakeClient(objects({}))
    with pytest.raises(CiliumctlError, match="k8sServiceHost/k8sServicePort"):
        migrate.migrate(client, NS)
    assert client.writes == []


def test_missing_kube_proxy_is_refused() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
    client = FakeClient(objects(env, kube_proxy=False))
    with pytest.raises(CiliumctlError, match="kube-proxy not found"):
        migrate.migrate(client, NS)
    assert client.writes == []


def test_missing_crd_is_refused() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
    objs = objects(env)
    del objs[("CustomResourceDefinition", "ciliumnodeconfigs.cilium.io", None)]
    client = FakeClient(objs)
    with pytest.raises(CiliumctlError, match="CRD"):
        migrate.migrate(client, NS)


def test_dry_run_lists_every_step_and_writes_nothing() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
    client = FakeClient(objects(env))
    report = migrate.migrate(client, NS, dry_run=True, drain=True)
    assert report.steps[0].startswith("create CiliumNodeConfig kube-proxy-replacement")
    assert "patch DaemonSet kube-system/kube-proxy" in report.steps[1]
    assert "cordon and drain" in report.steps[2] and report.steps[2].startswith("migrate n1")
    assert client.writes == []


def test_affinity_is_added_to_every_term_once() -> None:
    ds = {
        "spec": {
            "template": {
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": "os", "operator": "In", "values": ["linux"]}
                                        ]
                                    },
                                    {
                                        "matchFields": [
                                            {
                                                "key": "metadata.name",
                                                "operator": "In",
                                                "values": ["a"],
                                            }
                                        ]
                                    },
                                ]
                            }
                        }
                    }
                }
            }
        }
    }
    terms, present = migrate._affinity_terms(ds)
    assert not present
    assert all(migrate._EXPR in t["matchExpressions"] for t in terms)
    assert terms[0]["matchExpressions"][0]["key"] == "os"
    ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"] = terms
    again, present = migrate._affinity_terms(ds)
    assert present and again == terms
