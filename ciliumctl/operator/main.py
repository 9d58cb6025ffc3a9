"""``cilium-operator`` (``cilium-operator-generic`` in the chart): CRDs, then leader-only loops.

Every replica registers missing CRDs and campaigns for the Lease; the leader runs
cluster-pool IPAM and the identity, CiliumEndpoint and CiliumNode garbage collectors.
Health on :9234 ``/healthz``, Prometheus metrics on :9963.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ciliumctl.agent.config import parse_duration, parse_flags, read_config_dir
from ciliumctl.errors import CiliumctlError
from ciliumctl.operator import crds, gc
from ciliumctl.operator.ipam import ClusterPool, PoolExhaustedError, reconcile
from ciliumctl.operator.leader import LeaderElector

log = logging.getLogger("cilium-operator")

DEFAULTS: dict[str, str] = {
    "ipam": "cluster-pool",
    "cluster-pool-ipv4-cidr": "10.0.0.0/8",
    "cluster-pool-ipv4-mask-size": "24",
    "identity-heartbeat-timeout": "30m0s",
    "identity-gc-interval": "15m0s",
    "operator-api-serve-addr": "localhost:9234",
    "operator-prometheus-serve-addr": ":9963",
    "leader-election-lease-duration": "15s",
    "leader-election-renew-deadline": "10s",
    "leader-election-retry-period": "2s",
    "skip-crd-creation": "false",
    "ipam-reconcile-interval": "5s",
}


class Operator:
    """One operator replica."""

    def __init__(self, values: dict[str, str], client: Any, identity: str, namespace: str):
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.values = values
        self.client = client
        self.namespace = namespace
        self.registry = CollectorRegistry()
        self.gc_entries = Gauge(
            "cilium_operator_identity_gc_entries",
            "Identities by GC outcome of the last run",
            ["status"],
            registry=self.registry,
        )
        self.gc_runs = Counter(
            "cilium_operator_identity_gc_runs",
            "Identity GC runs by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.ipam_allocations = Counter(
            "cilium_operator_ipam_allocation_ops",
            "Pod CIDR allocations to nodes",
            registry=self.registry,
        )
        self.leader = Gauge(
            "cilium_operator_is_leader", "1 when this replica leads", registry=self.registry
        )
        self.pool = ClusterPool(
            values["cluster-pool-ipv4-cidr"].split(), int(values["cluster-pool-ipv4-mask-size"])
        )
        self.heartbeat_timeout = parse_duration(values["identity-heartbeat-timeout"])
        self.gc_interval = parse_duration(values["identity-gc-interval"])
        self.ipam_interval = parse_duration(values["ipam-reconcile-interval"])
        self.elector = LeaderElector(
            client,
            identity,
            namespace,
            lease_duration=parse_duration(values["leader-election-lease-duration"]),
            renew_deadline=parse_duration(values["leader-election-renew-deadline"]),
            retry_period=parse_duration(values["leader-election-retry-period"]),
            on_change=lambda leader: self.leader.set(1 if leader else 0),
        )
        self.last_error = ""
        self._stop = threading.Event()

    def register_crds(self) -> list[str]:
        """CRD registration (every replica, before leading)."""
        if self.values.get("skip-crd-creation") == "true":
            return []
        return crds.register_missing(self.client)

    def ipam_round(self) -> dict[str, str]:
        """One cluster-pool round."""
        if self.values.get("ipam") != "cluster-pool":
            return {}
        done = reconcile(self.client, self.pool)
        self.ipam_allocations.inc(len(done))
        return done

    def gc_round(self) -> dict[str, gc.GCResult]:
        """One pass of every collector."""
        try:
            ids = gc.identities(self.client, self.heartbeat_timeout)
        except CiliumctlError:
            self.gc_runs.labels(outcome="failure").inc()
            raise
        self.gc_runs.labels(outcome="success").inc()
        self.gc_entries.labels(status="alive").set(ids.alive)
        self.gc_entries.labels(status="deleted").set(len(ids.deleted))
        return {
            "identities": ids,
            "endpoints": gc.endpoints(self.client),
            "nodes": gc.nodes(self.client),
        }

    def lead(self) -> None:
        """The leader's loops, until leadership is lost or the operator stops."""
        next_gc = 0.0
        while self.elector.is_leader and not self._stop.is_set():
            try:
                self.ipam_round()
                if time.monotonic() >= next_gc:
                    self.gc_round()
                    next_gc = time.monotonic() + self.gc_interval
                self.last_error = ""
            except PoolExhaustedError as exc:
                self.last_error = str(exc)
                log.error("%s", exc)
            except CiliumctlError as exc:
                self.last_error = str(exc)
                log.warning("leader loop: %s", exc)
            self._stop.wait(self.ipam_interval)

    def run(self) -> None:
        """Campaign; lead while elected."""
        threading.Thread(target=self.elector.run, name="leader-election", daemon=True).start()
        while not self._stop.is_set():
            if self.elector.is_leader:
                self.lead()
            self._stop.wait(0.5)

    def stop(self) -> None:
        """Stop and hand the Lease over."""
        self._stop.set()
        self.elector.release()

    def healthz(self) -> tuple[int, dict[str, Any]]:
        """What /healthz answers."""
        body = {"leader": self.elector.is_leader, "error": self.last_error}
        return 200, body


def serve_health(op: Operator, addr: str) -> ThreadingHTTPServer:
    """``/healthz`` on the ``operator-api-serve-addr``."""
    host, _, port = addr.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/healthz":
                self.send_error(404)
                return
            status, body = op.healthz()
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("health: " + format, *args)

    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


def load_values(argv: Sequence[str]) -> dict[str, str]:
    """Defaults <- --config-dir <- flags."""
    overrides, config_dir = parse_flags(argv)
    values = dict(DEFAULTS)
    if config_dir:
        values.update(read_config_dir(Path(config_dir)))
    values.update(overrides)
    for key in ("identity-heartbeat-timeout", "identity-gc-interval"):
        parse_duration(values[key])
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cilium-operator`` / ``cilium-operator-generic``."""
    from ciliumctl import daemonlog

    daemonlog.setup()
    try:
        values = load_values(sys.argv[1:] if argv is None else argv)
        from ciliumctl.k8s import Client

        client = Client(values.get("k8s-kubeconfig-path") or None)
        identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
        namespace = os.environ.get("CILIUM_K8S_NAMESPACE", "kube-system")
        op = Operator(values, client, identity, namespace)
        op.register_crds()
        serve_health(op, values["operator-api-serve-addr"])
        port = values["operator-prometheus-serve-addr"].rpartition(":")[2]
        if port.isdigit():
            from prometheus_client import start_http_server

            start_http_server(int(port), registry=op.registry)
    except CiliumctlError as exc:
        log.error("%s", exc)
        return exc.exit_code
    signal.signal(signal.SIGTERM, lambda *_: op.stop())
    signal.signal(signal.SIGINT, lambda *_: op.stop())
    op.run()
    return 0
