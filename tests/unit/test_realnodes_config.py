"""The real nodes' generated configuration: addresses, rules, containerd, kubelet, add-ons.
(The processes, namespaces and the network itself are tested in tests/realnodes as root.)"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

import pytest

from ciliumctl.devcluster import DevCluster, DevClusterError, addons, network, realnodes


def test_addresses_are_per_cluster_and_inside_their_pools() -> None:
    a, b = network.Addressing("one", 7), network.Addressing("two", 8)
    assert a.host_if != b.host_if and len(a.host_if) <= 15
    assert a.router_ns != b.router_ns and a.node_ns("real-node-0") != b.node_ns("real-node-0")
    link_a = ipaddress.IPv4Network(f"{a.host_ip}/30", strict=False)
    link_b = ipaddress.IPv4Network(f"{b.host_ip}/30", strict=False)
    assert not link_a.overlaps(link_b) and link_a.subnet_of(network.HOST_LINK_POOL)
    assert not a.underlay.overlaps(b.underlay) and a.underlay.subnet_of(network.UNDERLAY_POOL)
    assert ipaddress.ip_address(a.router_link_ip) in link_a
    assert ipaddress.ip_address(a.node_ip(3)) in a.underlay
    last = network.Addressing("x", network.SLOTS - 1)
    assert last.underlay.subnet_of(network.UNDERLAY_POOL)
    assert ipaddress.ip_address(last.router_link_ip) in network.HOST_LINK_POOL


def test_host_rules_dnat_only_the_two_ports_and_drop_the_rest() -> None:
    addr = network.Addressing("one", 7)
    rules = network._host_rules(addr, network.Ports(6443, 5000))
    assert f'iifname "{addr.host_if}" ip daddr {addr.host_ip} tcp dport {{ 6443, 5000 }}' in rules
    assert "dnat ip to 127.0.0.1" in rules
    assert rules.count(f'iifname "{addr.host_if}" drop') == 2  # input and forward
    assert f'oifname "{addr.host_if}" drop' in rules
    router = network._router_rules(addr, network.Ports(6443, 5000))
    assert 'oifname "host0" masquerade' in router and 'oifname "host0" drop' in router


def test_containerd_config_mirrors_upstream_registries_to_the_local_one() -> None:
    conf = tomllib.loads(realnodes.containerd_config("198.18.0.1:5000", "registry.k8s.io/p:1"))
    cri = conf["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "registry.k8s.io/p:1"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    mirrors = cri["registry"]["mirrors"]
    for name in ("quay.io", "registry.k8s.io", realnodes.REGISTRY_NAME, "198.18.0.1:5000"):
        assert mirrors[name]["endpoint"] == ["http://198.18.0.1:5000"]


def test_kubelet_config_is_per_node() -> None:
    runner_node = realnodes.RealNode(
        name="real-node-1",
        index=1,
        ip="100.64.0.11",
        ip6="fdcc::b",
        netns="ns",
        dir="/tmp/x",
        cgroup="ciliumctl.c.real-node-1",
    )
    conf = realnodes.kubelet_config(runner_node, "/ca", "/crt", "/key")
    assert conf["cgroupRoot"] == "/ciliumctl.c.real-node-1"
    assert conf["cgroupDriver"] == "cgroupfs" and conf["failCgroupV1"] is False
    assert conf["clusterDNS"] == [realnodes.CLUSTER_DNS]
    assert conf["healthzBindAddress"] == "100.64.0.11"
    assert conf["authentication"]["anonymous"]["enabled"] is False


def test_addons_use_upstream_names_and_run_on_real_nodes_only() -> None:
    proxy = {o["kind"]: o for o in addons.kube_proxy("https://198.18.0.1:6443", "real")}
    ds = proxy["DaemonSet"]
    assert ds["metadata"]["name"] == "kube-proxy"
    assert ds["metadata"]["labels"]["k8s-app"] == "kube-proxy"
    assert ds["spec"]["template"]["spec"]["nodeSelector"]["real"] == "true"
    assert "mode: iptables" in proxy["ConfigMap"]["data"]["config.conf"]
    dns = {o["kind"]: o for o in addons.cluster_dns("10.96.0.10", "1.1.1.1", "real")}
    assert dns["Service"]["metadata"]["name"] == "kube-dns"
    assert dns["Service"]["spec"]["clusterIP"] == "10.96.0.10"
    assert dns["Deployment"]["spec"]["template"]["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert "forward . 1.1.1.1" in dns["ConfigMap"]["data"]["Corefile"]


def test_bridge_conflist_allocates_from_the_pod_cidr() -> None:
    conf = realnodes.bridge_conflist("10.244.1.0/24")
    bridge = conf["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]


def test_real_node_flags_are_checked_before_anything_starts(tmp_path: Path) -> None:
    cluster = DevCluster("rn-unit", tmp_path / "state")
    with pytest.raises(DevClusterError, match="--cni"):
        cluster.up(0, real_nodes=1, cni="flannel")
    with pytest.raises(DevClusterError, match="apply to real nodes"):
        cluster.up(0, cni="bridge")
    with pytest.raises(DevClusterError, match="--real-nodes 99"):
        cluster.up(0, real_nodes=99)
    assert not cluster.exists()
