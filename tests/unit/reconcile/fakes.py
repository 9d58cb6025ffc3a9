"""An in-memory cluster and Helm for the reconciler's unit tests (the integration tests use
the real dev cluster). Server-side apply is modelled as a deep merge of the applied object
over the live one, which is what the reconciler relies on for its decisions."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ciliumctl import yamlio
from ciliumctl.k8s.errors import FieldCause, InvalidError, NotFoundError
from ciliumctl.reconcile import release as rel
from ciliumctl.reconcile.objects import Key

Obj = dict[str, Any]
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "CiliumClusterwideNetworkPolicy",
}


@dataclass(frozen=True)
class Info:
    namespaced: bool


def merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base.get(k), v)
        return out
    return copy.deepcopy(over)


class FakeCluster:
    server = "https://127.0.0.1:6443"
    context = "fake"

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.calls: list[tuple[str, str]] = []
        self.invalid: dict[str, list[FieldCause]] = {}
        self.version = 0
        for name in ("kube-system", "default"):
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # reads
    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        from ciliumctl.reconcile.objects import group_of

        found = self.objects.get(Key(group_of(api_version), kind, namespace or "", name))
        return copy.deepcopy(found) if found is not None else None

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[Obj]:
        wanted = dict(s.split("=", 1) for s in (label_selector or "").split(",") if s)
        return [
            copy.deepcopy(o)
            for k, o in self.objects.items()
            if k.kind == kind
            and (namespace is None or k.namespace == namespace)
            and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in wanted.items())
        ]

    def request(self, method: str, path: str, *, what: str) -> Any:
        return {"groups": []}

    def server_version(self) -> Obj:
        return {"gitVersion": "v1.34.4"}

    def resource(self, api_version: str, kind: str) -> Info:
        return Info(kind not in CLUSTER_SCOPED)

    # writes
    def apply(
        self,
        obj: Obj,
        *,
        field_manager: str = "ciliumctl",
        force: bool = False,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> Obj:
        key = Key.of(obj)
        if key.name in self.invalid:
            raise InvalidError(f"apply {key}: invalid", self.invalid[key.name])
        if key.namespace and Key("", "Namespace", "", key.namespace) not in self.objects:
            raise NotFoundError(f"namespaces {key.namespace} not found")
        live = self.objects.get(key)
        result = merge(live or {}, obj)
        result["metadata"]["managedFields"] = [{"manager": field_manager}]
        if dry_run:
            return result
        self.version += 1
        result["metadata"]["resourceVersion"] = str(self.version)
        self.calls.append(("apply", str(key)))
        self.objects[key] = result
        return copy.deepcopy(result)

    def put(self, obj: Obj) -> None:
        """Store an object as another actor would (no call recorded)."""
        self.version += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.objects[Key.of(stored)] = stored

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        ignore_not_found: bool = True,
    ) -> bool:
        from ciliumctl.reconcile.objects import group_of

        key = Key(group_of(api_version), kind, namespace or "", name)
        self.calls.append(("delete", str(key)))
        return self.objects.pop(key, None) is not None

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
    ) -> Obj:
        raise AssertionError("not expected")

    def status_of(self, ref: Any) -> Any:
        raise AssertionError("not expected")

    def wait_ready(self, refs: list[Any], *, timeout: float, interval: float = 1.0) -> Any:
        self.calls.append(("wait", ",".join(sorted(r.kind for r in refs))))
        return {}


def fake_chart(root: Path, objects: list[Obj]) -> Path:
    """A chart directory whose crds/ holds the CRDs among ``objects`` (values from ours)."""
    from ciliumctl.versions import chart_dir

    chart = root / "_chart"
    (chart / "crds").mkdir(parents=True, exist_ok=True)
    for name in ("values.yaml", "unmodelled-keys.txt", "Chart.yaml"):
        if (chart_dir() / name).exists() and not (chart / name).exists():
            (chart / name).symlink_to(chart_dir() / name)
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    (chart / "crds" / "crds.yaml").write_text(yamlio.dump_all(crds))
    return chart


class FakeHelm:
    """Renders a fixed list of objects; install/upgrade stores them and a release record."""

    def __init__(self, cluster: FakeCluster, objects: list[Obj]) -> None:
        self.cluster = cluster
        self.objects = objects
        self.revision = 0
        self.calls: list[str] = []

    def template(
        self,
        release: str,
        namespace: str,
        chart: Path,
        values: dict[str, Any],
        *,
        include_crds: bool = False,
        is_upgrade: bool = False,
        kube_version: str | None = None,
        api_versions: list[str] | None = None,
    ) -> list[Obj]:
        return [
            copy.deepcopy(o)
            for o in self.objects
            if include_crds or o["kind"] != "CustomResourceDefinition"
        ]

    def install_or_upgrade(
        self, release: str, namespace: str, chart: Path, values: dict[str, Any], **kwargs: Any
    ) -> dict[str, Any]:
        self.calls.append("upgrade" if self.revision else "install")
        self.cluster.calls.append(("helm", self.calls[-1]))
        manifest = []
        for obj in self.objects:
            if obj["kind"] == "CustomResourceDefinition":
                continue
            manifest.append(obj)
            self.cluster.put(obj)
        self.revision += 1
        self.record(release, namespace, values, manifest, "deployed")
        return {"version": self.revision}

    def record(
        self, release: str, namespace: str, values: dict[str, Any], manifest: list[Obj], status: str
    ) -> None:
        data = rel.encode(
            {
                "info": {"status": status},
                "config": values,
                "manifest": yamlio.dump_all(manifest),
                "chart": {"metadata": {"appVersion": values.get("ciliumVersion")}},
            }
        )
        self.cluster.put(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": f"sh.helm.release.v1.{release}.v{self.revision}",
                    "namespace": namespace,
                    "labels": {
                        "owner": "helm",
                        "name": release,
                        "status": status,
                        "version": str(self.revision),
                    },
                },
                "data": {"release": data},
            }
        )

    def rollback(self, release: str, namespace: str, revision: int | None = None, **_: Any) -> None:
        self.calls.append(f"rollback {revision}")

    def uninstall(self, release: str, namespace: str, **_: Any) -> None:
        self.calls.append("uninstall")
