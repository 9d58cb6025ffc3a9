"""``cilium-agent``: load the configuration, start the API, health, metrics and watchers."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ciliumctl.agent.config import AgentConfig, parse_flags
from ciliumctl.agent.daemon import Agent
from ciliumctl.agent.datapath import Datapath
from ciliumctl.errors import CiliumctlError

log = logging.getLogger("cilium-agent")


def cni_conflist(log_file: str = "") -> dict[str, Any]:
    """The CNI configuration the agent installs when it is ready; ``log_file`` is the
    ``cni-log-file`` option (the chart's ``cni.logFile``): where cilium-cni logs each call,
    none when empty."""
    plugin: dict[str, Any] = {"type": "cilium-cni", "enable-debug": False}
    if log_file:
        plugin["log-file"] = log_file
    return {"cniVersion": "1.0.0", "name": "cilium", "plugins": [plugin]}


def write_cni_conf(path: str, log_file: str = "") -> None:
    """Write the conflist atomically (containerd picks it up when it appears)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name("." + target.name + ".tmp")
    tmp.write_text(json.dumps(cni_conflist(log_file), indent=2) + "\n")
    os.replace(tmp, target)


def host_devices(config: AgentConfig, netns: str | None = None) -> list[str]:
    """The node's external devices: the ``devices`` option (upstream's list, comma or space
    separated), else the device of the default route."""
    from ciliumctl.datapath import netlink

    named = [d for d in str(config.get("devices") or "").replace(",", " ").split() if d]
    if named:
        return named
    found = netlink.default_route_device(netns)
    if found is None:
        raise CiliumctlError(
            "kube-proxy-replacement needs the node's external device and there is no IPv4"
            " default route to find it by",
            "set the `devices` option (Helm value devices) to the node's external interface",
        )
    return [found]


def open_datapath(config: AgentConfig) -> Datapath:
    """The kernel datapath (:class:`ciliumctl.datapath.Datapath`) for this configuration."""
    from ciliumctl.datapath import Datapath as KernelDatapath
    from ciliumctl.datapath.loader import OBJECT_CACHE_ENV

    # compiled templates outlive the agent's container: a restart loads them from the node
    templates = Path(config.get("state-dir") or "/var/run/cilium") / "state" / "templates"
    os.environ.setdefault(OBJECT_CACHE_ENV, str(templates))
    routing = config.get("routing-mode")
    kernel = KernelDatapath(
        config.get("bpf-pin-root") or f"{config.get('bpf-root')}/tc/globals",
        routing="native" if routing == "native" else "tunnel",
    )
    if routing != "native":
        kernel.setup_tunnel()  # cilium_vxlan, before any endpoint program needs its ifindex
    if config.flag("kube-proxy-replacement"):
        for device in host_devices(config):
            kernel.attach_host_device(device)  # NodePort and hostPort for outside clients
    kernel.prepare_endpoint_programs()  # before the node takes pods (the CNI conf is written)
    datapath: Datapath = kernel
    return datapath


def run(config: AgentConfig, datapath: Datapath, client: Any, node: str) -> Agent:
    """Start every server and loop of an agent; returns the running agent."""
    from ciliumctl.agent import masquerade
    from ciliumctl.agent.api import serve_api, serve_cni, serve_health
    from ciliumctl.agent.health import serve_responder
    from ciliumctl.cni.plugin import CNI_SOCKET

    masquerade.check_config(config)
    agent = Agent(config, datapath, client, node)
    if masquerade.needed(config):
        agent.masquerader = masquerade.Masquerader(config)
    agent.restore_endpoints()
    agent.write_runtime_config()
    from ciliumctl.datapath import netlink

    agent.plumber = netlink
    serve_cni(agent, config.socket_path.with_name(CNI_SOCKET))
    serve_api(agent, config.socket_path)
    serve_health(agent, int(config.get("agent-health-port")))
    if agent.health is not None:
        # cilium-health's socket and the /hello responder other nodes probe
        serve_api(agent, config.socket_path.with_name("health.sock"))
        serve_responder(int(config.get("cluster-health-port")))
    port = config.metrics_port
    if port is not None:
        agent.metrics.serve(port)
    agent.start_watchers()
    threading.Thread(target=agent.pump_events, name="monitor", daemon=True).start()
    threading.Thread(target=agent.maintenance, name="maintenance", daemon=True).start()
    synced = agent.wait_synced(timeout=60)
    threading.Thread(target=agent.health_probes, name="health-probes", daemon=True).start()
    if synced:
        log.info("all watchers in sync")
        agent.reconcile_restored()
        if config.get("write-cni-conf-when-ready"):
            write_cni_conf(config.get("write-cni-conf-when-ready"), config.get("cni-log-file"))
    else:
        log.warning("watchers not in sync after 60s; serving what is known")
    return agent


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cilium-agent`` console script."""
    from ciliumctl import daemonlog

    daemonlog.setup()
    try:
        overrides, config_dir = parse_flags(sys.argv[1:] if argv is None else argv)
        config = AgentConfig.load(Path(config_dir) if config_dir else None, overrides)
        if config.flag("debug"):
            logging.getLogger().setLevel(logging.DEBUG)
        from ciliumctl.k8s import Client

        node = os.environ.get("K8S_NODE_NAME") or socket.gethostname()
        client = Client(config.get("k8s-kubeconfig-path") or None)
        agent = run(config, open_datapath(config), client, node)
    except CiliumctlError as exc:
        log.error("%s", exc)
        return exc.exit_code
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    agent.stop()
    log.info("stopped; the datapath keeps its state for the next start")
    return 0
