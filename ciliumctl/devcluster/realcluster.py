"""Real nodes, the sealed network and the registry, as parts of one :class:`DevCluster`.

``cluster.json`` keeps ``network`` (the slot of the sealed network), ``real`` (node count,
CNI, kube-proxy) and ``real_nodes`` (each node's pids, addresses, namespace and cgroup);
the registry is a component like the API server.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ciliumctl.devcluster import addons, binaries, network, realnodes, world
from ciliumctl.devcluster.cluster import (
    Component,
    DevClusterError,
    Progress,
    _node_ready,
    log_tail,
)

if TYPE_CHECKING:
    from ciliumctl.devcluster.cluster import ClusterStatus, DevCluster

CNIS = ("none", "bridge")
MAX_REAL_NODES = 16
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")


def validate(cluster: DevCluster, state: dict[str, Any], real_nodes: int, cni: str) -> None:
    """Check the request and the host before anything changes; reserve the network slot.

    A new cluster gets its sealed network's host address as the API server's advertise
    address (the ``kubernetes`` Service's endpoint must be reachable from pods).
    """
    if cni not in CNIS:
        raise DevClusterError(f"--cni {cni!r} is not supported", "use --cni none or --cni bridge")
    if not 0 <= real_nodes <= MAX_REAL_NODES:
        raise DevClusterError(
            f"--real-nodes {real_nodes} is out of range", f"use 0 to {MAX_REAL_NODES}"
        )
    realnodes.check_host()
    recorded = state.get("network", {}).get("slot")
    running = bool(state) and cluster.status(with_nodes=False).running
    if recorded is None and running:
        raise DevClusterError(
            f"dev cluster {cluster.name!r} runs without real nodes",
            f"`cilium dev-cluster down --name {cluster.name}` and `up --real-nodes N` again",
        )
    addr = network.allocate(cluster.name, cluster.state_dir, recorded)
    if recorded is None:
        state["network"] = {"slot": addr.slot}
        state["advertise"] = addr.host_ip
        cluster._save_state(state)


def addressing(cluster: DevCluster, state: dict[str, Any]) -> network.Addressing:
    """The recorded addressing of the cluster's sealed network."""
    return network.Addressing(cluster.name, int(state["network"]["slot"]))


def _component(state: dict[str, Any], name: str) -> Component | None:
    for comp in state.get("components", []):
        if comp["name"] == name:
            return Component(**comp)
    return None


def _ensure_registry(cluster: DevCluster, progress: Progress, timeout: float) -> Component:
    """The cluster's OCI registry (distribution v3) on 127.0.0.1, as a component."""
    state = cluster._load_state()
    comp = _component(state, "registry")
    if comp is not None and cluster._probe(comp.health_url):
        return comp
    if comp is not None:
        cluster._stop_pid(comp)
    progress("starting the registry")
    binary = binaries.ensure(["registry"], progress)["registry"]
    directory = cluster.state_dir / "registry"
    directory.mkdir(parents=True, exist_ok=True)

    def command(port: int) -> tuple[list[str], str]:
        config = directory / "config.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "version": 0.1,
                    "log": {"level": "warn", "accesslog": {"disabled": True}},
                    "storage": {
                        "filesystem": {"rootdirectory": str(directory / "data")},
                        "delete": {"enabled": True},
                    },
                    "http": {"addr": f"127.0.0.1:{port}", "secret": cluster.name},
                }
            )
        )
        return [str(binary), "serve", str(config)], f"http://127.0.0.1:{port}/v2/"

    fresh = cluster._start("registry", command, comp.port if comp else None, timeout)
    state = cluster._load_state()
    others = [c for c in state.get("components", []) if c["name"] != "registry"]
    state["components"] = [*others, asdict(fresh)]
    cluster._save_state(state)
    return fresh


def registry_address(state: dict[str, Any]) -> str:
    """The registry's ``127.0.0.1:port`` ('' when there is none)."""
    comp = _component(state, "registry")
    return f"127.0.0.1:{comp.port}" if comp else ""


def _runner(cluster: DevCluster, state: dict[str, Any], registry: Component) -> Any:
    from ciliumctl.devcluster import pki

    addr = addressing(cluster, state)
    api = _component(state, "kube-apiserver")
    assert api is not None
    server = f"https://{addr.host_ip}:{api.port}"
    ca = pki.CertificateAuthority(cluster.pki_dir)

    def write_kubeconfig(path: Path, node: str) -> None:
        creds = pki.CertPair(
            cluster.pki_dir / f"{node}-kubelet-client.crt",
            cluster.pki_dir / f"{node}-kubelet-client.key",
        )
        cluster._write_kubeconfig(path, server, creds, f"system:node:{node}", "127.0.0.1")

    kubelet = binaries.find("kubelet") or binaries.bin_dir() / "kubelet"
    return realnodes.NodeRunner(
        cluster=cluster.name,
        state_dir=cluster.state_dir,
        log_dir=cluster.log_dir,
        addr=addr,
        kubelet=kubelet,
        ca=ca,
        write_kubeconfig=write_kubeconfig,
        server=server,
        registry=f"{addr.host_ip}:{registry.port}",
        sandbox_image=realnodes.SANDBOX_IMAGE,
    )


def labels() -> dict[str, str]:
    """Labels of every real node (kubelet adds hostname, os and arch itself)."""
    return {
        realnodes.REAL_LABEL: "true",
        "type": "real",
        "node.kubernetes.io/instance-type": "real",
    }


def ensure(
    cluster: DevCluster,
    real_nodes: int,
    *,
    cni: str,
    kube_proxy: bool,
    progress: Progress,
    timeout: float,
) -> None:
    """Bring the sealed network, the registry and the real nodes up (or repair them), then
    wait until they are registered (and Ready with a CNI)."""
    state = cluster._load_state()
    real = state.get("real", {})
    count = max(real_nodes, int(real.get("count", 0)))
    cni = cni if cni != "none" else str(real.get("cni", "none"))
    kube_proxy = kube_proxy or bool(real.get("kube_proxy", False))
    state["real"] = {"count": count, "cni": cni, "kube_proxy": kube_proxy}
    cluster._save_state(state)
    # containerd's CRI runs the `loopback` plugin for every pod sandbox whatever the CNI
    wanted = ["kubelet", "loopback", *(("bridge",) if cni == "bridge" else ())]
    progress("locating kubelet and the CNI plugins")
    binaries.ensure(wanted, progress)
    registry = _ensure_registry(cluster, progress, timeout)
    state = cluster._load_state()
    addr = addressing(cluster, state)
    api = _component(state, "kube-apiserver")
    assert api is not None
    ports = network.Ports(api.port, registry.port)
    if network.present(addr):
        network.apply_rules(addr, ports)
    else:
        progress("building the sealed network (router, world, host link)")
        network.create(addr, ports)
    state = cluster._load_state()
    state["world"] = world.ensure(
        addr, cluster.state_dir / "world", cluster.log_dir, state.get("world", {})
    )
    cluster._save_state(state)
    _publish_images(registry, progress, runtime=cni == "none")
    realnodes.record_sysctls(addr.key)
    runner = _runner(cluster, state, registry)
    recorded = {n["name"]: realnodes.node_from_dict(n) for n in state.get("real_nodes", [])}
    nodes = [recorded.get(realnodes.node_name(i)) or runner.describe(i) for i in range(count)]
    for node in nodes:
        try:
            runner.ensure(node, labels(), progress)
        finally:  # pids of what did start, so that `down` stops it even after a failure
            _save_nodes(cluster, nodes)
    _copy_plugins(nodes, ("loopback",))
    cidrs = _wait_registered(cluster, nodes, progress, timeout)
    routes = {n.index: (n.name, cidrs[n.name]) for n in nodes if cidrs.get(n.name)}
    network.route_pod_cidrs(addr, routes, between_nodes=cni == "bridge")
    workloads = _apply_addons(
        cluster, runner.server, kube_proxy=kube_proxy or cni == "bridge", progress=progress
    )
    if cni == "bridge":
        progress("installing the bridge CNI")
        _install_bridge(nodes, cidrs)
        _wait_ready(cluster, nodes, progress, timeout)
        if workloads:
            progress("waiting for kube-proxy and cluster DNS")
            cluster.client().wait_ready(workloads, timeout=timeout)


def _save_nodes(cluster: DevCluster, nodes: list[realnodes.RealNode]) -> None:
    state = cluster._load_state()
    others = {n["name"]: n for n in state.get("real_nodes", [])}
    others.update({n.name: realnodes.node_to_dict(n) for n in nodes})
    state["real_nodes"] = [others[k] for k in sorted(others)]
    cluster._save_state(state)


#: images the cluster itself and the tests on it use, pushed at every ``up`` (built once)
CLUSTER_IMAGES = ("pause", "kube-proxy", "cluster-dns", "client", "echo", "dns-test")


def _publish_images(registry: Component, progress: Progress, *, runtime: bool) -> None:
    """Build (cached by content) and push the cluster's images to its registry, under their
    own and their upstream names (which the nodes' mirrors resolve); with ``runtime`` also
    the agent and operator images `cilium install` deploys (not on bridge-CNI clusters)."""
    from concurrent.futures import ThreadPoolExecutor

    from ciliumctl.devcluster import images, runtime_images

    runtime_images.register()
    host = f"127.0.0.1:{registry.port}"
    ca = {images.WORLD_CA: world.ca_cert()}
    built = []
    runtime_names = (runtime_images.AGENT, runtime_images.OPERATOR) if runtime else ()
    for name in (*CLUSTER_IMAGES, *runtime_names):
        recipe = images.get(name)
        progress(f"image {name}: build (cached)")
        args = ca if recipe.ca_arg == images.WORLD_CA else None
        built.append(images.build(name, args=args, progress=progress))
    progress(f"pushing {len(built)} images to the cluster's registry")
    with ThreadPoolExecutor(max_workers=3) as pool:  # a fresh registry gets every blob
        list(pool.map(lambda image: images.push(image, host), built))


def _apply_addons(
    cluster: DevCluster, server: str, *, kube_proxy: bool, progress: Progress
) -> list[Any]:
    from ciliumctl.k8s import ObjectRef

    objs = addons.cluster_dns(realnodes.CLUSTER_DNS, network.WORLD_IPV4[0], realnodes.REAL_LABEL)
    if kube_proxy:
        objs = addons.kube_proxy(server, realnodes.REAL_LABEL) + objs
    progress("applying " + ("kube-proxy and " if kube_proxy else "") + "cluster DNS")
    client = cluster.client()
    for obj in objs:
        client.apply(obj, force=True)
    return [ObjectRef.of(o) for o in objs if o["kind"] in ("DaemonSet", "Deployment")]


def _wait_registered(
    cluster: DevCluster, nodes: list[realnodes.RealNode], progress: Progress, timeout: float
) -> dict[str, str]:
    progress(f"waiting for {len(nodes)} real node(s) to register")
    client = cluster.client()
    deadline = time.monotonic() + timeout
    while True:
        found = {
            n["metadata"]["name"]: str(n.get("spec", {}).get("podCIDR", ""))
            for n in client.list("v1", "Node", label_selector=f"{realnodes.REAL_LABEL}=true")
        }
        if all(found.get(n.name) for n in nodes):
            return found
        if time.monotonic() > deadline:
            missing = [n.name for n in nodes if not found.get(n.name)]
            tail = log_tail(cluster.log_dir / f"{missing[0]}-kubelet.log")
            raise DevClusterError(
                f"real node(s) {', '.join(missing)} did not register within {timeout:.0f}s; "
                f"kubelet log tail:\n{tail}",
                f"see the logs under {cluster.log_dir}",
            )
        time.sleep(0.2)


def _wait_ready(
    cluster: DevCluster, nodes: list[realnodes.RealNode], progress: Progress, timeout: float
) -> None:
    progress(f"waiting for {len(nodes)} real node(s) to be Ready")
    client = cluster.client()
    deadline = time.monotonic() + timeout
    while True:
        ready = {
            n["metadata"]["name"]
            for n in client.list("v1", "Node", label_selector=f"{realnodes.REAL_LABEL}=true")
            if _node_ready(n)
        }
        if all(n.name in ready for n in nodes):
            return
        if time.monotonic() > deadline:
            missing = [n.name for n in nodes if n.name not in ready]
            tail = log_tail(cluster.log_dir / f"{missing[0]}-kubelet.log")
            raise DevClusterError(
                f"real node(s) {', '.join(missing)} not Ready within {timeout:.0f}s; "
                f"kubelet log tail:\n{tail}",
                f"see the logs under {cluster.log_dir}",
            )
        time.sleep(0.2)


def _copy_plugins(nodes: list[realnodes.RealNode], plugins: tuple[str, ...]) -> None:
    """Copy reference CNI plugins into each node's /opt/cni/bin (unchanged ones stay)."""
    for node in nodes:
        bin_dir = Path(node.dir) / "mounts" / realnodes.NODE_DIRS["/opt/cni/bin"]
        for plugin in plugins:
            src = binaries.find(plugin) or binaries.bin_dir() / plugin
            dst = bin_dir / plugin
            if not dst.exists() or dst.stat().st_size != src.stat().st_size:
                tmp = dst.with_suffix(".tmp")
                shutil.copy2(src, tmp)
                tmp.replace(dst)


def _install_bridge(nodes: list[realnodes.RealNode], cidrs: dict[str, str]) -> None:
    """Copy the reference plugins into each node's /opt/cni/bin and write its conflist."""
    _copy_plugins(nodes, CNI_PLUGINS)
    for node in nodes:
        mounts = Path(node.dir) / "mounts"
        conf = mounts / realnodes.NODE_DIRS["/etc/cni/net.d"] / "10-bridge.conflist"
        body = json.dumps(realnodes.bridge_conflist(cidrs[node.name]), indent=2)
        if not conf.exists() or conf.read_text() != body:
            conf.write_text(body)


def fill_status(
    cluster: DevCluster, state: dict[str, Any], result: ClusterStatus, api_ok: bool
) -> None:
    """Add the sealed network, the registry and the real nodes' processes to a status."""
    addr = addressing(cluster, state)
    result.network = network.NetworkInfo.of(addr).as_dict()
    result.registry = registry_address(state)
    nodes = [realnodes.node_from_dict(n) for n in state.get("real_nodes", [])]
    result.network["nodes"] = {
        n.name: {"ip": n.ip, "ip6": n.ip6, "netns": n.netns, "netns_path": n.netns_path}
        for n in nodes
    }
    pods: dict[str, int] = {}
    if api_ok and nodes:
        for pod in cluster.client().list("v1", "Pod"):
            where = pod.get("spec", {}).get("nodeName", "")
            pods[where] = pods.get(where, 0) + 1
    for node in nodes:
        status = realnodes.NodeRunner.status_of(node)
        status.pods = pods.get(node.name, 0)
        status.pod_cidr = next((n.pod_cidr for n in result.nodes if n.name == node.name), "")
        result.real_nodes.append(status)


def down(cluster: DevCluster, state: dict[str, Any]) -> list[str]:
    """Stop every real node, delete the sealed network, release its slot, restore sysctls."""
    addr = addressing(cluster, state)
    nodes = [realnodes.node_from_dict(n) for n in state.get("real_nodes", [])]
    for node in nodes:
        realnodes.stop_node(node, addr)
    swept = realnodes.sweep_unrecorded(cluster.name, {n.name for n in nodes}, addr)
    world.stop(state.get("world", {}))
    network.teardown(addr, [n.name for n in nodes])
    network.release(addr, cluster.state_dir)
    realnodes.restore_sysctls(addr.key)
    state["real_nodes"] = []
    cluster._save_state(state)
    return [n.name for n in nodes] + swept + ["sealed network"]
