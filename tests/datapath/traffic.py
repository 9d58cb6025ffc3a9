"""Helpers of the real-traffic tests: processes inside our namespaces, servers that log what
they receive, and a node with pods built through the datapath's own netlink code."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from ciliumctl.datapath import Datapath, netlink
from ciliumctl.datapath.model import EndpointSpec, IPCacheEntry

NETPROBE = os.path.join(os.path.dirname(__file__), "netprobe.py")


def in_ns(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, NETPROBE, *args]


def probe(ns: str, *args: str, timeout: float = 10) -> tuple[int, str]:
    """Run netprobe in ``ns``; (exit code, output)."""
    p = subprocess.run(in_ns(ns, *args), capture_output=True, text=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).strip()


class Server:
    """A netprobe server in a namespace; ``lines`` is what it has received so far."""

    def __init__(self, ns: str, proto: str, port: int) -> None:
        self.proc = subprocess.Popen(
            in_ns(ns, "serve", proto, str(port)), stdout=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(10):
            self.stop()
            raise RuntimeError(f"{proto} server on port {port} in {ns} did not start")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == "ready":
                self._ready.set()
            else:
                self.lines.append(line.strip())

    def received(self, wait: float = 0.3) -> list[str]:
        time.sleep(wait)
        return list(self.lines)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


@dataclass
class Pod:
    name: str
    netns: str
    spec: EndpointSpec


@dataclass
class Node:
    netns: str
    dp: Datapath
    pods: dict[str, Pod] = field(default_factory=dict)

    def add_pod(
        self,
        name: str,
        pod_netns: str,
        ep_id: int,
        identity: int,
        ipv4: str,
        ipv6: str | None = None,
    ) -> Pod:
        host_if = f"lxc{ep_id}"
        pod_mac, host_mac = netlink.plumb_endpoint(host_if, pod_netns, ipv4, ipv6, self.netns)
        spec = EndpointSpec(ep_id, host_if, identity, ipv4, ipv6, pod_mac, host_mac)
        for address in (ipv4, ipv6):
            if address:
                self.dp.upsert_ipcache(IPCacheEntry(address, identity))
        self.dp.create_endpoint(spec)
        pod = Pod(name, pod_netns, spec)
        self.pods[name] = pod
        return pod
