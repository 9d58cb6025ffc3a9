"""A small in-memory stand-in for the Kubernetes client (unit tests only; the integration
tests use the real API server). Deployments and DaemonSets become Running pods at once;
``exec`` answers from a rule the test supplies."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ciliumctl.k8s.errors import ConflictError

Obj = dict[str, Any]


@dataclass(frozen=True)
class Exec:
    stdout: bytes
    stderr: bytes
    exit_code: int


class FakeCluster:
    def __init__(self, nodes: int = 2, rule: Callable[[str, list[str]], Exec] | None = None):
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.lock = threading.Lock()
        self.execs: list[tuple[str, list[str], float]] = []
        self.rule = rule or (lambda pod, cmd: Exec(b"", b"", 0))
        self.exec_delay = 0.0
        self._ip = 10
        self.node_names = [f"node-{i}" for i in range(nodes)]
        for i, name in enumerate(self.node_names):
            self._put(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                    "status": {
                        "addresses": [{"type": "InternalIP", "address": f"192.0.2.{i + 1}"}]
                    },
                }
            )

    def _key(self, kind: str, name: str, ns: str | None) -> tuple[str, str, str]:
        return (kind, ns or "", name)

    def _put(self, obj: Obj) -> None:
        meta = obj["metadata"]
        self.objects[self._key(obj["kind"], meta["name"], meta.get("namespace"))] = obj

    def get_or_none(self, api_version: str, kind: str, name: str, namespace: str | None = None):
        with self.lock:
            obj = self.objects.get(self._key(kind, name, namespace))
            return copy.deepcopy(obj) if obj else None

    def list(
        self,
        api_version,
        kind,
        namespace=None,
        *,
        label_selector=None,
        field_selector=None,
        page_size=500,
    ):
        with self.lock:
            out = []
            for (k, ns, _), obj in self.objects.items():
                if k != kind or (namespace and ns != namespace):
                    continue
                labels = obj["metadata"].get("labels") or {}
                if label_selector:
                    ok = True
                    for term in label_selector.split(","):
                        key, eq, value = term.partition("=")
                        if (eq and labels.get(key) != value) or (not eq and key not in labels):
                            ok = False
                    if not ok:
                        continue
                out.append(copy.deepcopy(obj))
            return out

    def create(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        with self.lock:
            key = self._key(obj["kind"], meta["name"], meta.get("namespace"))
            if key in self.objects:
                raise ConflictError(f"{obj['kind']} {meta['name']} exists")
            meta["generation"] = 1
            self.objects[key] = obj
            if obj["kind"] == "Deployment":
                obj["status"] = {
                    "observedGeneration": 1,
                    "replicas": 1,
                    "updatedReplicas": 1,
                    "readyReplicas": 1,
                    "availableReplicas": 1,
                    "conditions": [
                        {
                            "type": "Progressing",
                            "status": "True",
                            "reason": "NewReplicaSetAvailable",
                        },
                        {"type": "Available", "status": "True"},
                    ],
                }
                self._pod(obj, self._node_for(obj))
            elif obj["kind"] == "DaemonSet":
                n = len(self.node_names)
                obj["status"] = {
                    "observedGeneration": 1,
                    "desiredNumberScheduled": n,
                    "currentNumberScheduled": n,
                    "updatedNumberScheduled": n,
                    "numberAvailable": n,
                    "numberReady": n,
                }
                for node in self.node_names:
                    self._pod(obj, node, host=True)
            elif obj["kind"] == "Service" and obj["spec"].get("type") == "NodePort":
                for port in obj["spec"]["ports"]:
                    port["nodePort"] = 30000 + len(self.objects)
        return obj

    def _node_for(self, dep: Obj) -> str:
        affinity = dep["spec"]["template"]["spec"].get("affinity") or {}
        return self.node_names[1] if "podAntiAffinity" in affinity else self.node_names[0]

    def _pod(self, owner: Obj, node: str, host: bool = False) -> None:
        self._ip += 1
        ns = owner["metadata"]["namespace"]
        name = f"{owner['metadata']['name']}-{node if host else 'abc'}"
        tmpl = owner["spec"]["template"]
        ip = f"192.0.2.{self.node_names.index(node) + 1}" if host else f"10.0.0.{self._ip}"
        self.objects[self._key("Pod", name, ns)] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": dict(tmpl["metadata"]["labels"])},
            "spec": {**copy.deepcopy(tmpl["spec"]), "nodeName": node},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
        }

    def delete(
        self,
        api_version,
        kind,
        name,
        namespace=None,
        *,
        propagation="Background",
        ignore_not_found=True,
    ):
        with self.lock:
            key = self._key(kind, name, namespace)
            if key not in self.objects:
                return False
            del self.objects[key]
            if kind == "Namespace":
                for k in [k for k in self.objects if k[1] == name]:
                    del self.objects[k]
            if kind in ("Deployment", "DaemonSet"):
                for k in [
                    k
                    for k in self.objects
                    if k[0] == "Pod" and k[1] == namespace and k[2].startswith(name + "-")
                ]:
                    del self.objects[k]
            return True

    def exec(self, namespace, pod, command, container=None, *, stdin=None, timeout=60.0):
        if self.exec_delay:
            time.sleep(self.exec_delay)
        with self.lock:
            self.execs.append((f"{namespace}/{pod}", list(command), time.monotonic()))
        return self.rule(f"{namespace}/{pod}", list(command))

    def exec_stream(
        self,
        namespace,
        pod,
        command,
        container=None,
        *,
        on_stdout,
        timeout=60.0,
        stderr_limit=65536,
    ):
        raise AssertionError("no agents in the fake cluster")

    def pod_logs(self, namespace, pod, container=None, **kwargs) -> bytes:
        return b""
