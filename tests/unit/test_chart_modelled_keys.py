"""Upstream values keys that charts/cilium models (once listed in unmodelled-keys.txt), and the
rules for the keys still listed there, rendered by the real helm binary.

For each modelled key: a non-default value drives the cilium-config key (or object field) it
drives upstream, and upstream's default value renders exactly upstream's default
cilium-config (the facts in tests/data/upstream-chart/). For the keys left unmodelled: every
line gives a reason, a value equal to upstream's recorded default is accepted (nothing is
ignored: upstream renders what this chart renders) and any other value is refused with the
key named, by the chart and by the cilium CLI's values check alike.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ciliumctl.helm.values import flatten
from ciliumctl.install.install import unmodelled_defaults, unmodelled_keys, unmodelled_lines
from ciliumctl.validators.values import check_values
from tests.unit.test_chart import (
    CHART,
    ENVOY_IMAGE,
    ROOT,
    Obj,
    RenderError,
    config_of,
    container,
    find,
    helm,
    render,
    render_text,
)

__all__ = ["helm"]  # the module-scoped fixture, shared with test_chart

UPSTREAM = json.loads((ROOT / "tests/data/upstream-chart/1.18.5-renders.json").read_text())
UPSTREAM_DEFAULT_CONFIG = {
    k: v for k, v in UPSTREAM["default"]["cilium_config"].items() if k != "cluster-name"
}
ENI = {"eni": {"enabled": True}, "ipam": {"mode": "eni"}, "routingMode": "native"}


def nested(path: str, value: Any) -> Obj:
    out: Obj = {}
    node = out
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return out


def merged(*parts: Obj) -> Obj:
    out: Obj = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


# (key, upstream 1.18 default, values setting it otherwise, cilium-config it must render)
CONFIG_KEYS: list[tuple[str, Any, Obj, dict[str, str | None]]] = [
    (
        "l2podAnnouncements.enabled",
        False,
        {"l2podAnnouncements": {"enabled": True}},
        {"enable-l2-pod-announcements": "true", "l2-pod-announcements-interface": "eth0"},
    ),
    (
        "l2podAnnouncements.interface",
        "eth0",
        {"l2podAnnouncements": {"enabled": True, "interface": "bond0"}},
        {"l2-pod-announcements-interface": "bond0"},
    ),
    (
        "cni.chainingMode",
        None,
        {"cni": {"chainingMode": "aws-cni"}},
        {
            "cni-chaining-mode": "aws-cni",
            "enable-local-node-route": "false",
            "enable-host-legacy-routing": "true",
            "enable-endpoint-health-checking": "false",
            "install-no-conntrack-iptables-rules": "false",
            "dnsproxy-enable-transparent-mode": None,  # transparent only when not chained
            "cni-chaining-target": None,
        },
    ),
    (
        "cni.chainingTarget",
        None,
        {"cni": {"chainingTarget": "my-net"}},
        {
            "cni-chaining-target": "my-net",
            "cni-chaining-mode": "generic-veth",  # a target alone implies generic-veth
            "enable-local-node-route": "false",
        },
    ),
    (
        "cni.enableRouteMTUForCNIChaining",
        False,
        {"cni": {"chainingMode": "generic-veth", "enableRouteMTUForCNIChaining": True}},
        {"enable-route-mtu-for-cni-chaining": "true"},
    ),
    (
        "cni.configMap",
        "",
        {"cni": {"configMap": "cni-configuration"}},
        {
            "read-cni-conf": "/tmp/cni-configuration/cni-config",
            "write-cni-conf-when-ready": "/host/etc/cni/net.d/05-cilium.conflist",
        },
    ),
    (
        "cni.configMapKey",
        "cni-config",
        {"cni": {"configMap": "cm", "configMapKey": "10-chained.conflist"}},
        {"read-cni-conf": "/tmp/cni-configuration/10-chained.conflist"},
    ),
    (
        "cni.confFileMountPath",
        "/tmp/cni-configuration",
        {"cni": {"configMap": "cm", "confFileMountPath": "/etc/cni-src"}},
        {"read-cni-conf": "/etc/cni-src/cni-config"},
    ),
    (
        "eni.awsReleaseExcessIPs",
        False,
        merged(ENI, {"eni": {"awsReleaseExcessIPs": True}}),
        {"aws-release-excess-ips": "true", "ec2-api-endpoint": "", "eni-tags": "{}"},
    ),
    (
        "eni.awsEnablePrefixDelegation",
        False,
        merged(ENI, {"eni": {"awsEnablePrefixDelegation": True}}),
        {"aws-enable-prefix-delegation": "true", "aws-release-excess-ips": None},
    ),
    (
        "eni.ec2APIEndpoint",
        "",
        merged(ENI, {"eni": {"ec2APIEndpoint": "ec2.eu-west-1.amazonaws.com"}}),
        {"ec2-api-endpoint": "ec2.eu-west-1.amazonaws.com"},
    ),
    (
        "eni.eniTags",
        {},
        merged(ENI, {"eni": {"eniTags": {"team": "net", "env": "prod"}}}),
        {"eni-tags": '{"env":"prod","team":"net"}'},
    ),
    (
        "eni.gcInterval",
        "",
        merged(ENI, {"eni": {"gcInterval": "10m"}}),
        {"eni-gc-interval": "10m"},
    ),
    (
        "eni.gcTags",
        {},
        merged(ENI, {"eni": {"gcTags": {"io.cilium/cilium-managed": "true"}}}),
        {"eni-gc-tags": '{"io.cilium/cilium-managed":"true"}'},
    ),
    (
        "eni.subnetIDsFilter",
        [],
        merged(ENI, {"eni": {"subnetIDsFilter": ["subnet-1", "subnet-2"]}}),
        {"subnet-ids-filter": "subnet-1 subnet-2"},
    ),
    (
        "eni.subnetTagsFilter",
        [],
        merged(ENI, {"eni": {"subnetTagsFilter": ["a=1", "b=2"]}}),
        {"subnet-tags-filter": "a=1,b=2"},
    ),
    (
        "eni.instanceTagsFilter",
        [],
        merged(ENI, {"eni": {"instanceTagsFilter": ["role=worker"]}}),
        {"instance-tags-filter": "role=worker"},
    ),
    (
        "ipam.multiPoolPreAllocation",
        "",
        {"ipam": {"multiPoolPreAllocation": "default=8"}},
        {"ipam-multi-pool-pre-allocation": "default=8"},
    ),
    (
        "ipam.installUplinkRoutesForDelegatedIPAM",
        False,
        {"ipam": {"installUplinkRoutesForDelegatedIPAM": True}},
        {"install-uplink-routes-for-delegated-ipam": "true"},
    ),
    (
        "ipam.operator.externalAPILimitBurstSize",
        None,
        {"ipam": {"operator": {"externalAPILimitBurstSize": 40}}},
        {"limit-ipam-api-burst": "40"},
    ),
    (
        "ipam.operator.externalAPILimitQPS",
        None,
        {"ipam": {"operator": {"externalAPILimitQPS": "8.5"}}},  # as --set delivers it
        {"limit-ipam-api-qps": "8.5"},
    ),
    (
        "loadBalancer.standalone",
        False,
        {"loadBalancer": {"standalone": True}},
        {"bpf-lb-only": "true"},
    ),
    (
        "encryption.strictMode",
        {"enabled": False, "cidr": "", "allowRemoteNodeIdentities": False},
        {
            "encryption": {
                "enabled": True,
                "type": "wireguard",
                "strictMode": {
                    "enabled": True,
                    "cidr": "10.0.0.0/8",
                    "allowRemoteNodeIdentities": True,
                },
            }
        },
        {
            "enable-encryption-strict-mode": "true",
            "encryption-strict-mode-cidr": "10.0.0.0/8",
            "encryption-strict-mode-allow-remote-node-identities": "true",
            "enable-wireguard": "true",
        },
    ),
]


@pytest.mark.parametrize(
    ("key", "default", "values", "expected"), CONFIG_KEYS, ids=[c[0] for c in CONFIG_KEYS]
)
def test_modelled_key_drives_cilium_config(
    helm: str, tmp_path: Path, key: str, default: Any, values: Obj, expected: dict[str, Any]
) -> None:
    assert key not in unmodelled_keys(CHART)
    data = config_of(helm, values, tmp_path)
    assert {k: data.get(k) for k in expected} == expected
    # Upstream's default value renders upstream's default cilium-config, whole.
    at_default = config_of(helm, nested(key, default), tmp_path)
    assert {k: v for k, v in at_default.items() if k != "cluster-name"} == UPSTREAM_DEFAULT_CONFIG


def test_portmap_chaining_keeps_health_checks_and_the_node_route(helm: str, tmp_path: Path) -> None:
    data = config_of(helm, {"cni": {"chainingMode": "portmap"}}, tmp_path)
    assert data["cni-chaining-mode"] == "portmap"
    assert "enable-local-node-route" not in data
    assert data["enable-endpoint-health-checking"] == "true"
    # An explicit setting still wins over the chaining defaults.
    data = config_of(
        helm,
        {
            "cni": {"chainingMode": "aws-cni"},
            "bpf": {"hostLegacyRouting": False},
            "dnsProxy": {"enableTransparentMode": True},
        },
        tmp_path,
    )
    assert data["enable-host-legacy-routing"] == "false"
    assert data["dnsproxy-enable-transparent-mode"] == "true"


def test_eni_mode_renders_upstreams_eni_keys_only_in_eni_mode(helm: str, tmp_path: Path) -> None:
    data = config_of(helm, merged(ENI, {"eni": {"subnetIDsFilter": ["s-1"]}}), tmp_path)
    assert data["ec2-api-endpoint"] == "" and data["eni-tags"] == "{}"
    assert data["subnet-ids-filter"] == "s-1"
    off = config_of(helm, {"eni": {"subnetIDsFilter": ["s-1"], "ec2APIEndpoint": "x"}}, tmp_path)
    assert not {"ec2-api-endpoint", "eni-tags", "subnet-ids-filter"} & off.keys()


def test_cni_config_map_is_mounted_where_read_cni_conf_points(helm: str, tmp_path: Path) -> None:
    values = {"cni": {"configMap": "chained-cni", "confFileMountPath": "/etc/cni-src"}}
    objs = render(helm, values, tmp_path)
    spec = find(objs, "DaemonSet", "cilium")["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "cni-configuration")
    assert volume["configMap"] == {"name": "chained-cni"}
    mounts = container(spec, "cilium-agent")["volumeMounts"]
    mount = next(m for m in mounts if m["name"] == "cni-configuration")
    assert mount == {"name": "cni-configuration", "mountPath": "/etc/cni-src", "readOnly": True}
    config = find(objs, "ConfigMap", "cilium-config")["data"]
    assert config["read-cni-conf"] == "/etc/cni-src/cni-config"
    default = find(render(helm, {"cni": {"configMap": ""}}, tmp_path), "DaemonSet", "cilium")
    volumes = default["spec"]["template"]["spec"]["volumes"]
    assert all(v["name"] != "cni-configuration" for v in volumes)


def test_operator_dns_policy(helm: str, tmp_path: Path) -> None:
    def dns_policy(values: Obj) -> Any:
        dep = find(render(helm, values, tmp_path), "Deployment", "cilium-operator")
        return dep["spec"]["template"]["spec"].get("dnsPolicy")

    assert dns_policy({"operator": {"dnsPolicy": "ClusterFirstWithHostNet"}}) == (
        "ClusterFirstWithHostNet"
    )
    assert dns_policy({"operator": {"dnsPolicy": ""}}) is None  # upstream's default: unset
    assert dns_policy({}) is None


def test_relay_sort_buffer_and_retry_options(helm: str, tmp_path: Path) -> None:
    def relay_config(extra: Obj) -> Obj:
        values = {"hubble": {"relay": {"enabled": True, **extra}}}
        cm = find(render(helm, values, tmp_path), "ConfigMap", "hubble-relay-config")
        loaded: Obj = yaml.safe_load(cm["data"]["config.yaml"])
        return loaded

    cfg = relay_config(
        {"retryTimeout": "30s", "sortBufferLenMax": 200, "sortBufferDrainTimeout": "2s"}
    )
    assert cfg["retry-timeout"] == "30s"
    assert cfg["sort-buffer-len-max"] == 200
    assert cfg["sort-buffer-drain-timeout"] == "2s"
    default = relay_config({"retryTimeout": None, "sortBufferLenMax": None})
    assert not {"retry-timeout", "sort-buffer-len-max", "sort-buffer-drain-timeout"} & set(default)


# ---------------------------------------------------------------------------------------
# The keys left unmodelled


def test_every_unmodelled_key_has_a_written_reason() -> None:
    lines = [
        line
        for line in (CHART / "unmodelled-keys.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for line in lines:
        key, sep, reason = line.partition("  # ")
        assert sep and key == key.strip() and " " not in key, f"not 'key  # reason': {line!r}"
        assert len(reason.strip()) >= 10, f"{key}: no written reason"
    reasons = unmodelled_lines(CHART)
    assert len(reasons) == len(lines) and all(reasons.values())
    assert reasons["azure"].startswith("cloud IPAM for AKS")


def test_unmodelled_defaults_are_only_for_unmodelled_keys() -> None:
    keys = unmodelled_keys(CHART)
    for path in flatten(unmodelled_defaults(CHART)):
        parts = path.split(".")
        assert any(".".join(parts[:i]) in keys for i in range(1, len(parts) + 1)), path


def _defaults_of_listed_keys() -> list[tuple[str, Any]]:
    """Each unmodelled key with the part of upstream's recorded default under it."""
    defaults = unmodelled_defaults(CHART)
    out = []
    for key in sorted(unmodelled_keys(CHART)):
        node: Any = defaults
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            out.append((key, node))
    return out


def test_chart_accepts_unmodelled_keys_at_upstreams_default(helm: str, tmp_path: Path) -> None:
    """Every recorded default at once: the chart renders, and what it renders is upstream's
    default cilium-config."""
    listed = _defaults_of_listed_keys()
    assert len(listed) > 20  # shrinks as keys get modelled
    values: Obj = {}
    for key, default in listed:
        values = merged(values, nested(key, default))
    data = config_of(helm, values, tmp_path)
    assert {k: v for k, v in data.items() if k != "cluster-name"} == UPSTREAM_DEFAULT_CONFIG


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"cni": {"iptablesRemoveAWSRules": False}}, "cni.iptablesRemoveAWSRules"),
        ({"preflight": {"tofqdnsPreCache": "/tmp/fqdn"}}, "preflight.tofqdnsPreCache"),
        ({"etcd": {"enabled": False, "endpoints": ["https://etcd:2379"]}}, "etcd"),
        (
            {"hubble": {"export": {"dynamic": {"enabled": False, "extra": 1}}}},
            "hubble.export.dynamic",
        ),
        ({"azure": {"enabled": False, "resourceGroup": "rg"}}, "azure"),  # no recorded default
        ({"underlayProtocol": "ipv4"}, "underlayProtocol"),  # nothing recorded at all
    ],
)
def test_chart_refuses_unmodelled_keys_off_upstreams_default(
    helm: str, tmp_path: Path, values: Obj, key: str
) -> None:
    with pytest.raises(RenderError, match="not modelled by this chart") as err:
        render(helm, values, tmp_path)
    assert f"would be ignored: {key} (" in str(err.value)


def test_chart_1_17_line_refuses_even_upstream_1_18_defaults(helm: str, tmp_path: Path) -> None:
    """The recorded defaults are 1.18's: on the 1.17 line nothing unmodelled is accepted."""
    with pytest.raises(RenderError, match=r"would be ignored: cni\.iptablesRemoveAWSRules \("):
        render(
            helm, {"ciliumVersion": "1.17.11", "cni": {"iptablesRemoveAWSRules": True}}, tmp_path
        )
    assert find(
        render(helm, {"cni": {"iptablesRemoveAWSRules": True}}, tmp_path), "DaemonSet", "cilium"
    )


def _errors(values: Obj, target: str = "1.18.5") -> list[str]:
    findings = check_values(
        values,
        {"debug": {"enabled": False}},
        target_version=target,
        unmodelled=unmodelled_keys(CHART),
        unmodelled_defaults=unmodelled_defaults(CHART),
    )
    return [f.key for f in findings if f.severity == "error"]


def test_values_check_accepts_upstream_defaults_and_names_other_values() -> None:
    aws = "cni.iptablesRemoveAWSRules"
    listed = _defaults_of_listed_keys()
    values: Obj = {}
    for key, default in listed:
        values = merged(values, nested(key, default))
    assert _errors(values) == []
    assert _errors({"ipam": {"operator": {"autoCreateCiliumPodIPPools": {}}}}) == []
    assert _errors({"certgen": {"annotations": {}}}) == []  # an empty map sets nothing
    assert _errors({"authentication": {"mutual": {"port": 4250.0}}}) == []  # a number is a number
    assert _errors({"cni": {"iptablesRemoveAWSRules": False}}) == [aws]
    assert _errors({"gke": {"enabled": True}}) == ["gke"]  # true over false
    assert _errors({"gke": {"enabled": 0}}) == ["gke"]  # 0 is not false
    dynamic = {"hubble": {"export": {"dynamic": {"config": {"configMapName": "x"}}}}}
    assert _errors(dynamic) == ["hubble.export.dynamic"]
    assert _errors({"cni": {"iptablesRemoveAWSRules": True}}, target="1.17.11") == [aws]


def _cilium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", "--kubeconfig", str(tmp / "none"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_values_check_default_accepted_other_value_refused(tmp_path: Path) -> None:
    ok = _cilium(tmp_path, "validate", "values", "--set", "cni.iptablesRemoveAWSRules=true")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _cilium(tmp_path, "install", "--dry-run", "--set", "cni.iptablesRemoveAWSRules=false")
    assert bad.returncode == 1
    assert (
        "cni.iptablesRemoveAWSRules: cni.iptablesRemoveAWSRules is an upstream chart key"
        in bad.stderr
    )


TSC_WORKLOADS = [
    ("operator", {}, "cilium-operator", {"io.cilium/app": "operator", "name": "cilium-operator"}),
    ("hubble.relay", {"hubble": {"relay": {"enabled": True}}}, "hubble-relay", None),
    (
        "hubble.ui",
        {"hubble": {"relay": {"enabled": True}, "ui": {"enabled": True}}},
        "hubble-ui",
        None,
    ),
    (
        "clustermesh.apiserver",
        {"cluster": {"name": "c1", "id": 7}, "clustermesh": {"useAPIServer": True}},
        "clustermesh-apiserver",
        None,
    ),
]


@pytest.mark.parametrize(
    ("prefix", "base", "deployment", "selector"), TSC_WORKLOADS, ids=[w[0] for w in TSC_WORKLOADS]
)
def test_topology_spread_constraints_select_their_own_pods(
    helm: str, tmp_path: Path, prefix: str, base: Obj, deployment: str, selector: Obj | None
) -> None:
    key = f"{prefix}.topologySpreadConstraints"
    assert key not in unmodelled_keys(CHART)
    zone = {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone"}
    own = {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "labelSelector": {"a": "b"}}
    objs = render(helm, merged(base, nested(key, [zone, own])), tmp_path)
    dep = find(objs, "Deployment", deployment)
    want = selector or dep["spec"]["selector"]["matchLabels"]
    assert dep["spec"]["template"]["spec"]["topologySpreadConstraints"] == [
        {**zone, "labelSelector": {"matchLabels": want}},
        own,
    ]
    default = find(render(helm, merged(base, nested(key, [])), tmp_path), "Deployment", deployment)
    assert "topologySpreadConstraints" not in default["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("prefix", "deployment", "container_name"),
    [
        ("hubble.relay", "hubble-relay", "hubble-relay"),
        ("hubble.ui.backend", "hubble-ui", "backend"),
        ("hubble.ui.frontend", "hubble-ui", "frontend"),
    ],
)
def test_extra_volumes_and_mounts(
    helm: str, tmp_path: Path, prefix: str, deployment: str, container_name: str
) -> None:
    base = {"hubble": {"relay": {"enabled": True}, "ui": {"enabled": True}}}
    extra = {
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra", "readOnly": True}],
    }
    objs = render(helm, merged(base, nested(prefix, extra)), tmp_path)
    spec = find(objs, "Deployment", deployment)["spec"]["template"]["spec"]
    assert {"name": "extra", "emptyDir": {}} in spec["volumes"]
    mounts = container(spec, container_name).get("volumeMounts", [])
    assert {"name": "extra", "mountPath": "/extra", "readOnly": True} in mounts
    others = [c for c in spec["containers"] if c["name"] != container_name]
    assert all(m["name"] != "extra" for c in others for m in c.get("volumeMounts", []))
    empty = {"extraVolumes": [], "extraVolumeMounts": []}
    default = find(
        render(helm, merged(base, nested(prefix, empty)), tmp_path), "Deployment", deployment
    )
    plain = find(render(helm, base, tmp_path), "Deployment", deployment)
    assert default["spec"]["template"]["spec"] == plain["spec"]["template"]["spec"]


def test_operator_pdb_unhealthy_pod_eviction_policy(helm: str, tmp_path: Path) -> None:
    assert "operator.podDisruptionBudget.unhealthyPodEvictionPolicy" not in unmodelled_keys(CHART)

    def pdb_spec(extra: Obj) -> Obj:
        values = {"operator": {"podDisruptionBudget": {"enabled": True, **extra}}}
        spec: Obj = find(render(helm, values, tmp_path), "PodDisruptionBudget", "cilium-operator")[
            "spec"
        ]
        return spec

    assert pdb_spec({"unhealthyPodEvictionPolicy": "AlwaysAllow"})[
        "unhealthyPodEvictionPolicy"
    ] == ("AlwaysAllow")
    assert "unhealthyPodEvictionPolicy" not in pdb_spec({"unhealthyPodEvictionPolicy": None})


def test_clustermesh_apiserver_service_fields(helm: str, tmp_path: Path) -> None:
    for key in ("enableSessionAffinity", "loadBalancerClass", "loadBalancerIP"):
        assert f"clustermesh.apiserver.service.{key}" not in unmodelled_keys(CHART)
    base = {"cluster": {"name": "c1", "id": 7}, "clustermesh": {"useAPIServer": True}}

    def svc_spec(apiserver: Obj) -> Obj:
        values = merged(base, {"clustermesh": {"apiserver": apiserver}})
        spec: Obj = find(render(helm, values, tmp_path), "Service", "clustermesh-apiserver")["spec"]
        return spec

    lb = svc_spec(
        {
            "service": {
                "type": "LoadBalancer",
                "loadBalancerClass": "io.cilium/bgp",
                "loadBalancerIP": "192.0.2.10",
                "loadBalancerSourceRanges": ["198.51.100.0/24"],
            }
        }
    )
    assert lb["loadBalancerClass"] == "io.cilium/bgp"
    assert lb["loadBalancerIP"] == "192.0.2.10"
    assert lb["loadBalancerSourceRanges"] == ["198.51.100.0/24"]
    # The load-balancer fields belong to LoadBalancer Services only.
    node_port = svc_spec({"service": {"loadBalancerIP": "192.0.2.10"}})
    assert "loadBalancerIP" not in node_port
    # Session affinity: HAOnly (upstream's default) with one replica is none, with two ClientIP.
    assert "sessionAffinity" not in svc_spec({"service": {"enableSessionAffinity": "HAOnly"}})
    assert svc_spec({"replicas": 2})["sessionAffinity"] == "ClientIP"
    assert svc_spec({"service": {"enableSessionAffinity": "Always"}})["sessionAffinity"] == (
        "ClientIP"
    )
    never = {"replicas": 2, "service": {"enableSessionAffinity": "Never"}}
    assert "sessionAffinity" not in svc_spec(never)
    with pytest.raises(RenderError, match="enableSessionAffinity must be HAOnly"):
        svc_spec({"service": {"enableSessionAffinity": "Sometimes"}})


def test_hubble_ui_labels_and_service_metadata(helm: str, tmp_path: Path) -> None:
    for key in ("hubble.ui.labels", "hubble.ui.service.annotations", "hubble.ui.service.labels"):
        assert key not in unmodelled_keys(CHART)
    base = {"hubble": {"relay": {"enabled": True}, "ui": {"enabled": True}}}
    ui = {"labels": {"team": "obs"}, "service": {"annotations": {"a": "1"}, "labels": {"b": "2"}}}
    objs = render(helm, merged(base, {"hubble": {"ui": ui}}), tmp_path)
    dep = find(objs, "Deployment", "hubble-ui")
    assert dep["metadata"]["labels"]["team"] == "obs"
    assert "team" not in dep["spec"]["template"]["metadata"]["labels"]  # the object, not pods
    svc = find(objs, "Service", "hubble-ui")
    assert svc["metadata"]["annotations"] == {"a": "1"}
    assert svc["metadata"]["labels"]["b"] == "2"
    assert svc["metadata"]["labels"]["k8s-app"] == "hubble-ui"
    plain = find(render(helm, base, tmp_path), "Service", "hubble-ui")
    empty = {"labels": {}, "service": {"annotations": {}, "labels": {}}}
    at_default = find(
        render(helm, merged(base, {"hubble": {"ui": empty}}), tmp_path), "Service", "hubble-ui"
    )
    assert at_default == plain and "annotations" not in plain["metadata"]


def test_secrets_namespace_annotations(helm: str, tmp_path: Path) -> None:
    assert "secretsNamespaceAnnotations" not in unmodelled_keys(CHART)
    objs = render(helm, {"secretsNamespaceAnnotations": {"owner": "net"}}, tmp_path)
    assert find(objs, "Namespace", "cilium-secrets")["metadata"]["annotations"] == {"owner": "net"}
    plain = find(
        render(helm, {"secretsNamespaceAnnotations": {}}, tmp_path), "Namespace", "cilium-secrets"
    )
    assert "annotations" not in plain["metadata"]


NODE_AFFINITY = {
    "requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a"]}]}
        ]
    }
}


def test_preflight_pod_metadata_affinity_and_update_strategy(helm: str, tmp_path: Path) -> None:
    for key in ("affinity", "updateStrategy", "podAnnotations", "podLabels"):
        assert f"preflight.{key}" not in unmodelled_keys(CHART)
    base = {"preflight": {"enabled": True}}
    ds = find(render(helm, base, tmp_path), "DaemonSet", "cilium-pre-flight-check")
    # Upstream's defaults: next to the agent pods, rolling updates.
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    assert ds["spec"]["template"]["spec"]["affinity"] == {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"k8s-app": "cilium"}},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }
    preflight = {
        "enabled": True,
        "podAnnotations": {"a": "1"},
        "podLabels": {"team": "net"},
        "updateStrategy": {"type": "OnDelete"},
        # helm merges maps with the defaults: null removes upstream's podAffinity.
        "affinity": {"podAffinity": None, "nodeAffinity": NODE_AFFINITY},
    }
    objs = render(helm, {"preflight": preflight}, tmp_path)
    ds = find(objs, "DaemonSet", "cilium-pre-flight-check")
    dep = find(objs, "Deployment", "cilium-pre-flight-check")
    assert ds["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert ds["spec"]["template"]["spec"]["affinity"] == {"nodeAffinity": NODE_AFFINITY}
    for workload in (ds, dep):
        meta = workload["spec"]["template"]["metadata"]
        assert meta["annotations"]["a"] == "1" and meta["labels"]["team"] == "net"
    assert ds["spec"]["template"]["metadata"]["annotations"][
        "kubectl.kubernetes.io/default-container"
    ] == ("cilium-pre-flight-check")


PDB_WORKLOADS = [
    ("hubble.relay", {"hubble": {"relay": {"enabled": True}}}, "hubble-relay"),
    ("hubble.ui", {"hubble": {"relay": {"enabled": True}, "ui": {"enabled": True}}}, "hubble-ui"),
    (
        "clustermesh.apiserver",
        {"cluster": {"name": "c1", "id": 7}, "clustermesh": {"useAPIServer": True}},
        "clustermesh-apiserver",
    ),
]


@pytest.mark.parametrize(
    ("prefix", "base", "name"), PDB_WORKLOADS, ids=[w[0] for w in PDB_WORKLOADS]
)
def test_pod_disruption_budgets(
    helm: str, tmp_path: Path, prefix: str, base: Obj, name: str
) -> None:
    key = f"{prefix}.podDisruptionBudget"
    assert key not in unmodelled_keys(CHART)
    objs = render(helm, merged(base, nested(key, {"enabled": True})), tmp_path)
    pdb = find(objs, "PodDisruptionBudget", name)
    dep = find(objs, "Deployment", name)
    # It selects exactly the workload's pods, with upstream's default budget.
    assert pdb["spec"]["selector"] == {"matchLabels": dep["spec"]["selector"]["matchLabels"]}
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    custom = {"enabled": True, "minAvailable": "50%", "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    spec = find(
        render(helm, merged(base, nested(key, custom)), tmp_path), "PodDisruptionBudget", name
    )["spec"]
    assert spec["minAvailable"] == "50%" and "maxUnavailable" not in spec
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    off = render(helm, merged(base, nested(key, {"enabled": False})), tmp_path)
    assert not [o for o in off if o["kind"] == "PodDisruptionBudget"]


# ---------------------------------------------------------------------------------------
# Pod and container fields of clustermesh-apiserver

CLUSTERMESH = {"cluster": {"name": "c1", "id": 7}, "clustermesh": {"useAPIServer": True}}
DROP_ALL = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _apiserver_pod(helm: str, tmp_path: Path, apiserver: Obj) -> Obj:
    values = merged(CLUSTERMESH, {"clustermesh": {"apiserver": apiserver}})
    spec: Obj = find(render(helm, values, tmp_path), "Deployment", "clustermesh-apiserver")["spec"][
        "template"
    ]["spec"]
    return spec


def test_clustermesh_apiserver_security_contexts_default_to_upstreams(
    helm: str, tmp_path: Path
) -> None:
    keys = ("securityContext", "podSecurityContext", "etcd.securityContext")
    for key in (*keys, "kvstoremesh.securityContext"):
        assert f"clustermesh.apiserver.{key}" not in unmodelled_keys(CHART)
    spec = _apiserver_pod(helm, tmp_path, {})
    # Upstream 1.18: non-root pods (uid/gid 65532), no privilege escalation, no capabilities.
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
    }
    for c in spec["initContainers"] + spec["containers"]:
        assert c["securityContext"] == DROP_ALL, c["name"]
    custom = _apiserver_pod(
        helm,
        tmp_path,
        {
            "podSecurityContext": {"runAsUser": 1000, "runAsGroup": None},
            "securityContext": {"readOnlyRootFilesystem": True},
            "etcd": {"securityContext": {"runAsUser": 2000}},
            "kvstoremesh": {"securityContext": {"capabilities": {"drop": ["NET_RAW"]}}},
        },
    )
    assert custom["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 65532}
    by_name = {c["name"]: c for c in custom["initContainers"] + custom["containers"]}
    assert by_name["apiserver"]["securityContext"] == {**DROP_ALL, "readOnlyRootFilesystem": True}
    # etcd's security context is also the etcd-init container's, as upstream's.
    assert by_name["etcd"]["securityContext"] == {**DROP_ALL, "runAsUser": 2000}
    assert by_name["etcd-init"]["securityContext"] == {**DROP_ALL, "runAsUser": 2000}
    assert by_name["kvstoremesh"]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["NET_RAW"]},
    }


def test_clustermesh_apiserver_probes_lifecycle_and_etcd_init(helm: str, tmp_path: Path) -> None:
    for key in (
        "readinessProbe",
        "lifecycle",
        "etcd.lifecycle",
        "etcd.init",
        "kvstoremesh.readinessProbe",
        "kvstoremesh.lifecycle",
    ):
        assert f"clustermesh.apiserver.{key}" not in unmodelled_keys(CHART)
    pre_stop = {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    spec = _apiserver_pod(
        helm,
        tmp_path,
        {
            "readinessProbe": {"periodSeconds": 3, "failureThreshold": 6},
            "lifecycle": pre_stop,
            "etcd": {
                "lifecycle": pre_stop,
                "init": {
                    "extraArgs": ["--timeout=5m"],
                    "extraEnv": [{"name": "GOMAXPROCS", "value": "1"}],
                    "resources": {"requests": {"cpu": "10m"}},
                },
            },
            "kvstoremesh": {"readinessProbe": {"timeoutSeconds": 4}, "lifecycle": pre_stop},
        },
    )
    by_name = {c["name"]: c for c in spec["initContainers"] + spec["containers"]}
    # The probe keeps its /readyz check; the values add to it.
    assert by_name["apiserver"]["readinessProbe"] == {
        "httpGet": {"path": "/readyz", "port": "apiserv-health"},
        "periodSeconds": 3,
        "failureThreshold": 6,
    }
    assert by_name["kvstoremesh"]["readinessProbe"] == {
        "httpGet": {"path": "/readyz", "port": "kvmesh-health"},
        "timeoutSeconds": 4,
    }
    for name in ("apiserver", "etcd", "kvstoremesh"):
        assert by_name[name]["lifecycle"] == pre_stop, name
    init = by_name["etcd-init"]
    assert init["args"][-1] == "--timeout=5m" and init["args"][0] == "etcdinit"
    assert {"name": "GOMAXPROCS", "value": "1"} in init["env"]
    assert init["resources"] == {"requests": {"cpu": "10m"}}
    plain = _apiserver_pod(helm, tmp_path, {})
    for c in plain["initContainers"] + plain["containers"]:
        assert "lifecycle" not in c and "resources" not in c, c["name"]


def test_clustermesh_apiserver_extra_volumes_and_mounts(helm: str, tmp_path: Path) -> None:
    for key in ("extraVolumes", "extraVolumeMounts"):
        assert f"clustermesh.apiserver.{key}" not in unmodelled_keys(CHART)
    mount = {"name": "trust", "mountPath": "/etc/trust", "readOnly": True}
    kv_mount = {"name": "trust", "mountPath": "/etc/kv-trust", "readOnly": True}
    spec = _apiserver_pod(
        helm,
        tmp_path,
        {
            "extraVolumes": [{"name": "trust", "configMap": {"name": "trust-bundle"}}],
            "extraVolumeMounts": [mount],
            "kvstoremesh": {"extraVolumeMounts": [kv_mount]},
        },
    )
    assert {"name": "trust", "configMap": {"name": "trust-bundle"}} in spec["volumes"]
    by_name = {c["name"]: c for c in spec["initContainers"] + spec["containers"]}
    # Upstream mounts them into etcd-init, etcd and apiserver; KVStoreMesh has its own list.
    for name in ("etcd-init", "etcd", "apiserver"):
        assert mount in by_name[name]["volumeMounts"], name
    assert kv_mount in by_name["kvstoremesh"]["volumeMounts"]
    assert mount not in by_name["kvstoremesh"]["volumeMounts"]
    assert _apiserver_pod(
        helm, tmp_path, {"extraVolumes": [], "extraVolumeMounts": []}
    ) == _apiserver_pod(helm, tmp_path, {})


def test_clustermesh_apiserver_service_monitor(helm: str, tmp_path: Path) -> None:
    assert "clustermesh.apiserver.metrics.serviceMonitor" not in unmodelled_keys(CHART)
    sm_values = {
        "enabled": True,
        "labels": {"release": "prom"},
        "annotations": {"team": "net"},
        "interval": "30s",
        "kvstoremesh": {"interval": "20s"},
        "etcd": {"interval": "40s", "metricRelabelings": [{"action": "keep"}]},
    }
    values = merged(
        CLUSTERMESH,
        {"clustermesh": {"apiserver": {"metrics": {"serviceMonitor": sm_values}}}},
    )
    text = render_text(helm, values, tmp_path, "--api-versions", "monitoring.coreos.com/v1")
    objs = [d for d in yaml.safe_load_all(text) if d]
    sm = find(objs, "ServiceMonitor", "clustermesh-apiserver")
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["metadata"]["annotations"] == {"team": "net"}
    endpoints = {e["port"]: e for e in sm["spec"]["endpoints"]}
    assert {p: e["interval"] for p, e in endpoints.items()} == {
        "apiserv-metrics": "30s",
        "kvmesh-metrics": "20s",
        "etcd-metrics": "40s",
    }
    assert endpoints["etcd-metrics"]["metricRelabelings"] == [{"action": "keep"}]
    # It selects the headless metrics Service, which has every scraped port.
    svc = find(objs, "Service", "clustermesh-apiserver-metrics")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert {p["name"] for p in svc["spec"]["ports"]} == set(endpoints)
    # Only the enabled metrics are scraped; with etcd's alone the Service still exists.
    only_etcd = merged(
        values,
        {
            "clustermesh": {
                "apiserver": {"metrics": {"enabled": False, "kvstoremesh": {"enabled": False}}}
            }
        },
    )
    text = render_text(helm, only_etcd, tmp_path, "--api-versions", "monitoring.coreos.com/v1")
    objs = [d for d in yaml.safe_load_all(text) if d]
    sm = find(objs, "ServiceMonitor", "clustermesh-apiserver")
    assert [e["port"] for e in sm["spec"]["endpoints"]] == ["etcd-metrics"]
    svc = find(objs, "Service", "clustermesh-apiserver-metrics")
    assert [p["name"] for p in svc["spec"]["ports"]] == ["etcd-metrics"]
    # Off (upstream's default): no ServiceMonitor, and no need for its CRD.
    off = render(
        helm,
        merged(
            CLUSTERMESH,
            {"clustermesh": {"apiserver": {"metrics": {"serviceMonitor": {"enabled": False}}}}},
        ),
        tmp_path,
    )
    assert not [o for o in off if o["kind"] == "ServiceMonitor"]


# ---------------------------------------------------------------------------------------
# Pre-flight check


def _preflight(helm: str, tmp_path: Path, preflight: Obj, **extra: Any) -> list[Obj]:
    return render(helm, {"preflight": {"enabled": True, **preflight}, **extra}, tmp_path)


def test_preflight_pod_and_container_fields(helm: str, tmp_path: Path) -> None:
    keys = ("annotations", "podSecurityContext", "securityContext", "extraVolumes")
    for key in (*keys, "extraVolumeMounts"):
        assert f"preflight.{key}" not in unmodelled_keys(CHART)
    mount = {"name": "certs", "mountPath": "/etc/certs", "readOnly": True}
    objs = _preflight(
        helm,
        tmp_path,
        {
            "annotations": {"owner": "net"},
            "podSecurityContext": {"fsGroup": 2000},
            "securityContext": {"readOnlyRootFilesystem": True},
            "extraVolumes": [{"name": "certs", "secret": {"secretName": "ca"}}],
            "extraVolumeMounts": [mount],
        },
    )
    for kind in ("DaemonSet", "Deployment"):
        workload = find(objs, kind, "cilium-pre-flight-check")
        assert workload["metadata"]["annotations"] == {"owner": "net"}, kind
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"] == {"fsGroup": 2000}, kind
        assert {"name": "certs", "secret": {"secretName": "ca"}} in spec["volumes"], kind
        for c in spec["containers"]:
            assert c["securityContext"] == {"readOnlyRootFilesystem": True}, (kind, c["name"])
        main = spec["containers"][0]
        assert main["name"] in ("cilium-pre-flight-check", "cnp-validator")
        assert mount in main["volumeMounts"], kind
    plain = _preflight(helm, tmp_path, {})
    for kind in ("DaemonSet", "Deployment"):
        workload = find(plain, kind, "cilium-pre-flight-check")
        assert "annotations" not in workload["metadata"], kind
        spec = workload["spec"]["template"]["spec"]
        assert "securityContext" not in spec
        assert all("securityContext" not in c for c in spec["containers"])


def test_preflight_pre_pulls_envoy_when_envoy_runs_as_a_daemonset(
    helm: str, tmp_path: Path
) -> None:
    assert "preflight.envoy" not in unmodelled_keys(CHART)

    def containers(objs: list[Obj]) -> dict[str, Obj]:
        ds = find(objs, "DaemonSet", "cilium-pre-flight-check")
        return {c["name"]: c for c in ds["spec"]["template"]["spec"]["containers"]}

    # Upstream 1.18's default: Envoy runs as its own DaemonSet, so its image is pulled too.
    envoy = containers(_preflight(helm, tmp_path, {}))["cilium-pre-flight-envoy"]
    assert envoy["image"] == ENVOY_IMAGE
    assert envoy["readinessProbe"]["exec"]["command"] == ["cat", "/tmp/ready"]
    mounts = {m["mountPath"] for m in envoy["volumeMounts"]}
    assert mounts == {"/var/run/cilium/envoy/sockets", "/var/run/cilium/envoy/artifacts"}
    image = {"override": "registry.example/envoy:v1", "pullPolicy": "Always"}
    custom = containers(
        _preflight(helm, tmp_path, {"envoy": {"image": image}, "image": {"pullPolicy": "Never"}})
    )["cilium-pre-flight-envoy"]
    # The image is preflight.envoy.image's; the pull policy preflight.image's, as upstream's.
    assert custom["image"] == "registry.example/envoy:v1"
    assert custom["imagePullPolicy"] == "Never"
    # Envoy inside the agent (or no L7 proxy): nothing more to pull.
    assert set(containers(_preflight(helm, tmp_path, {}, envoy={"enabled": False}))) == {
        "cilium-pre-flight-check"
    }
    assert set(containers(_preflight(helm, tmp_path, {}, l7Proxy=False))) == {
        "cilium-pre-flight-check"
    }


def test_preflight_validate_cnps_and_pod_disruption_budget(helm: str, tmp_path: Path) -> None:
    for key in ("validateCNPs", "podDisruptionBudget"):
        assert f"preflight.{key}" not in unmodelled_keys(CHART)
    objs = _preflight(
        helm,
        tmp_path,
        {"annotations": {"owner": "net"}, "podDisruptionBudget": {"enabled": True}},
    )
    pdb = find(objs, "PodDisruptionBudget", "cilium-pre-flight-check")
    dep = find(objs, "Deployment", "cilium-pre-flight-check")
    # It budgets the CNP validator's pods, with upstream's default budget.
    assert pdb["spec"]["selector"] == {"matchLabels": dep["spec"]["selector"]["matchLabels"]}
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["metadata"]["annotations"] == {"owner": "net"}
    assert not [o for o in _preflight(helm, tmp_path, {}) if o["kind"] == "PodDisruptionBudget"]
    # validateCNPs=false: only the image pre-pull DaemonSet, no validator and no budget.
    off = _preflight(
        helm, tmp_path, {"validateCNPs": False, "podDisruptionBudget": {"enabled": True}}
    )
    kinds = {(o["kind"], o["metadata"]["name"]) for o in off}
    assert ("DaemonSet", "cilium-pre-flight-check") in kinds
    assert not {k for k in kinds if k[0] in ("Deployment", "PodDisruptionBudget")}


# ---------------------------------------------------------------------------------------
# Hubble relay and UI

HUBBLE_UI = {"hubble": {"relay": {"enabled": True}, "ui": {"enabled": True}}}


def test_hubble_relay_and_ui_annotations_reach_every_object(helm: str, tmp_path: Path) -> None:
    for key in ("hubble.relay.annotations", "hubble.ui.annotations"):
        assert key not in unmodelled_keys(CHART)
    values = merged(
        HUBBLE_UI,
        {
            "hubble": {
                "relay": {
                    "annotations": {"team": "relay"},
                    "podDisruptionBudget": {"enabled": True},
                },
                "ui": {
                    "annotations": {"team": "ui", "tier": "web"},
                    "service": {"annotations": {"tier": "edge"}},
                    "podDisruptionBudget": {"enabled": True},
                },
            },
            "serviceAccounts": {"ui": {"annotations": {"iam": "role"}}},
        },
    )
    objs = render(helm, values, tmp_path)
    relay = [
        ("ConfigMap", "hubble-relay-config"),
        ("Deployment", "hubble-relay"),
        ("Service", "hubble-relay"),
        ("ServiceAccount", "hubble-relay"),
        ("PodDisruptionBudget", "hubble-relay"),
    ]
    for kind, name in relay:
        assert find(objs, kind, name)["metadata"]["annotations"] == {"team": "relay"}, kind
    ui = [
        ("ConfigMap", "hubble-ui-nginx"),
        ("Deployment", "hubble-ui"),
        ("ClusterRole", "hubble-ui"),
        ("ClusterRoleBinding", "hubble-ui"),
        ("PodDisruptionBudget", "hubble-ui"),
    ]
    for kind, name in ui:
        assert find(objs, kind, name)["metadata"]["annotations"] == {
            "team": "ui",
            "tier": "web",
        }, kind
    # An object's own annotations are kept, and win on a shared key.
    svc = find(objs, "Service", "hubble-ui")["metadata"]["annotations"]
    assert svc == {"team": "ui", "tier": "edge"}
    sa = find(objs, "ServiceAccount", "hubble-ui")["metadata"]["annotations"]
    assert sa == {"team": "ui", "tier": "web", "iam": "role"}
    # Pods are not "objects" here: their annotations stay podAnnotations'.
    pod = find(objs, "Deployment", "hubble-ui")["spec"]["template"]["metadata"]
    assert "team" not in pod.get("annotations", {})
    plain = render(helm, HUBBLE_UI, tmp_path)
    for kind, name in relay[:4] + ui[:4]:
        assert "annotations" not in find(plain, kind, name)["metadata"], kind


def test_hubble_ui_ingress(helm: str, tmp_path: Path) -> None:
    assert "hubble.ui.ingress" not in unmodelled_keys(CHART)
    ingress = {
        "enabled": True,
        "className": "nginx",
        "hosts": ["hubble.example.com", "ui.example.com"],
        "annotations": {"cert-manager.io/cluster-issuer": "le"},
        "labels": {"expose": "yes"},
        "tls": [{"secretName": "hubble-tls", "hosts": ["hubble.example.com"]}],
    }
    values = merged(HUBBLE_UI, {"hubble": {"ui": {"ingress": ingress, "baseUrl": "/hubble/"}}})
    objs = render(helm, values, tmp_path)
    ing = find(objs, "Ingress", "hubble-ui")
    assert ing["apiVersion"] == "networking.k8s.io/v1"
    assert ing["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "le"}
    assert ing["metadata"]["labels"]["expose"] == "yes"
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == ingress["tls"]
    svc = find(objs, "Service", "hubble-ui")
    port = svc["spec"]["ports"][0]["name"]
    for rule, host in zip(ing["spec"]["rules"], ingress["hosts"], strict=True):
        assert rule["host"] == host
        (path,) = rule["http"]["paths"]
        assert path["path"] == "/hubble/" and path["pathType"] == "Prefix"
        assert path["backend"] == {"service": {"name": "hubble-ui", "port": {"name": port}}}
    # Upstream's default: no Ingress; no class name: the cluster's default class.
    assert not [o for o in render(helm, HUBBLE_UI, tmp_path) if o["kind"] == "Ingress"]
    bare = merged(HUBBLE_UI, {"hubble": {"ui": {"ingress": {"enabled": True}}}})
    ing = find(render(helm, bare, tmp_path), "Ingress", "hubble-ui")
    assert "ingressClassName" not in ing["spec"] and "tls" not in ing["spec"]
    assert [r["host"] for r in ing["spec"]["rules"]] == ["chart-example.local"]


def test_hubble_ui_backend_probes(helm: str, tmp_path: Path) -> None:
    for key in ("livenessProbe", "readinessProbe"):
        assert f"hubble.ui.backend.{key}" not in unmodelled_keys(CHART)

    def backend(probes: Obj) -> Obj:
        values = merged(HUBBLE_UI, {"hubble": {"ui": {"backend": probes}}})
        spec = find(render(helm, values, tmp_path), "Deployment", "hubble-ui")["spec"]
        return container(spec["template"]["spec"], "backend")

    on = backend({"livenessProbe": {"enabled": True}, "readinessProbe": {"enabled": True}})
    grpc = next(p["containerPort"] for p in on["ports"] if p["name"] == "grpc")
    for probe in ("livenessProbe", "readinessProbe"):
        assert on[probe] == {"httpGet": {"path": "/healthz", "port": grpc}}, probe
    off = backend({"livenessProbe": {"enabled": False}, "readinessProbe": {"enabled": False}})
    assert "livenessProbe" not in off and "readinessProbe" not in off


def test_hubble_relay_pprof(helm: str, tmp_path: Path) -> None:
    assert "hubble.relay.pprof" not in unmodelled_keys(CHART)

    def relay_config(pprof: Obj) -> Obj:
        values = merged(HUBBLE_UI, {"hubble": {"relay": {"pprof": pprof}}})
        cm = find(render(helm, values, tmp_path), "ConfigMap", "hubble-relay-config")
        loaded: Obj = yaml.safe_load(cm["data"]["config.yaml"])
        return loaded

    cfg = relay_config({"enabled": True, "address": "0.0.0.0", "port": 6070})
    assert {k: cfg[k] for k in ("pprof", "pprof-address", "pprof-port")} == {
        "pprof": "true",
        "pprof-address": "0.0.0.0",
        "pprof-port": "6070",
    }
    assert relay_config({"enabled": True})["pprof-port"] == "6062"  # upstream's default
    assert not {"pprof", "pprof-address", "pprof-port"} & set(relay_config({"enabled": False}))


def test_hubble_relay_metrics_service_and_service_monitor(helm: str, tmp_path: Path) -> None:
    assert "hubble.relay.prometheus.serviceMonitor" not in unmodelled_keys(CHART)
    prometheus = {
        "enabled": True,
        "port": 9977,
        "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}, "interval": "15s"},
    }
    values = merged(HUBBLE_UI, {"hubble": {"relay": {"prometheus": prometheus}}})
    text = render_text(helm, values, tmp_path, "--api-versions", "monitoring.coreos.com/v1")
    objs = [d for d in yaml.safe_load_all(text) if d]
    sm = find(objs, "ServiceMonitor", "hubble-relay")
    assert sm["metadata"]["labels"]["release"] == "prom"
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["interval"] == "15s" and endpoint["path"] == "/metrics"
    # Exactly one Service matches: the headless metrics Service on relay's metrics port.
    services = [
        o
        for o in objs
        if o["kind"] == "Service"
        and sm["spec"]["selector"]["matchLabels"].items() <= o["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in services] == ["hubble-relay-metrics"]
    (port,) = services[0]["spec"]["ports"]
    assert port["name"] == endpoint["port"] and port["port"] == 9977
    relay = find(objs, "Deployment", "hubble-relay")["spec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in container(relay, "hubble-relay")["ports"]}
    assert ports[port["targetPort"]] == 9977
    # Metrics without a ServiceMonitor: the Service alone (as upstream), no CRD needed.
    metrics_only = merged(HUBBLE_UI, {"hubble": {"relay": {"prometheus": {"enabled": True}}}})
    objs = render(helm, metrics_only, tmp_path)
    assert find(objs, "Service", "hubble-relay-metrics")
    assert not [o for o in objs if o["kind"] == "ServiceMonitor"]
    assert not [
        o
        for o in render(helm, HUBBLE_UI, tmp_path)
        if o["metadata"]["name"] == "hubble-relay-metrics"
    ]


# ---------------------------------------------------------------------------------------
# Agent and operator pod options


def _agent_pod(objs: list[Obj]) -> Obj:
    spec: Obj = find(objs, "DaemonSet", "cilium")["spec"]["template"]["spec"]
    return spec


def _operator_pod(objs: list[Obj]) -> Obj:
    spec: Obj = find(objs, "Deployment", "cilium-operator")["spec"]["template"]["spec"]
    return spec


def test_kube_config_path(helm: str, tmp_path: Path) -> None:
    assert "kubeConfigPath" not in unmodelled_keys(CHART)
    path = "/etc/kubernetes/cilium.kubeconfig"
    objs = render(helm, {"kubeConfigPath": path}, tmp_path)
    assert find(objs, "ConfigMap", "cilium-config")["data"]["k8s-kubeconfig-path"] == path
    volume = {"name": "kube-config", "hostPath": {"path": path, "type": "FileOrCreate"}}
    mount = {"name": "kube-config", "mountPath": path, "readOnly": True}
    agent = _agent_pod(objs)
    assert volume in agent["volumes"]
    assert mount in container(agent, "cilium-agent")["volumeMounts"]
    config = container(agent, "config", init=True)
    assert f"--k8s-kubeconfig-path={path}" in config["command"]
    assert mount in config["volumeMounts"]
    operator = _operator_pod(objs)
    assert volume in operator["volumes"]
    assert mount in container(operator, "cilium-operator")["volumeMounts"]
    # Upstream's default (empty): the service account, nothing mounted, no config key.
    plain = render(helm, {"kubeConfigPath": ""}, tmp_path)
    assert "k8s-kubeconfig-path" not in find(plain, "ConfigMap", "cilium-config")["data"]
    for pod in (_agent_pod(plain), _operator_pod(plain)):
        assert all(v["name"] != "kube-config" for v in pod["volumes"])


def test_operator_extra_host_path_mounts(helm: str, tmp_path: Path) -> None:
    assert "operator.extraHostPathMounts" not in unmodelled_keys(CHART)
    entry = {
        "name": "aws-creds",
        "mountPath": "/var/lib/aws",
        "hostPath": "/etc/aws",
        "hostPathType": "Directory",
        "readOnly": True,
        "mountPropagation": "HostToContainer",
    }
    operator = _operator_pod(render(helm, {"operator": {"extraHostPathMounts": [entry]}}, tmp_path))
    assert {"name": "aws-creds", "hostPath": {"path": "/etc/aws", "type": "Directory"}} in operator[
        "volumes"
    ]
    assert {
        "name": "aws-creds",
        "mountPath": "/var/lib/aws",
        "readOnly": True,
        "mountPropagation": "HostToContainer",
    } in container(operator, "cilium-operator")["volumeMounts"]
    # Without a type or readOnly: no type, writable (as upstream's).
    bare = {"name": "h", "mountPath": "/h", "hostPath": "/var/h"}
    operator = _operator_pod(render(helm, {"operator": {"extraHostPathMounts": [bare]}}, tmp_path))
    assert {"name": "h", "hostPath": {"path": "/var/h"}} in operator["volumes"]
    assert {"name": "h", "mountPath": "/h", "readOnly": False} in container(
        operator, "cilium-operator"
    )["volumeMounts"]
    # The agent's own extraHostPathMounts render as before.
    agent = _agent_pod(render(helm, {"extraHostPathMounts": [entry]}, tmp_path))
    assert {"name": "aws-creds", "hostPath": {"path": "/etc/aws", "type": "Directory"}} in agent[
        "volumes"
    ]


def test_cgroup_auto_mount_resources(helm: str, tmp_path: Path) -> None:
    assert "cgroup.autoMount.resources" not in unmodelled_keys(CHART)
    res = {"requests": {"cpu": "10m", "memory": "8Mi"}}
    agent = _agent_pod(
        render(helm, {"cgroup": {"autoMount": {"resources": res}}, "initResources": {}}, tmp_path)
    )
    assert container(agent, "mount-cgroup", init=True)["resources"] == res
    # Unset (upstream's default), mount-cgroup is sized like the other init containers.
    init = {"limits": {"cpu": "1"}}
    agent = _agent_pod(render(helm, {"initResources": init}, tmp_path))
    assert container(agent, "mount-cgroup", init=True)["resources"] == init
    assert container(agent, "clean-cilium-state", init=True)["resources"] == init
    both = {"initResources": init, "cgroup": {"autoMount": {"resources": res}}}
    agent = _agent_pod(render(helm, both, tmp_path))
    assert container(agent, "mount-cgroup", init=True)["resources"] == res
    assert container(agent, "clean-cilium-state", init=True)["resources"] == init


def test_sleep_after_init(helm: str, tmp_path: Path) -> None:
    assert "sleepAfterInit" not in unmodelled_keys(CHART)
    agent = container(_agent_pod(render(helm, {"sleepAfterInit": True}, tmp_path)), "cilium-agent")
    assert agent["command"][0] == "/bin/bash" and "sleep" in agent["args"][0]
    assert "cilium-agent" not in " ".join(agent["command"] + agent["args"])
    assert agent["livenessProbe"] == agent["readinessProbe"] == {"exec": {"command": ["true"]}}
    assert "startupProbe" not in agent
    plain = container(_agent_pod(render(helm, {"sleepAfterInit": False}, tmp_path)), "cilium-agent")
    assert plain["command"] == ["cilium-agent"] and "startupProbe" in plain


def test_wait_for_kube_proxy(helm: str, tmp_path: Path) -> None:
    assert "waitForKubeProxy" not in unmodelled_keys(CHART)

    def inits(values: Obj) -> list[str]:
        return [c["name"] for c in _agent_pod(render(helm, values, tmp_path))["initContainers"]]

    names = inits({"waitForKubeProxy": True})
    # After the state clean-up, before the CNI plugin is installed (the node stays not-ready).
    assert names.index("clean-cilium-state") < names.index("wait-for-kube-proxy")
    assert names.index("wait-for-kube-proxy") < names.index("install-cni-binaries")
    wait = container(
        _agent_pod(render(helm, {"waitForKubeProxy": True}, tmp_path)),
        "wait-for-kube-proxy",
        init=True,
    )
    script = wait["command"][-1]
    assert "KUBE-PROXY-CANARY" in script and "iptables-nft-save" in script
    assert wait["securityContext"] == {"privileged": True}
    # With kube-proxy replacement there is no kube-proxy to wait for.
    kpr = {
        "waitForKubeProxy": True,
        "kubeProxyReplacement": "true",
        "k8sServiceHost": "10.0.0.1",
        "k8sServicePort": 6443,
    }
    assert "wait-for-kube-proxy" not in inits(kpr)
    assert "wait-for-kube-proxy" not in inits({"waitForKubeProxy": False})


def test_monitor_sidecar(helm: str, tmp_path: Path) -> None:
    assert "monitor" not in unmodelled_keys(CHART)
    values = {"monitor": {"enabled": True, "eventTypes": ["drop", "trace"]}}
    agent = _agent_pod(render(helm, values, tmp_path))
    monitor = container(agent, "cilium-monitor")
    assert monitor["image"] == container(agent, "cilium-agent")["image"]
    assert monitor["args"][-1].endswith("cilium-dbg monitor --type=drop --type=trace")
    assert "/var/run/cilium/monitor1_2.sock" in monitor["args"][-1]
    assert {"name": "cilium-run", "mountPath": "/var/run/cilium"} in monitor["volumeMounts"]
    plain = _agent_pod(render(helm, {"monitor": {"enabled": False}}, tmp_path))
    assert [c["name"] for c in plain["containers"]] == ["cilium-agent"]


def test_resource_quotas(helm: str, tmp_path: Path) -> None:
    assert "resourceQuotas" not in unmodelled_keys(CHART)
    objs = render(helm, {"resourceQuotas": {"enabled": True}}, tmp_path)
    agent = find(objs, "ResourceQuota", "cilium-resource-quota")["spec"]
    operator = find(objs, "ResourceQuota", "cilium-operator-resource-quota")["spec"]
    # Upstream's defaults, scoped to the priority classes the agent and operator run with.
    assert agent["hard"] == {"pods": "10k"} and operator["hard"] == {"pods": "15"}
    assert agent["scopeSelector"]["matchExpressions"] == [
        {"operator": "In", "scopeName": "PriorityClass", "values": ["system-node-critical"]}
    ]
    assert operator["scopeSelector"]["matchExpressions"][0]["values"] == ["system-cluster-critical"]
    assert (
        _agent_pod(objs)["priorityClassName"],
        _operator_pod(objs)["priorityClassName"],
    ) == ("system-node-critical", "system-cluster-critical")
    custom = {"enabled": True, "cilium": {"hard": {"pods": "500"}}}
    objs = render(helm, {"resourceQuotas": custom, "operator": {"enabled": False}}, tmp_path)
    quotas = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ResourceQuota"}
    assert set(quotas) == {"cilium-resource-quota"}
    assert quotas["cilium-resource-quota"]["spec"]["hard"] == {"pods": "500"}
    off = render(helm, {"resourceQuotas": {"enabled": False}}, tmp_path)
    assert not [o for o in off if o["kind"] == "ResourceQuota"]


def test_ip_masq_agent(helm: str, tmp_path: Path) -> None:
    assert "ipMasqAgent" not in unmodelled_keys(CHART)
    config = {"nonMasqueradeCIDRs": ["10.0.0.0/8", "192.168.0.0/16"], "masqLinkLocal": False}
    values = {"ipMasqAgent": {"enabled": True, "config": config}, "bpf": {"masquerade": True}}
    objs = render(helm, values, tmp_path)
    assert find(objs, "ConfigMap", "cilium-config")["data"]["enable-ip-masq-agent"] == "true"
    cm = find(objs, "ConfigMap", "ip-masq-agent")
    assert json.loads(cm["data"]["config"]) == config
    agent = _agent_pod(objs)
    volume = next(v for v in agent["volumes"] if v["name"] == "ip-masq-agent")
    assert volume["configMap"]["name"] == "ip-masq-agent"
    (item,) = volume["configMap"]["items"]
    mount = next(
        m for m in container(agent, "cilium-agent")["volumeMounts"] if m["name"] == "ip-masq-agent"
    )
    # The agent reads /etc/config/ip-masq-agent: the ConfigMap's "config" key.
    assert (mount["mountPath"], item) == ("/etc/config", {"key": "config", "path": "ip-masq-agent"})
    # Enabled without a config: the agent's defaults, no ConfigMap (the volume is optional).
    objs = render(helm, {"ipMasqAgent": {"enabled": True}, "bpf": {"masquerade": True}}, tmp_path)
    assert not [o for o in objs if o["metadata"]["name"] == "ip-masq-agent"]
    assert volume["configMap"]["optional"] is True
    # Upstream's default renders upstream's default cilium-config.
    data = config_of(helm, {"ipMasqAgent": {"enabled": False}}, tmp_path)
    assert {k: v for k, v in data.items() if k != "cluster-name"} == UPSTREAM_DEFAULT_CONFIG


# ---------------------------------------------------------------------------------------
# CA bundle

TLS_EVERYWHERE = merged(
    CLUSTERMESH,
    {
        "hubble": {
            "relay": {"enabled": True, "tls": {"server": {"enabled": True}}},
            "ui": {"enabled": True},
            "metrics": {
                "enabled": ["dns"],
                "tls": {"enabled": True, "server": {"mtls": {"enabled": True}}},
            },
        }
    },
)

#: (workload, volume, path of the CA certificate in it)
CA_FILES = [
    ("cilium", "hubble-tls", "client-ca.crt"),
    ("cilium", "hubble-metrics-tls", "client-ca.crt"),
    ("clustermesh-apiserver", "etcd-server-secrets", "ca.crt"),
    ("clustermesh-apiserver", "etcd-admin-client", "ca.crt"),
    ("clustermesh-apiserver", "kvstoremesh-secrets", "local-etcd-client-ca.crt"),
    ("hubble-relay", "tls", "hubble-server-ca.crt"),
    ("hubble-ui", "hubble-ui-client-certs", "hubble-relay-ca.crt"),
]


def _ca_sources(objs: list[Obj]) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """(workload, volume) -> the (kind, name, key) every CA_FILES path is projected from."""
    out: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for workload, volume, path in CA_FILES:
        obj = next(
            o
            for o in objs
            if o["kind"] in ("DaemonSet", "Deployment") and o["metadata"]["name"] == workload
        )
        vol = next(v for v in obj["spec"]["template"]["spec"]["volumes"] if v["name"] == volume)
        out[(workload, volume)] = [
            (kind, source[kind]["name"], item["key"])
            for source in vol["projected"]["sources"]
            for kind in source
            for item in source[kind].get("items", [])
            if item["path"] == path
        ]
    return out


def test_tls_ca_bundle(helm: str, tmp_path: Path) -> None:
    assert "tls.caBundle" not in unmodelled_keys(CHART)
    # Default: each CA comes from the ca.crt of the certificate's own Secret.
    for where, sources in _ca_sources(render(helm, TLS_EVERYWHERE, tmp_path)).items():
        assert len(sources) == 1 and sources[0][0] == "secret" and sources[0][2] == "ca.crt", where
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    bundle = {"tls": {"caBundle": {"enabled": True, "content": pem}}}
    objs = render(helm, merged(TLS_EVERYWHERE, bundle), tmp_path)
    for where, sources in _ca_sources(objs).items():
        assert sources == [("configMap", "cilium-root-ca.crt", "ca.crt")], where
    cm = find(objs, "ConfigMap", "cilium-root-ca.crt")
    assert cm["data"] == {"ca.crt": pem}
    # A bundle kept in a Secret of the user's, under another key: referenced, not created.
    secret = {"enabled": True, "useSecret": True, "name": "corp-ca", "key": "bundle.pem"}
    objs = render(helm, merged(TLS_EVERYWHERE, {"tls": {"caBundle": secret}}), tmp_path)
    for where, sources in _ca_sources(objs).items():
        assert sources == [("secret", "corp-ca", "bundle.pem")], where
    assert not [o for o in objs if o["metadata"]["name"] in ("corp-ca", "cilium-root-ca.crt")]
    with pytest.raises(RenderError, match="useSecret"):
        render(
            helm,
            merged(TLS_EVERYWHERE, {"tls": {"caBundle": {**secret, "content": pem}}}),
            tmp_path,
        )


# ---------------------------------------------------------------------------------------
# Hubble metrics TLS

METRICS_TLS = {"hubble": {"metrics": {"enabled": ["dns"], "tls": {"enabled": True}}}}


def _san(secret: Obj) -> list[str]:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n.value) for n in ext]


def test_hubble_metrics_certificate_extra_names(helm: str, tmp_path: Path) -> None:
    for key in ("extraDnsNames", "extraIpAddresses"):
        assert f"hubble.metrics.tls.server.{key}" not in unmodelled_keys(CHART)
    server = {"extraDnsNames": ["metrics.example.com"], "extraIpAddresses": ["192.0.2.7"]}
    values = merged(METRICS_TLS, {"hubble": {"metrics": {"tls": {"server": server}}}})
    secret = find(render(helm, values, tmp_path), "Secret", "hubble-metrics-server-certs")
    names = _san(secret)
    assert "*.default.hubble-metrics.cilium.io" in names
    assert "metrics.example.com" in names and "192.0.2.7" in names
    plain = find(render(helm, METRICS_TLS, tmp_path), "Secret", "hubble-metrics-server-certs")
    assert _san(plain) == ["*.default.hubble-metrics.cilium.io"]


def test_hubble_metrics_mtls_client_ca(helm: str, tmp_path: Path) -> None:
    for key in ("useSecret", "name", "key"):
        assert f"hubble.metrics.tls.server.mtls.{key}" not in unmodelled_keys(CHART)

    def client_ca(mtls: Obj) -> list[tuple[str, str, str, Any]]:
        values = merged(METRICS_TLS, {"hubble": {"metrics": {"tls": {"server": {"mtls": mtls}}}}})
        agent = _agent_pod(render(helm, values, tmp_path))
        vol = next(v for v in agent["volumes"] if v["name"] == "hubble-metrics-tls")
        return [
            (kind, src[kind]["name"], item["key"], src[kind].get("optional"))
            for src in vol["projected"]["sources"]
            for kind in src
            for item in src[kind].get("items", [])
            if item["path"] == "client-ca.crt"
        ]

    # Upstream's default: the Hubble CA (ca.crt of the metrics server's Secret).
    assert client_ca({"enabled": True}) == [
        ("secret", "hubble-metrics-server-certs", "ca.crt", True)
    ]
    # A CA of the user's, which must exist (optional: false), from a ConfigMap or a Secret.
    assert client_ca({"enabled": True, "name": "clients-ca"}) == [
        ("configMap", "clients-ca", "ca.crt", False)
    ]
    assert client_ca(
        {"enabled": True, "name": "clients-ca", "useSecret": True, "key": "ca.pem"}
    ) == [("secret", "clients-ca", "ca.pem", False)]
    # Without mTLS no client CA is mounted.
    assert client_ca({"enabled": False, "name": "clients-ca"}) == []


def test_k8s_service_host_ref(helm: str, tmp_path: Path) -> None:
    assert "k8sServiceHostRef" not in unmodelled_keys(CHART)
    values = {
        "kubeProxyReplacement": "true",
        "k8sServiceHostRef": {"name": "cluster-info", "key": "api-host"},
        "k8sServicePort": 6443,
    }
    objs = render(helm, values, tmp_path)
    host = {"configMapKeyRef": {"name": "cluster-info", "key": "api-host"}}
    agent = _agent_pod(objs)
    for c, init in (("cilium-agent", False), ("config", True), ("clean-cilium-state", True)):
        env = {e["name"]: e for e in container(agent, c, init=init)["env"]}
        assert env["KUBERNETES_SERVICE_HOST"]["valueFrom"] == host, c
        assert env["KUBERNETES_SERVICE_PORT"]["value"] == "6443", c
    operator = container(_operator_pod(objs), "cilium-operator")
    assert {e["name"]: e.get("valueFrom") for e in operator["env"]}[
        "KUBERNETES_SERVICE_HOST"
    ] == host
    # k8sServiceHost wins when both are given (one KUBERNETES_SERVICE_HOST per container).
    both = render(helm, {**values, "k8sServiceHost": "10.0.0.1"}, tmp_path)
    env = container(_agent_pod(both), "cilium-agent")["env"]
    assert [e.get("value") for e in env if e["name"] == "KUBERNETES_SERVICE_HOST"] == ["10.0.0.1"]
    # Without a port, or with half a reference, the chart refuses (no API server address).
    with pytest.raises(RenderError, match="k8sServicePort"):
        render(helm, {**values, "k8sServicePort": ""}, tmp_path)
    with pytest.raises(RenderError, match="kubeProxyReplacement=true needs"):
        render(helm, {**values, "k8sServiceHostRef": {"name": "cluster-info"}}, tmp_path)
    plain = container(_agent_pod(render(helm, {"k8sServiceHostRef": {}}, tmp_path)), "cilium-agent")
    assert "KUBERNETES_SERVICE_HOST" not in {e["name"] for e in plain["env"]}


def test_scheduling_mode(helm: str, tmp_path: Path) -> None:
    assert "scheduling" not in unmodelled_keys(CHART)
    default = _agent_pod(render(helm, {"scheduling": {"mode": "anti-affinity"}}, tmp_path))
    # Upstream's default: the agent pods' anti-affinity keeps one per node.
    term = default["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == [
        {
            "labelSelector": {"matchLabels": {"k8s-app": "cilium"}},
            "topologyKey": "kubernetes.io/hostname",
        }
    ]
    fast = _agent_pod(render(helm, {"scheduling": {"mode": "kube-scheduler"}}, tmp_path))
    assert "affinity" not in fast
    with pytest.raises(RenderError, match="scheduling"):
        render(helm, {"scheduling": {"mode": "random"}}, tmp_path)


def test_hubble_certificates_given_as_values(helm: str, tmp_path: Path) -> None:
    keys = [
        "hubble.tls.server",
        "hubble.metrics.tls.server",
        "hubble.relay.tls.client",
        "hubble.relay.tls.server",
        "hubble.ui.tls.client",
    ]
    for key in keys:
        assert f"{key}.cert" not in unmodelled_keys(CHART)
        assert f"{key}.key" not in unmodelled_keys(CHART)

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    pairs = {key: {"cert": b64(f"{key} cert"), "key": b64(f"{key} key")} for key in keys}
    values: Obj = {"tls": {"ca": {"cert": b64("the CA")}}}
    for key, pair in pairs.items():
        values = merged(values, nested(key, pair))
    values = merged(
        values,
        {
            "hubble": {
                "tls": {"auto": {"enabled": False}},
                "relay": {"enabled": True, "tls": {"server": {"enabled": True}}},
                "ui": {"enabled": True},
                "metrics": {"enabled": ["dns"], "tls": {"enabled": True}},
            }
        },
    )
    objs = render(helm, values, tmp_path)
    secrets = {
        "hubble-server-certs": "hubble.tls.server",
        "hubble-metrics-server-certs": "hubble.metrics.tls.server",
        "hubble-relay-client-certs": "hubble.relay.tls.client",
        "hubble-relay-server-certs": "hubble.relay.tls.server",
        "hubble-ui-client-certs": "hubble.ui.tls.client",
    }
    for name, key in secrets.items():
        secret = find(objs, "Secret", name)
        assert secret["type"] == "kubernetes.io/tls"
        assert secret["data"] == {
            "ca.crt": b64("the CA"),
            "tls.crt": pairs[key]["cert"],
            "tls.key": pairs[key]["key"],
        }, name
    # Nothing generated: no CA of the chart's own.
    assert not [o for o in objs if o["metadata"]["name"] == "cilium-ca"]
    # A component with an existingSecret gets none; a missing certificate is refused, named.
    existing = merged(values, {"hubble": {"tls": {"server": {"existingSecret": "mine"}}}})
    assert not [
        o
        for o in render(helm, existing, tmp_path)
        if o["metadata"]["name"] == "hubble-server-certs"
    ]
    missing = merged(values, {"hubble": {"relay": {"tls": {"client": {"cert": ""}}}}})
    with pytest.raises(RenderError, match=r"hubble\.relay\.tls\.client\.cert"):
        render(helm, missing, tmp_path)
    # Auto TLS (upstream's default) ignores them: the chart generates every certificate.
    auto = merged(values, {"hubble": {"tls": {"auto": {"enabled": True}}}})
    generated = find(render(helm, auto, tmp_path), "Secret", "hubble-server-certs")
    assert generated["data"]["tls.crt"] != pairs["hubble.tls.server"]["cert"]


def test_certificate_method_options_of_methods_this_chart_refuses(
    helm: str, tmp_path: Path
) -> None:
    """Options of upstream's cronJob and certmanager methods: with the helm method (the only
    one this chart supports, and upstream's default) upstream renders nothing from them, so
    they are accepted and change nothing; the other methods themselves are refused."""
    keys = [
        "hubble.tls.auto.schedule",
        "hubble.tls.auto.certManagerIssuerRef",
        "clustermesh.apiserver.tls.auto.certManagerIssuerRef",
        "serviceAccounts.hubblecertgen",
        "serviceAccounts.clustermeshcertgen",
    ]
    for key in keys:
        assert key not in unmodelled_keys(CHART)
    base = merged(CLUSTERMESH, {"hubble": {"relay": {"enabled": True}}})
    issuer = {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "ca"}
    sa = {"create": False, "name": "x", "automount": False, "annotations": {"a": "b"}}
    options = {
        "hubble": {"tls": {"auto": {"schedule": "0 0 * * 0", "certManagerIssuerRef": issuer}}},
        "clustermesh": {"apiserver": {"tls": {"auto": {"certManagerIssuerRef": issuer}}}},
        "serviceAccounts": {"hubblecertgen": sa, "clustermeshcertgen": sa},
    }

    def shape(objs: list[Obj]) -> list[tuple[str, str]]:
        return sorted((o["kind"], o["metadata"]["name"]) for o in objs)

    assert shape(render(helm, merged(base, options), tmp_path)) == shape(
        render(helm, base, tmp_path)
    )
    for method in ("cronJob", "certmanager"):
        with pytest.raises(RenderError):
            render(helm, merged(base, {"hubble": {"tls": {"auto": {"method": method}}}}), tmp_path)


def test_keep_deprecated_labels_and_probes(helm: str, tmp_path: Path) -> None:
    for key in ("keepDeprecatedLabels", "keepDeprecatedProbes"):
        assert key not in unmodelled_keys(CHART)
    legacy = "kubernetes.io/cluster-service"
    ds = find(render(helm, {"keepDeprecatedLabels": True}, tmp_path), "DaemonSet", "cilium")
    # A pre-1.8 DaemonSet's selector (immutable), and the labels it selects.
    assert ds["spec"]["selector"]["matchLabels"] == {"k8s-app": "cilium", legacy: "true"}
    assert ds["spec"]["template"]["metadata"]["labels"][legacy] == "true"
    assert ds["metadata"]["labels"][legacy] == "true"
    plain = find(render(helm, {"keepDeprecatedLabels": False}, tmp_path), "DaemonSet", "cilium")
    assert plain["spec"]["selector"]["matchLabels"] == {"k8s-app": "cilium"}

    def probes(values: Obj) -> tuple[Obj, Obj, Obj]:
        agent = container(_agent_pod(render(helm, values, tmp_path)), "cilium-agent")
        return agent["livenessProbe"], agent["readinessProbe"], agent["startupProbe"]

    exec_probe = {"command": ["cilium", "status", "--brief"]}
    for values in ({"keepDeprecatedProbes": True}, {"upgradeCompatibility": "1.7"}):
        live, ready, startup = probes(values)
        assert live["exec"] == ready["exec"] == exec_probe, values
        assert "httpGet" not in live and "httpGet" in startup
    live, ready, _ = probes({"keepDeprecatedProbes": False})
    assert "exec" not in live and live["httpGet"]["path"] == ready["httpGet"]["path"] == "/healthz"


def test_hubble_ui_standalone(helm: str, tmp_path: Path) -> None:
    assert "hubble.ui.standalone" not in unmodelled_keys(CHART)
    certs = {"projected": {"sources": [{"secret": {"name": "hubble-ui-certs-from-cilium"}}]}}
    values = {
        "agent": False,
        "operator": {"enabled": False},
        "envoy": {"enabled": False},
        "hubble": {
            "enabled": False,
            "relay": {"tls": {"server": {"enabled": True}}},
            "ui": {"enabled": True, "standalone": {"enabled": True, "tls": {"certsVolume": certs}}},
        },
    }
    objs = [o for o in render(helm, values, tmp_path) if o["kind"] != "CustomResourceDefinition"]
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    # Only the UI: no agent, relay, or certificate of the chart's own.
    assert names == {
        ("ServiceAccount", "hubble-ui"),
        ("ConfigMap", "hubble-ui-nginx"),
        ("ClusterRole", "hubble-ui"),
        ("ClusterRoleBinding", "hubble-ui"),
        ("Service", "hubble-ui"),
        ("Deployment", "hubble-ui"),
    }
    spec = find(objs, "Deployment", "hubble-ui")["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "hubble-ui-client-certs")
    assert volume == {"name": "hubble-ui-client-certs", **certs}
    env = {e["name"]: e.get("value") for e in container(spec, "backend")["env"]}
    assert env["TLS_TO_RELAY_ENABLED"] == "true"
    # Not standalone: hubble.enabled=false means no UI, and the UI still needs relay.
    off = merged(values, {"hubble": {"ui": {"standalone": {"enabled": False}}}})
    assert not [o for o in render(helm, off, tmp_path) if o["metadata"]["name"] == "hubble-ui"]
    with pytest.raises(RenderError, match=r"needs hubble\.relay\.enabled"):
        render(helm, {"hubble": {"ui": {"enabled": True}}}, tmp_path)


def test_load_balancer_l7(helm: str, tmp_path: Path) -> None:
    assert "loadBalancer.l7" not in unmodelled_keys(CHART)
    l7 = {"backend": "envoy", "ports": [80, "8080"], "algorithm": "least_request"}
    data = config_of(helm, {"loadBalancer": {"l7": l7}}, tmp_path)
    assert {k: data.get(k) for k in ("loadbalancer-l7", "loadbalancer-l7-ports")} == {
        "loadbalancer-l7": "envoy",
        "loadbalancer-l7-ports": "80 8080",
    }
    assert data["loadbalancer-l7-algorithm"] == "least_request"
    # Envoy load-balancing works through CiliumEnvoyConfigs: the agent must handle them.
    assert data["enable-envoy-config"] == "true"
    plain = config_of(helm, {"loadBalancer": {"l7": {"backend": "envoy"}}}, tmp_path)
    assert plain["loadbalancer-l7-ports"] == "" and plain["loadbalancer-l7-algorithm"] == (
        "round_robin"
    )
    # Upstream's default (disabled) renders upstream's default cilium-config.
    off = config_of(helm, {"loadBalancer": {"l7": {"backend": "disabled"}}}, tmp_path)
    assert {k: v for k, v in off.items() if k != "cluster-name"} == UPSTREAM_DEFAULT_CONFIG
    with pytest.raises(RenderError, match="l7Proxy=true"):
        render(helm, {"loadBalancer": {"l7": {"backend": "envoy"}}, "l7Proxy": False}, tmp_path)


@pytest.mark.parametrize(
    ("prefix", "base", "kind", "name"),
    [
        ("clustermesh.apiserver", CLUSTERMESH, "Deployment", "clustermesh-apiserver"),
        ("envoy", {}, "DaemonSet", "cilium-envoy"),
    ],
)
def test_pod_scheduling_maps_are_free_form(
    helm: str, tmp_path: Path, prefix: str, base: Obj, kind: str, name: str
) -> None:
    """affinity, nodeSelector, updateStrategy and podSecurityContext take any Kubernetes
    fields (as upstream's schema does), not only the ones of the chart's defaults."""
    extra = {
        "affinity": {"nodeAffinity": NODE_AFFINITY},
        "nodeSelector": {"pool": "edge"},
        "podSecurityContext": {"runAsNonRoot": False},
    }
    if prefix == "envoy":
        extra["updateStrategy"] = {"type": "OnDelete", "rollingUpdate": None}
    objs = render(helm, merged(base, nested(prefix, extra)), tmp_path)
    obj = find(objs, kind, name)
    spec = obj["spec"]["template"]["spec"]
    assert spec["affinity"]["nodeAffinity"] == NODE_AFFINITY
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "pool": "edge"}
    assert spec["securityContext"]["runAsNonRoot"] is False
    if prefix == "envoy":
        assert obj["spec"]["updateStrategy"] == {"type": "OnDelete"}
