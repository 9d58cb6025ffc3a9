"""The Helm chart in charts/cilium, rendered by the real helm binary.

Golden files in tests/golden/chart/ hold the full rendering for a few value sets (generated
certificate and key material is replaced by a placeholder, since it changes at every render).
Regenerate them after an intended change with:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_chart.py

and review the diff. The other tests assert the facts the cilium CLI, the agent and the
upstream documentation rely on (names, labels, ports, probes, RBAC, version-specific
defaults), so a wrong golden update still fails loudly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ciliumctl.devcluster import binaries

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "cilium"
GOLDEN = ROOT / "tests" / "golden" / "chart"
KUBE_VERSION = binaries.KUBERNETES_VERSION.lstrip("v")
NAMESPACE = "kube-system"
ENVOY_IMAGE = (
    "quay.io/cilium/cilium-envoy:v1.34.12-1765374555-6a93b0bbba8d6dc75b651cbafeedb062b2997716"
    "@sha256:3108521821c6922695ff1f6ef24b09026c94b195283f8bfbfc0fa49356a156e1"
)

Obj = dict[str, Any]

#: The value sets with golden renderings.
SCENARIOS: dict[str, Obj] = {
    "default": {},
    "kube-proxy-replacement": {
        "kubeProxyReplacement": "true",
        "k8sServiceHost": "10.0.0.10",
        "k8sServicePort": 6443,
        "cluster": {"name": "prod-eu", "id": 7},
        "routingMode": "native",
        "ipv4NativeRoutingCIDR": "10.0.0.0/8",
        "autoDirectNodeRoutes": True,
        "MTU": 1450,
        "bpf": {"ctTcpMax": 1048576, "policyMapMax": 32768},
        "labels": "k8s:app k8s:io.kubernetes.pod.namespace",
        "extraConfig": {"enable-bpf-masquerade": "true", "custom-key": "1"},
    },
    "hubble-relay-ui-tls": {
        "hubble": {
            "metrics": {"enabled": ["dns", "drop", "tcp", "flow"], "tls": {"enabled": True}},
            "relay": {"enabled": True, "tls": {"server": {"enabled": True}}},
            "ui": {"enabled": True},
            "export": {"static": {"enabled": True, "allowList": ['{"verdict":["DROPPED"]}']}},
        },
    },
    "preflight": {"preflight": {"enabled": True}},
    "airgap-digests": {
        "imageRegistry": "registry.internal:5000",
        "image": {"digest": "sha256:" + "a" * 64, "pullPolicy": "Always"},
        "operator": {"image": {"genericDigest": "sha256:" + "b" * 64}},
        "hubble": {"relay": {"enabled": True, "image": {"digest": "sha256:" + "c" * 64}}},
        "imagePullSecrets": [{"name": "registry-creds"}],
    },
    "upstream-features": {
        "cluster": {"name": "mesh-a", "id": 3},
        "clustermesh": {"useAPIServer": True},
        "kubeProxyReplacement": "true",
        "k8sServiceHost": "10.0.0.10",
        "k8sServicePort": 6443,
        "gatewayAPI": {"enabled": True},
        "ingressController": {"enabled": True, "loadbalancerMode": "shared"},
        "encryption": {"enabled": True, "type": "wireguard"},
        "egressGateway": {"enabled": True},
        "bpf": {"masquerade": True},
    },
    "v1.17-eni": {
        "ciliumVersion": "1.17.11",
        "eni": {"enabled": True},
        "ipam": {"mode": "eni"},
        "routingMode": "native",
    },
}


@pytest.fixture(scope="module")
def helm() -> str:
    """The pinned helm binary (built from the Go module proxy on first use)."""
    return str(binaries.ensure(["helm"])["helm"])


def _run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)


def render_text(helm: str, values: Obj, tmp: Path, *extra: str) -> str:
    """`helm template` of the chart with ``values`` (as a values file)."""
    values_file = tmp / f"values-{hashlib.sha256(repr(values).encode()).hexdigest()[:12]}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    proc = _run_helm(
        helm,
        "template",
        "cilium",
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        "--include-crds",
        "-f",
        str(values_file),
        *extra,
    )
    if proc.returncode != 0:
        raise RenderError(proc.stderr)
    return proc.stdout


class RenderError(Exception):
    """helm refused to render the chart; the message is helm's stderr."""


def render(helm: str, values: Obj, tmp: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(render_text(helm, values, tmp)) if d]


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} objects"
    return hits[0]


def container(pod_spec: Obj, name: str, init: bool = False) -> Obj:
    key = "initContainers" if init else "containers"
    hits = [c for c in pod_spec.get(key, []) if c["name"] == name]
    assert len(hits) == 1, f"container {name}: {len(hits)}"
    return hits[0]


def env_of(c: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def _redact(objs: list[Obj]) -> Iterator[Obj]:
    """Generated certificates and keys change at every render: keep only their key names."""
    for obj in objs:
        if obj["kind"] == "Secret" and "data" in obj:
            obj = {**obj, "data": dict.fromkeys(obj["data"], "<generated>")}
        yield obj


def normalized(objs: list[Obj]) -> str:
    """The golden text: CRDs (checked by their own test, and partly owned by the policy
    model) left out, generated secrets redacted."""
    kept = [o for o in objs if o["kind"] != "CustomResourceDefinition"]
    return yaml.safe_dump_all(list(_redact(kept)), sort_keys=True, width=120)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_golden(helm: str, tmp_path: Path, scenario: str) -> None:
    text = normalized(render(helm, SCENARIOS[scenario], tmp_path))
    golden = GOLDEN / f"{scenario}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"{golden} missing: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{scenario} differs from {golden} (UPDATE_GOLDEN=1)"


# ---------------------------------------------------------------------------------------
# Agent


def test_agent_daemonset_facts(helm: str, tmp_path: Path) -> None:
    objs = render(helm, {}, tmp_path)
    ds = find(objs, "DaemonSet", "cilium")
    assert ds["metadata"]["namespace"] == NAMESPACE
    assert ds["spec"]["selector"]["matchLabels"] == {"k8s-app": "cilium"}
    assert ds["spec"]["template"]["metadata"]["labels"]["k8s-app"] == "cilium"
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 2},
    }
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    assert spec["serviceAccountName"] == "cilium"
    assert spec["priorityClassName"] == "system-node-critical"
    agent = container(spec, "cilium-agent")
    assert agent["command"] == ["cilium-agent"]
    assert agent["args"] == ["--config-dir=/tmp/cilium/config-map"]
    assert agent["image"] == (
        "quay.io/cilium/cilium:v1.18.5@sha256:"
        "2c92fb05962a346eaf0ce11b912ba434dc10bd54b9989e970416681f4a069628"
    )
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = agent[probe]["httpGet"]
        assert (get["host"], get["port"], get["path"]) == ("127.0.0.1", 9879, "/healthz")
    caps = agent["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"]
    assert {"NET_ADMIN", "SYS_ADMIN", "NET_RAW", "SYS_MODULE", "IPC_LOCK"} <= set(caps["add"])
    assert "privileged" not in agent["securityContext"]
    inits = [c["name"] for c in spec["initContainers"]]
    assert inits == [
        "config",
        "mount-cgroup",
        "apply-sysctl-overwrites",
        "mount-bpf-fs",
        "clean-cilium-state",
        "install-cni-binaries",
    ]
    config = container(spec, "config", init=True)
    assert config["command"][:2] == ["cilium-dbg", "build-config"]
    assert container(spec, "mount-bpf-fs", init=True)["securityContext"] == {"privileged": True}
    mounts = {m["name"]: m for m in agent["volumeMounts"]}
    assert mounts["bpf-maps"]["mountPropagation"] == "HostToContainer"
    assert mounts["tmp"]["mountPath"] == "/tmp"
    volumes = {v["name"]: v for v in spec["volumes"]}
    for name, path in {
        "bpf-maps": "/sys/fs/bpf",
        "cilium-run": "/var/run/cilium",
        "cni-path": "/opt/cni/bin",
        "etc-cni-netd": "/etc/cni/net.d",
        "lib-modules": "/lib/modules",
        "xtables-lock": "/run/xtables.lock",
        "cilium-cgroup": "/run/cilium/cgroupv2",
        "hostproc": "/proc",
    }.items():
        assert volumes[name]["hostPath"]["path"] == path, name
    assert spec["tolerations"] == [{"operator": "Exists"}]


def test_privileged_agent_drops_capability_lists(helm: str, tmp_path: Path) -> None:
    objs = render(helm, {"securityContext": {"privileged": True}}, tmp_path)
    spec = find(objs, "DaemonSet", "cilium")["spec"]["template"]["spec"]
    agent = container(spec, "cilium-agent")
    assert agent["securityContext"] == {"privileged": True}
    assert "mount-bpf-fs" not in [c["name"] for c in spec["initContainers"]]
    mounts = {m["name"]: m for m in agent["volumeMounts"]}
    assert mounts["bpf-maps"]["mountPropagation"] == "Bidirectional"
    config = find(objs, "ConfigMap", "cilium-config")["data"]
    assert "procfs" not in config


def _checksum(objs: list[Obj]) -> str | None:
    annotations = find(objs, "DaemonSet", "cilium")["spec"]["template"]["metadata"]["annotations"]
    value = annotations.get("cilium.io/cilium-configmap-checksum")
    return None if value is None else str(value)


def test_rollout_checksum_follows_cilium_config(helm: str, tmp_path: Path) -> None:
    assert _checksum(render(helm, {}, tmp_path)) is None
    base = _checksum(render(helm, {"rollOutCiliumPods": True}, tmp_path))
    same = _checksum(render(helm, {"rollOutCiliumPods": True}, tmp_path))
    changed = _checksum(
        render(helm, {"rollOutCiliumPods": True, "debug": {"enabled": True}}, tmp_path)
    )
    extra = _checksum(
        render(helm, {"rollOutCiliumPods": True, "extraConfig": {"a": "b"}}, tmp_path)
    )
    assert base is not None and len(base) == 64
    assert base == same
    assert len({base, changed, extra}) == 3
    # A value that does not reach cilium-config leaves the checksum alone.
    unrelated = _checksum(
        render(helm, {"rollOutCiliumPods": True, "podLabels": {"x": "y"}}, tmp_path)
    )
    assert unrelated == base


# ---------------------------------------------------------------------------------------
# Operator and RBAC


def test_operator_deployment_facts(helm: str, tmp_path: Path) -> None:
    objs = render(helm, {}, tmp_path)
    dep = find(objs, "Deployment", "cilium-operator")
    assert dep["metadata"]["labels"]["io.cilium/app"] == "operator"
    assert dep["spec"]["selector"]["matchLabels"]["io.cilium/app"] == "operator"
    spec = dep["spec"]["template"]["spec"]
    op = container(spec, "cilium-operator")
    assert op["command"] == ["cilium-operator-generic"]
    assert op["image"].startswith("quay.io/cilium/operator-generic:v1.18.5@sha256:36c3f6f1")
    assert "--config-dir=/tmp/cilium/config-map" in op["args"]
    assert spec["serviceAccountName"] == "cilium-operator"
    assert {"key": "node.cilium.io/agent-not-ready", "operator": "Exists"} in spec["tolerations"]


def _rules(objs: list[Obj], kind: str, name: str) -> list[Obj]:
    return list(find(objs, kind, name)["rules"])


def _grants(rules: list[Obj], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r.get("apiGroups", [])
        and resource in r.get("resources", [])
        and verb in r.get("verbs", [])
        and "resourceNames" not in r
        for r in rules
    )


def test_rbac_least_privilege(helm: str, tmp_path: Path) -> None:
    objs = render(helm, {}, tmp_path)
    agent = _rules(objs, "ClusterRole", "cilium")
    operator = _rules(objs, "ClusterRole", "cilium-operator")
    for rules in (agent, operator):
        for rule in rules:
            assert "*" not in rule.get("verbs", []), rule
            assert "*" not in rule.get("resources", []), rule
    # The agent never reads secrets cluster-wide; only in the secrets namespace.
    assert not _grants(agent, "", "secrets", "get")
    secrets_role = find(objs, "Role", "cilium-tlsinterception-secrets")
    assert secrets_role["metadata"]["namespace"] == "cilium-secrets"
    assert secrets_role["rules"][0]["verbs"] == ["get", "list", "watch"]
    assert _grants(agent, "cilium.io", "ciliumidentities", "create")
    assert _grants(agent, "cilium.io", "ciliumendpoints", "delete")
    assert not _grants(agent, "cilium.io", "ciliumnetworkpolicies", "create")
    # The operator's leader election lease and cilium-config patch: ClusterRole rules as
    # upstream's (no Role of its own), limited by name where Kubernetes allows it.
    assert _grants(operator, "coordination.k8s.io", "leases", "create")
    assert not _grants(operator, "coordination.k8s.io", "leases", "update")
    assert not _grants(operator, "", "configmaps", "patch")
    patch_cm = [r for r in operator if "configmaps" in r["resources"]]
    assert patch_cm == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["cilium-config"],
            "verbs": ["patch"],
        }
    ]
    # Bindings name the service accounts the workloads run as.
    for binding, sa in (("cilium", "cilium"), ("cilium-operator", "cilium-operator")):
        subj = find(objs, "ClusterRoleBinding", binding)["subjects"]
        assert subj == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    # Turning secret access back on is explicit.
    wide = render(helm, {"tls": {"readSecretsOnlyFromSecretsNamespace": False}}, tmp_path)
    assert _grants(_rules(wide, "ClusterRole", "cilium"), "", "secrets", "list")
    assert not [o for o in wide if o["kind"] == "Namespace"]


def test_rbac_create_false_renders_no_roles(helm: str, tmp_path: Path) -> None:
    objs = render(helm, {"rbac": {"create": False}}, tmp_path)
    kinds = {o["kind"] for o in objs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


# ---------------------------------------------------------------------------------------
# cilium-config


def config_of(helm: str, values: Obj, tmp: Path) -> dict[str, str]:
    return dict(find(render(helm, values, tmp), "ConfigMap", "cilium-config")["data"])


def test_config_defaults_use_upstream_keys(helm: str, tmp_path: Path) -> None:
    data = config_of(helm, {}, tmp_path)
    assert all(isinstance(v, str) for v in data.values())
    expected = {
        "cluster-name": "default",
        "cluster-id": "0",
        "routing-mode": "tunnel",
        "tunnel-protocol": "vxlan",
        "ipam": "cluster-pool",
        "kube-proxy-replacement": "false",
        "debug": "false",
        "identity-allocation-mode": "crd",
        "prometheus-serve-addr": None,  # upstream's prometheus.enabled is false
        "operator-prometheus-serve-addr": ":9963",
        "proxy-prometheus-port": None,  # Envoy runs in the cilium-envoy DaemonSet
        "enable-hubble": "true",
        "hubble-listen-address": ":4244",
        "hubble-disable-tls": "false",
        "enable-ipv4-masquerade": "true",
        "bpf-map-dynamic-size-ratio": "0.0025",
        "bpf-policy-map-max": "16384",
        "cluster-pool-ipv4-cidr": "10.0.0.0/8",
        "cluster-pool-ipv4-mask-size": "24",
        "external-envoy-proxy": "true",
        "policy-secrets-namespace": "cilium-secrets",
        "write-cni-conf-when-ready": "/host/etc/cni/net.d/05-cilium.conflist",
    }
    assert {k: data.get(k) for k in expected} == expected
    assert "labels" not in data and "mtu" not in data


def test_config_maps_values(helm: str, tmp_path: Path) -> None:
    data = config_of(helm, SCENARIOS["kube-proxy-replacement"], tmp_path)
    assert data["kube-proxy-replacement"] == "true"
    assert data["cluster-name"] == "prod-eu" and data["cluster-id"] == "7"
    assert data["routing-mode"] == "native"
    assert data["ipv4-native-routing-cidr"] == "10.0.0.0/8"
    assert data["mtu"] == "1450"
    assert data["bpf-ct-global-tcp-max"] == "1048576"
    assert data["bpf-policy-map-max"] == "32768"
    assert data["labels"] == "k8s:app k8s:io.kubernetes.pod.namespace"
    assert "enable-node-port" not in data
    # extraConfig is applied last and wins.
    assert data["enable-bpf-masquerade"] == "true" and data["custom-key"] == "1"
    over = config_of(helm, {"extraConfig": {"debug": "true", "enable-hubble": "false"}}, tmp_path)
    assert over["debug"] == "true" and over["enable-hubble"] == "false"


def test_k8s_service_host_reaches_every_component(helm: str, tmp_path: Path) -> None:
    objs = render(helm, SCENARIOS["kube-proxy-replacement"], tmp_path)
    ds_spec = find(objs, "DaemonSet", "cilium")["spec"]["template"]["spec"]
    op_spec = find(objs, "Deployment", "cilium-operator")["spec"]["template"]["spec"]
    for c in (
        container(ds_spec, "cilium-agent"),
        container(ds_spec, "config", init=True),
        container(ds_spec, "clean-cilium-state", init=True),
        container(op_spec, "cilium-operator"),
    ):
        env = env_of(c)
        assert env["KUBERNETES_SERVICE_HOST"] == "10.0.0.10", c["name"]
        assert env["KUBERNETES_SERVICE_PORT"] == "6443", c["name"]


def test_bad_values_fail_with_a_message(helm: str, tmp_path: Path) -> None:
    cases: list[tuple[Obj, str]] = [
        ({"kubeProxyReplacement": "true"}, "needs k8sServiceHost"),
        ({"kubeProxyReplacement": "strict"}, "kubeProxyReplacement"),
        ({"ciliumVersion": "1.16.3"}, "ciliumVersion"),
        ({"routingMode": "native"}, "ipv4NativeRoutingCIDR must be set"),
        ({"cluster": {"name": "Bad_Name"}}, "cluster.name"),
        ({"cluster": {"id": 3}}, 'must not be "default"'),
        ({"envoy": {"enabled": "yes"}}, "/envoy/enabled"),
        ({"operator": {"identityGCInterval": "soon"}}, "operator.identityGCInterval"),
        ({"encryption": {"enabled": True, "type": "tls"}}, "/encryption/type"),
        ({"clustermesh": {"useAPIServer": True}}, "needs cluster.name set"),
        ({"gatewayAPI": {"enabled": True}}, "need kubeProxyReplacement=true"),
        ({"bpf": {"mapDynamicSizeRatio": "lots"}}, "/bpf/mapDynamicSizeRatio"),
    ]
    for values, message in cases:
        with pytest.raises(RenderError, match=message):
            render(helm, values, tmp_path)


# ---------------------------------------------------------------------------------------
# Versions, images and upgradeCompatibility


def _images(objs: list[Obj]) -> set[str]:
    out: set[str] = set()
    for o in objs:
        spec = o.get("spec", {}).get("template", {}).get("spec", {})
        for key in ("containers", "initContainers"):
            out.update(c["image"] for c in spec.get(key, []))
    return out


def test_version_selection_1_17(helm: str, tmp_path: Path) -> None:
    objs = render(helm, SCENARIOS["v1.17-eni"], tmp_path)
    images = _images(objs)
    # No digest is known for 1.17.11: tags only, never the 1.18.5 digests (cilium-envoy has
    # a release line and tag of its own).
    assert images - {ENVOY_IMAGE} == {
        "quay.io/cilium/cilium:v1.17.11",
        "quay.io/cilium/operator-aws:v1.17.11",
    }
    data = find(objs, "ConfigMap", "cilium-config")["data"]
    assert data["enable-ipv4-masquerade"] == "true"  # 1.17 keeps masquerading in ENI mode
    assert data["ipam"] == "eni" and data["enable-endpoint-routes"] == "true"
    for key in (
        "policy-default-local-cluster",
        "identity-management-mode",
        "bpf-policy-stats-map-max",
        "hubble-network-policy-correlation-enabled",
    ):
        assert key not in data, key
    spec = find(objs, "DaemonSet", "cilium")["spec"]["template"]["spec"]
    agent = container(spec, "cilium-agent")
    assert "KUBE_CLIENT_BACKOFF_BASE" not in env_of(agent)
    headers = agent["livenessProbe"]["httpGet"]["httpHeaders"]
    assert [h["name"] for h in headers] == ["brief"]
    op_spec = find(objs, "Deployment", "cilium-operator")["spec"]["template"]["spec"]
    assert container(op_spec, "cilium-operator")["command"] == ["cilium-operator-aws"]
    assert all(t.get("key") != "node.cilium.io/agent-not-ready" for t in op_spec["tolerations"])


@pytest.mark.parametrize(
    ("version", "compat", "masquerade"),
    [
        ("1.18.5", None, "false"),
        ("1.18.5", "1.18", "false"),
        ("1.18.5", "1.17", "true"),
        ("1.18.5", "1.16", "true"),
        ("1.17.11", None, "true"),
    ],
)
def test_eni_masquerade_follows_upgrade_compatibility(
    helm: str, tmp_path: Path, version: str, compat: str | None, masquerade: str
) -> None:
    values: Obj = {"ciliumVersion": version, "eni": {"enabled": True}, "ipam": {"mode": "eni"}}
    if compat:
        values["upgradeCompatibility"] = compat
    assert config_of(helm, values, tmp_path)["enable-ipv4-masquerade"] == masquerade
    # An explicit value always wins, and outside ENI mode the default stays on.
    values["enableIPv4Masquerade"] = True
    assert config_of(helm, values, tmp_path)["enable-ipv4-masquerade"] == "true"
    assert config_of(helm, {"ciliumVersion": version}, tmp_path)["enable-ipv4-masquerade"] == (
        "true"
    )


def test_air_gapped_registry_and_digests(helm: str, tmp_path: Path) -> None:
    objs = render(helm, SCENARIOS["airgap-digests"], tmp_path)
    images = _images(objs)
    assert images == {
        "registry.internal:5000/cilium/cilium:v1.18.5@sha256:" + "a" * 64,
        "registry.internal:5000/cilium/operator-generic:v1.18.5@sha256:" + "b" * 64,
        "registry.internal:5000/cilium/hubble-relay:v1.18.5@sha256:" + "c" * 64,
        ENVOY_IMAGE.replace("quay.io", "registry.internal:5000"),
    }
    ds_spec = find(objs, "DaemonSet", "cilium")["spec"]["template"]["spec"]
    assert ds_spec["imagePullSecrets"] == [{"name": "registry-creds"}]
    assert container(ds_spec, "cilium-agent")["imagePullPolicy"] == "Always"
    # useDigest=false and an explicit tag/override.
    objs = render(
        helm,
        {
            "image": {"useDigest": False, "tag": "v1.18.4"},
            "operator": {"image": {"override": "mirror/op:1"}},
        },
        tmp_path,
    )
    assert _images(objs) == {"quay.io/cilium/cilium:v1.18.4", "mirror/op:1", ENVOY_IMAGE}
    # A different tag never inherits the default release's digest.
    objs = render(helm, {"image": {"tag": "v1.18.4"}}, tmp_path)
    assert "quay.io/cilium/cilium:v1.18.4" in _images(objs)


# ---------------------------------------------------------------------------------------
# Chart hygiene


def test_helm_lint_passes(helm: str) -> None:
    proc = _run_helm(helm, "lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_crds_are_structural_and_named_as_upstream(helm: str, tmp_path: Path) -> None:
    crds = {
        o["metadata"]["name"]: o
        for o in render(helm, {}, tmp_path)
        if o["kind"] == "CustomResourceDefinition"
    }
    expected = {
        "ciliumnodeconfigs": ("Namespaced", ["v2", "v2alpha1"], None),
        "ciliumidentities": ("Cluster", ["v2"], ["ciliumid"]),
        "ciliumendpoints": ("Namespaced", ["v2"], ["cep", "ciliumep"]),
        "ciliumnodes": ("Cluster", ["v2"], ["cn", "ciliumn"]),
        "ciliumloadbalancerippools": (
            "Cluster",
            ["v2", "v2alpha1"],
            ["ippools", "ippool", "lbippool", "lbippools"],
        ),
        "ciliumcidrgroups": ("Cluster", ["v2", "v2alpha1"], ["ccg"]),
        "ciliumlocalredirectpolicies": ("Namespaced", ["v2"], ["clrp"]),
        "ciliumegressgatewaypolicies": ("Cluster", ["v2"], ["cegp"]),
        "ciliumenvoyconfigs": ("Namespaced", ["v2"], ["cec"]),
        "ciliumclusterwideenvoyconfigs": ("Cluster", ["v2"], ["ccec"]),
        "ciliumendpointslices": ("Cluster", ["v2alpha1"], ["ces"]),
        "ciliuml2announcementpolicies": ("Cluster", ["v2alpha1"], ["l2announcement"]),
        "ciliumpodippools": ("Cluster", ["v2alpha1"], ["cpip"]),
    }
    for plural, (scope, versions, short) in expected.items():
        crd = crds[f"{plural}.cilium.io"]
        spec = crd["spec"]
        assert spec["group"] == "cilium.io" and spec["scope"] == scope, plural
        assert [v["name"] for v in spec["versions"]] == versions, plural
        assert spec["names"].get("shortNames") == short, plural
        assert [v["name"] for v in spec["versions"] if v["storage"]] == versions[:1], plural
        for v in spec["versions"]:
            assert v["served"] is True
            _assert_structural(v["schema"]["openAPIV3Schema"], f"{plural}/{v['name']}")
    ncs = crds["ciliumnodeconfigs.cilium.io"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec_props = ncs["properties"]["spec"]["properties"]
    assert spec_props["defaults"]["additionalProperties"] == {"type": "string"}
    assert set(spec_props["nodeSelector"]["properties"]) == {"matchLabels", "matchExpressions"}


def _assert_structural(schema: Obj, where: str) -> None:
    """Every node has a type (or preserves unknown fields); nested objects recurse."""
    assert "type" in schema or schema.get("x-kubernetes-preserve-unknown-fields"), where
    for name, sub in schema.get("properties", {}).items():
        _assert_structural(sub, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        _assert_structural(schema["items"], f"{where}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        _assert_structural(schema["additionalProperties"], f"{where}{{}}")


# ---------------------------------------------------------------------------------------
# Pre-flight


def test_preflight_renders_only_preflight_objects(helm: str, tmp_path: Path) -> None:
    objs = [
        o
        for o in render(helm, {"preflight": {"enabled": True}}, tmp_path)
        if o["kind"] != "CustomResourceDefinition"
    ]
    names = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
    assert names == [
        ("ClusterRole", "cilium-pre-flight"),
        ("ClusterRoleBinding", "cilium-pre-flight"),
        ("DaemonSet", "cilium-pre-flight-check"),
        ("Deployment", "cilium-pre-flight-check"),
        ("ServiceAccount", "cilium-pre-flight"),
    ]
    dep_spec = find(objs, "Deployment", "cilium-pre-flight-check")["spec"]["template"]["spec"]
    validator = container(dep_spec, "cnp-validator")
    assert "cilium-dbg preflight validate-cnp" in validator["args"][-1]
    ds_spec = find(objs, "DaemonSet", "cilium-pre-flight-check")["spec"]["template"]["spec"]
    assert container(ds_spec, "cilium-pre-flight-check")["image"].startswith(
        "quay.io/cilium/cilium:v1.18.5@sha256:"
    )
    # Without kube-proxy the validator reaches the API server directly.
    objs = render(
        helm,
        {"preflight": {"enabled": True}, "k8sServiceHost": "10.0.0.10", "k8sServicePort": 6443},
        tmp_path,
    )
    dep_spec = find(objs, "Deployment", "cilium-pre-flight-check")["spec"]["template"]["spec"]
    assert env_of(container(dep_spec, "cnp-validator"))["KUBERNETES_SERVICE_HOST"] == "10.0.0.10"
    # The preflight pull of an older target version uses that version's tag (and pulls the
    # cilium-envoy image the chart deploys with it).
    objs = render(helm, {"preflight": {"enabled": True}, "ciliumVersion": "1.17.11"}, tmp_path)
    assert _images(objs) == {"quay.io/cilium/cilium:v1.17.11", ENVOY_IMAGE}


# ---------------------------------------------------------------------------------------
# values.schema.json and the unmodelled-key list


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"notAKey": 1}, "additional properties 'notAKey' not allowed"),
        ({"hubble": {"relay": {"enabeld": True}}}, "additional properties 'enabeld' not allowed"),
        ({"cluster": {"id": "seven"}}, "/cluster/id"),
        ({"cluster": {"id": 300}}, "/cluster/id"),
        ({"debug": {"enabled": "yes"}}, "/debug/enabled"),
        ({"image": {"repository": ["a"]}}, "/image/repository"),
        ({"ciliumVersion": "1.19.0"}, "/ciliumVersion"),
        ({"ipam": {"mode": "bogus"}}, "/ipam/mode"),
        ({"hubble": {"metrics": {"enabled": "dns"}}}, "/hubble/metrics/enabled"),
    ],
)
def test_schema_rejects_unknown_keys_and_wrong_types(
    helm: str, tmp_path: Path, values: Obj, message: str
) -> None:
    with pytest.raises(RenderError, match="schema") as err:
        render(helm, values, tmp_path)
    assert message in str(err.value)


def _unmodelled() -> list[str]:
    lines = (CHART / "unmodelled-keys.txt").read_text().splitlines()
    keys = [line.partition("#")[0].strip() for line in lines]
    return [key for key in keys if key]


def _flatten(values: Obj, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        out.add(path)
        if isinstance(value, dict):
            out |= _flatten(value, path)
    return out


def test_unmodelled_keys_are_disjoint_from_the_values() -> None:
    keys = _unmodelled()
    # Parsed (comments and reasons stripped) and unique; the list shrinks as keys get modelled.
    assert len(keys) == len(set(keys)) > 0
    assert all(" " not in key and "#" not in key for key in keys)
    modelled = _flatten(yaml.safe_load((CHART / "values.yaml").read_text()))
    assert not set(keys) & modelled
    # A listed key's parent is either the top level or a key this chart models.
    for key in keys:
        parent = key.rpartition(".")[0]
        assert not parent or parent in modelled, key


def _nested(keys: list[str], value: Any) -> Obj:
    values: Obj = {}
    for key in keys:
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return values


def test_chart_refuses_upstream_keys_it_does_not_model(helm: str, tmp_path: Path) -> None:
    """Fail closed: a key the chart would ignore stops the render and is named; helm drops
    keys set to null, so those still render."""
    keys = _unmodelled()
    with pytest.raises(RenderError, match="not modelled by this chart") as err:
        render(helm, _nested(keys, "not-an-upstream-default"), tmp_path)
    assert all(key in str(err.value) for key in keys)
    with pytest.raises(RenderError, match=r"would be ignored: loadBalancer\.experimental \("):
        render(helm, {"loadBalancer": {"experimental": True}}, tmp_path)
    assert find(render(helm, _nested(keys, None), tmp_path), "DaemonSet", "cilium")


def test_schema_declares_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(values: Obj, node: Obj, prefix: str) -> None:
        for key, value in values.items():
            path = f"{prefix}.{key}" if prefix else key
            props = node.get("properties")
            if props is None:  # a free-form map (annotations, affinity, ...)
                continue
            assert key in props, f"{path} missing from values.schema.json"
            if isinstance(value, dict) and value:
                walk(value, props[key], path)

    walk(yaml.safe_load((CHART / "values.yaml").read_text()), schema, "")


# ---------------------------------------------------------------------------------------
# Hubble


def _relay_config(objs: list[Obj]) -> Obj:
    cfg: Obj = yaml.safe_load(find(objs, "ConfigMap", "hubble-relay-config")["data"]["config.yaml"])
    return cfg


def test_hubble_tls_certificates_share_one_ca(helm: str, tmp_path: Path) -> None:
    x509 = pytest.importorskip("cryptography.x509")
    objs = render(
        helm, {**SCENARIOS["hubble-relay-ui-tls"], "cluster": {"name": "prod-eu"}}, tmp_path
    )
    ca_pem = base64.b64decode(find(objs, "Secret", "cilium-ca")["data"]["ca.crt"])
    ca = x509.load_pem_x509_certificate(ca_pem)
    expected_cn = {
        "hubble-server-certs": "*.prod-eu.hubble-grpc.cilium.io",
        "hubble-relay-client-certs": "*.hubble-relay.cilium.io",
        "hubble-relay-server-certs": "*.hubble-relay.cilium.io",
        "hubble-ui-client-certs": "*.hubble-ui.cilium.io",
        "hubble-metrics-server-certs": "*.prod-eu.hubble-metrics.cilium.io",
    }
    for name, cn in expected_cn.items():
        secret = find(objs, "Secret", name)
        assert secret["type"] == "kubernetes.io/tls"
        assert base64.b64decode(secret["data"]["ca.crt"]) == ca_pem, name
        cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
        assert cert.issuer == ca.subject, name
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert cn in names.get_values_for_type(x509.DNSName), name
    # Relay trusts the agents' CA and serves TLS; the UI talks to it over TLS.
    relay_cfg = _relay_config(objs)
    assert relay_cfg["peer-service"] == "hubble-peer.kube-system.svc.cluster.local.:443"
    assert relay_cfg["tls-relay-server-cert-file"] == "/var/lib/hubble-relay/tls/server.crt"
    assert "disable-client-tls" not in relay_cfg
    ui_spec = find(objs, "Deployment", "hubble-ui")["spec"]["template"]["spec"]
    backend = env_of(container(ui_spec, "backend"))
    assert backend["FLOWS_API_ADDR"] == "hubble-relay:443"
    assert backend["TLS_TO_RELAY_ENABLED"] == "true"
    assert find(objs, "Service", "hubble-relay")["spec"]["ports"][0]["port"] == 443
    data = find(objs, "ConfigMap", "cilium-config")["data"]
    assert data["hubble-metrics"] == "dns drop tcp flow"
    assert data["hubble-metrics-server"] == ":9965"
    assert data["hubble-metrics-server-enable-tls"] == "true"
    assert data["hubble-export-file-path"] == "/var/run/cilium/hubble/events.log"
    ds_spec = find(objs, "DaemonSet", "cilium")["spec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in container(ds_spec, "cilium-agent")["ports"]}
    assert ports == {"peer-service": 4244, "hubble-metrics": 9965}


def test_hubble_off_and_plain_text(helm: str, tmp_path: Path) -> None:
    objs = render(helm, {"hubble": {"enabled": False}}, tmp_path)
    assert not [o for o in objs if o["kind"] == "Secret"]
    assert not [o for o in objs if o["metadata"]["name"].startswith("hubble")]
    assert find(objs, "ConfigMap", "cilium-config")["data"]["enable-hubble"] == "false"
    objs = render(
        helm, {"hubble": {"tls": {"enabled": False}, "relay": {"enabled": True}}}, tmp_path
    )
    assert not [o for o in objs if o["kind"] == "Secret"]
    assert find(objs, "Service", "hubble-peer")["spec"]["ports"][0]["port"] == 80
    assert find(objs, "ConfigMap", "cilium-config")["data"]["hubble-disable-tls"] == "true"
    relay_cfg = _relay_config(objs)
    assert relay_cfg["disable-client-tls"] is True and relay_cfg["disable-server-tls"] is True
    # The UI needs relay.
    with pytest.raises(RenderError, match=r"needs hubble\.relay\.enabled"):
        render(helm, {"hubble": {"ui": {"enabled": True}}}, tmp_path)


def test_apparmor_annotations_before_kubernetes_1_30(helm: str, tmp_path: Path) -> None:
    text = render_text(helm, {}, tmp_path, "--kube-version", "1.29.0")
    ds = find([d for d in yaml.safe_load_all(text) if d], "DaemonSet", "cilium")
    template = ds["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["container.apparmor.security.beta.kubernetes.io/cilium-agent"] == (
        "unconfined"
    )
    assert "appArmorProfile" not in template["spec"].get("securityContext", {})
    ds = find(render(helm, {}, tmp_path), "DaemonSet", "cilium")
    assert ds["spec"]["template"]["spec"]["securityContext"]["appArmorProfile"] == {
        "type": "Unconfined"
    }


# ---------------------------------------------------------------------------------------
# Prometheus Operator ServiceMonitors


def test_service_monitors_scrape_the_metrics_services(helm: str, tmp_path: Path) -> None:
    on = {"serviceMonitor": {"enabled": True}}
    values: Obj = {
        "prometheus": {"enabled": True, **on},
        "operator": {"prometheus": on},
        "hubble": {"metrics": {"enabled": ["dns", "drop"], **on}},
        "envoy": {"prometheus": on},
    }
    objs = [
        d
        for d in yaml.safe_load_all(
            render_text(helm, values, tmp_path, "--api-versions", "monitoring.coreos.com/v1")
        )
        if d
    ]
    monitors = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ServiceMonitor"}
    assert set(monitors) == {"cilium-agent", "cilium-operator", "hubble", "cilium-envoy"}
    for name, monitor in monitors.items():
        selector = monitor["spec"]["selector"]["matchLabels"]
        port = monitor["spec"]["endpoints"][0]["port"]
        services = [
            o
            for o in objs
            if o["kind"] == "Service"
            and selector.items() <= o["metadata"]["labels"].items()
            and port in [p["name"] for p in o["spec"]["ports"]]
        ]
        assert len(services) == 1, name
        assert services[0]["spec"]["clusterIP"] == "None", name
    # Without the CRD the render fails instead of producing what the cluster would refuse.
    with pytest.raises(RenderError, match="ServiceMonitor CRD"):
        render(helm, values, tmp_path)


# ---------------------------------------------------------------------------------------
# Upstream values that drive cilium-config keys (beyond the parity sets)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"socketLB": {"enabled": True}}, {"bpf-lb-sock": "true"}),
        ({"hostFirewall": {"enabled": True}}, {"enable-host-firewall": "true"}),
        ({"bpf": {"vlanBypass": [0]}}, {"vlan-bpf-bypass": "0"}),
        ({"bpf": {"hostLegacyRouting": True}}, {"enable-host-legacy-routing": "true"}),
        ({"conntrackGCInterval": "5m"}, {"conntrack-gc-interval": "5m"}),
        ({"endpointRoutes": {"enabled": True}}, {"enable-endpoint-routes": "true"}),
        (
            {"l2announcements": {"enabled": True}},
            {"enable-l2-announcements": "true", "l2-announcements-lease-duration": "15s"},
        ),
        ({"logOptions": {"format": "json"}}, {"log-opt": '{"format":"json"}'}),
        (
            {"encryption": {"enabled": True, "nodeEncryption": True}},
            {"enable-ipsec": "true", "ipsec-key-file": "/etc/ipsec/keys", "encrypt-node": "true"},
        ),
        ({"loadBalancer": {"algorithm": "maglev"}}, {"bpf-lb-algorithm": "maglev"}),
        ({"identityManagementMode": "operator"}, {"identity-management-mode": "operator"}),
        (
            {"endpointLockdownOnMapOverflow": True},
            {"enable-endpoint-lockdown-on-policy-overflow": "true"},
        ),
        ({"l2NeighDiscovery": {"enabled": True}}, {"enable-l2-neigh-discovery": "true"}),
        ({"maglev": {"tableSize": 16381}}, {"bpf-lb-maglev-table-size": "16381"}),
        ({"tunnelPort": 8473}, {"tunnel-port": "8473"}),
        (
            {"hubble": {"dropEventEmitter": {"enabled": True}}},
            {
                "hubble-drop-events": "true",
                "hubble-drop-events-reasons": "auth_required policy_denied",
            },
        ),
        ({"hubble": {"redact": {"enabled": True}}}, {"hubble-redact-http-userinfo": "true"}),
        ({"serviceNoBackendResponse": "drop"}, {"service-no-backend-response": "drop"}),
        ({"pprof": {"enabled": True}}, {"pprof": "true", "pprof-port": "6060"}),
        (
            {"bgpControlPlane": {"enabled": True}},
            {"enable-bgp-control-plane": "true", "bgp-secrets-namespace": "kube-system"},
        ),
        ({"localRedirectPolicies": {"enabled": True}}, {"enable-local-redirect-policy": "true"}),
        (
            {"ciliumVersion": "1.17.11"},
            {"enable-l2-neigh-discovery": "true", "arping-refresh-period": "30s"},
        ),
    ],
)
def test_upstream_values_drive_config(
    helm: str, tmp_path: Path, values: Obj, expected: dict[str, str]
) -> None:
    data = config_of(helm, values, tmp_path)
    assert {k: data.get(k) for k in expected} == expected


def test_1_17_line_leaves_out_1_18_keys(helm: str, tmp_path: Path) -> None:
    data = config_of(helm, {"ciliumVersion": "1.17.11"}, tmp_path)
    for key in ("bpf-distributed-lru", "identity-management-mode", "policy-default-local-cluster"):
        assert key not in data, key
    with pytest.raises(RenderError, match=r"needs Cilium 1\.18"):
        render(
            helm,
            {"ciliumVersion": "1.17.11", "bpf": {"distributedLRU": {"enabled": True}}},
            tmp_path,
        )


def test_ingress_controller_objects(helm: str, tmp_path: Path) -> None:
    objs = render(helm, SCENARIOS["upstream-features"], tmp_path)
    assert find(objs, "IngressClass", "cilium")["spec"]["controller"] == (
        "cilium.io/ingress-controller"
    )
    svc = find(objs, "Service", "cilium-ingress")
    assert [p["port"] for p in svc["spec"]["ports"]] == [80, 443]
    assert find(objs, "Endpoints", "cilium-ingress")
    for role in ("cilium-ingress-secrets", "cilium-operator-ingress-secrets"):
        assert find(objs, "Role", role)["metadata"]["namespace"] == "cilium-secrets"
    assert len([o for o in objs if o["kind"] == "Namespace"]) == 1
    data = find(objs, "ConfigMap", "cilium-config")["data"]
    assert data["enable-ingress-controller"] == "true"
    assert data["ingress-default-lb-mode"] == "shared"
    assert data["enable-envoy-config"] == "true"
    # Dedicated mode (upstream's default) creates a Service per Ingress, not a shared one.
    dedicated = {**SCENARIOS["upstream-features"], "ingressController": {"enabled": True}}
    assert not [o for o in render(helm, dedicated, tmp_path) if o["kind"] == "Endpoints"]


def test_clustermesh_certificates_share_the_cilium_ca(helm: str, tmp_path: Path) -> None:
    x509 = pytest.importorskip("cryptography.x509")
    objs = render(helm, SCENARIOS["upstream-features"], tmp_path)
    ca_pem = base64.b64decode(find(objs, "Secret", "cilium-ca")["data"]["ca.crt"])
    ca = x509.load_pem_x509_certificate(ca_pem)
    for name in ("server", "admin", "remote", "local"):
        secret = find(objs, "Secret", f"clustermesh-apiserver-{name}-cert")
        cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
        assert cert.issuer == ca.subject, name
    spec = find(objs, "Deployment", "clustermesh-apiserver")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["etcd", "apiserver", "kvstoremesh"]
    api = container(spec, "apiserver")
    assert "--cluster-name=mesh-a" in api["args"] and "--cluster-id=3" in api["args"]
    svc = find(objs, "Service", "clustermesh-apiserver")
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["ports"][0]["nodePort"] == 32379


def test_ipsec_keys_are_mounted_where_the_agent_reads_them(helm: str, tmp_path: Path) -> None:
    values: Obj = {"encryption": {"enabled": True, "ipsec": {"secretName": "my-keys"}}}
    objs = render(helm, values, tmp_path)
    spec = find(objs, "DaemonSet", "cilium")["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "cilium-ipsec-secrets")
    assert volume["secret"]["secretName"] == "my-keys"
    mounts = {m["name"]: m["mountPath"] for m in container(spec, "cilium-agent")["volumeMounts"]}
    data = find(objs, "ConfigMap", "cilium-config")["data"]
    assert data["ipsec-key-file"] == mounts["cilium-ipsec-secrets"] + "/keys"


def test_metrics_services_without_service_monitors(helm: str, tmp_path: Path) -> None:
    values: Obj = {
        "prometheus": {"enabled": True, "metricsService": True},
        "operator": {"prometheus": {"metricsService": True}},
        "hubble": {"metrics": {"enabled": ["dns"], "serviceAnnotations": {"a": "b"}}},
    }
    objs = render(helm, values, tmp_path)
    assert not [o for o in objs if o["kind"] == "ServiceMonitor"]
    assert find(objs, "Service", "cilium-agent")["spec"]["ports"][0]["port"] == 9962
    assert find(objs, "Service", "cilium-operator")["spec"]["ports"][0]["port"] == 9963
    assert find(objs, "Service", "hubble-metrics")["metadata"]["annotations"]["a"] == "b"


def test_dev_cluster_real_puts_the_operator_on_real_nodes(helm: str, tmp_path: Path) -> None:
    """A dev cluster with kwok and real nodes: the operator must run where pods really run
    (a kwok node only pretends), next to upstream's own kubernetes.io/os selector."""
    from ciliumctl.devcluster import realnodes
    from ciliumctl.install import detect

    values = {"operator": detect._FLAVOR_VALUES["dev-cluster-real"]["operator"]}
    objs = render(helm, values, tmp_path)
    op = next(
        o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "cilium-operator"
    )
    assert op["spec"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/os": "linux",
        realnodes.REAL_LABEL: "true",
    }
