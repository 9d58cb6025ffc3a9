"""`cilium reconcile watch`: compare (and in correct mode, apply) in a loop.

Every cycle optionally pulls the git checkout (``git pull --ff-only``), loads the desired
state, computes the plan and, in ``correct`` mode, applies it. Each sync is logged and
recorded as a Kubernetes Event on the inventory ConfigMap; Prometheus metrics (last
successful sync, drifted objects, errors) are served over HTTP. Errors back off
exponentially; a stop request (SIGTERM) lets the current cycle finish, then the loop ends.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from ciliumctl.errors import UsageError
from ciliumctl.reconcile import inventory as inv
from ciliumctl.reconcile.apply import ApplyClient, HelmInstaller, apply
from ciliumctl.reconcile.errors import ReconcileError
from ciliumctl.reconcile.plan import compute
from ciliumctl.reconcile.source import DesiredState

Log = Callable[[str], None]
MODES = ("warn", "correct")
COMPONENT = "ciliumctl-reconcile"


class EventClient(Protocol):
    """The call events need."""

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]: ...


@dataclass
class WatchOptions:
    """How the loop runs."""

    interval: float = 60.0
    mode: str = "warn"
    git_pull: bool = False
    prune: bool = True
    restart_on_config_change: bool = False
    wait: bool = True
    wait_timeout: float = 300.0
    backoff_initial: float = 5.0
    backoff_max: float = 300.0
    max_cycles: int | None = None


def backoff_delay(failures: int, options: WatchOptions) -> float:
    """Seconds to wait after ``failures`` consecutive failed cycles (doubling, capped)."""
    if failures <= 0:
        return options.interval
    return float(min(options.backoff_max, options.backoff_initial * 2 ** (failures - 1)))


# ----------------------------------------------------------------------------- metrics
@dataclass
class Metrics:
    """The reconciler's Prometheus metrics (thread-safe)."""

    last_success: float | None = None
    last_duration: float = 0.0
    drifted: int = 0
    errors: int = 0
    syncs: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sync(self, result: str, drifted: int, duration: float) -> None:
        """Record a finished cycle (``result``: in-sync, drift, corrected)."""
        with self.lock:
            self.syncs[result] = self.syncs.get(result, 0) + 1
            self.drifted = drifted
            self.last_duration = duration
            self.last_success = time.time()

    def error(self, duration: float) -> None:
        """Record a failed cycle."""
        with self.lock:
            self.errors += 1
            self.syncs["error"] = self.syncs.get("error", 0) + 1
            self.last_duration = duration

    def render(self) -> str:
        """The Prometheus text exposition format."""
        with self.lock:
            lines = [
                "# HELP ciliumctl_reconcile_last_success_timestamp_seconds Unix time of the "
                "last successful sync.",
                "# TYPE ciliumctl_reconcile_last_success_timestamp_seconds gauge",
                f"ciliumctl_reconcile_last_success_timestamp_seconds {self.last_success or 0}",
                "# HELP ciliumctl_reconcile_drifted_objects Objects that differed from the "
                "desired state at the last sync.",
                "# TYPE ciliumctl_reconcile_drifted_objects gauge",
                f"ciliumctl_reconcile_drifted_objects {self.drifted}",
                "# HELP ciliumctl_reconcile_errors_total Syncs that failed.",
                "# TYPE ciliumctl_reconcile_errors_total counter",
                f"ciliumctl_reconcile_errors_total {self.errors}",
                "# HELP ciliumctl_reconcile_syncs_total Syncs by result.",
                "# TYPE ciliumctl_reconcile_syncs_total counter",
            ]
            lines += [
                f'ciliumctl_reconcile_syncs_total{{result="{r}"}} {n}'
                for r, n in sorted(self.syncs.items())
            ]
            lines += [
                "# HELP ciliumctl_reconcile_last_sync_duration_seconds Duration of the last sync.",
                "# TYPE ciliumctl_reconcile_last_sync_duration_seconds gauge",
                f"ciliumctl_reconcile_last_sync_duration_seconds {self.last_duration:.3f}",
            ]
        return "\n".join(lines) + "\n"


def parse_addr(text: str) -> tuple[str, int]:
    """``127.0.0.1:9090`` / ``:9090`` / ``[::1]:9090`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"invalid --metrics-addr {text!r}", "use HOST:PORT, e.g. 127.0.0.1:9090")
    return (host.strip("[]") or "0.0.0.0"), int(port)  # noqa: S104 - ":PORT" means all


class MetricsServer:
    """A small HTTP server in a thread serving ``/metrics``."""

    def __init__(self, metrics: Metrics, addr: str) -> None:
        host, port = parse_addr(addr)
        render = metrics.render

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        try:
            self.server = Server((host, port), Handler)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on --metrics-addr {addr}: {exc.strerror or exc}",
                "pick a free port, or --metrics-addr '' to serve no metrics",
            ) from exc
        self.address = f"{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> MetricsServer:
        """Serve in the background."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------- helpers
def git_pull(directory: Path, timeout: float = 120.0) -> str:
    """``git -C <checkout of directory> pull --ff-only``; the one-line outcome."""
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "pull", "--ff-only"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReconcileError(
            f"git pull in {directory} failed: {exc}", "check git and the remote"
        ) from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise ReconcileError(
            f"git pull --ff-only in {directory} failed: "
            + (message[-1] if message else f"exit code {done.returncode}"),
            "resolve the checkout (diverged history, credentials, remote) and it retries",
        )
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else "pulled"


def record_event(
    client: EventClient, state: DesiredState, reason: str, message: str, kind: str = "Normal"
) -> None:
    """Record a Kubernetes Event on the inventory ConfigMap."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    target = inv.configmap_name(state.inventory)
    client.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{target}.{time.time_ns():x}", "namespace": state.namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": target,
                "namespace": state.namespace,
            },
            "reason": reason,
            "message": message[:1000],
            "type": kind,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": socket.gethostname()[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
    )


class WatchClient(ApplyClient, EventClient, Protocol):
    """The cluster calls the loop needs."""


def _summary(changes: list[Any], limit: int = 8) -> str:
    text = ", ".join(f"{c.action} {c.key}" for c in changes[:limit])
    return text + (f" and {len(changes) - limit} more" if len(changes) > limit else "")


def run(
    load: Callable[[], DesiredState],
    client: WatchClient,
    helm: HelmInstaller,
    chart: Path,
    directory: Path,
    options: WatchOptions,
    stop: threading.Event,
    *,
    log: Log,
    metrics: Metrics | None = None,
) -> int:
    """Loop until ``stop`` is set (or ``max_cycles``); returns the number of cycles run."""
    if options.mode not in MODES:
        raise UsageError(f"invalid --mode {options.mode!r}", "use warn or correct")
    metrics = metrics or Metrics()
    failures = 0
    cycles = 0
    while not stop.is_set():
        cycles += 1
        started = time.monotonic()
        state: DesiredState | None = None
        try:
            if options.git_pull:
                log(f"sync {cycles}: git pull: {git_pull(directory)}")
            state = load()
            plan = compute(client, helm, state, chart)
            drifted = plan.drifted
            took = time.monotonic() - started
            if not drifted and not plan.helm_needed:
                result, message = "in-sync", f"in sync ({len(plan.changes)} objects)"
            elif options.mode == "warn":
                result = "drift"
                message = f"drift: {len(drifted)} object(s): {_summary(drifted)}"
            else:
                done = apply(
                    client, helm, state, chart, plan=plan, prune=options.prune,
                    wait=options.wait, timeout=options.wait_timeout,
                    restart_on_config_change=options.restart_on_config_change,
                )  # fmt: skip
                took = time.monotonic() - started
                result = "corrected"
                message = (
                    f"corrected {len(done.applied)} applied, {len(done.pruned)} pruned: "
                    f"{_summary(drifted)}"
                )
            metrics.sync(result, len(drifted) if result != "corrected" else 0, took)
            log(f"sync {cycles}: {message} ({took:.2f}s)")
            _event(client, state, {"in-sync": "InSync", "drift": "DriftDetected",
                                   "corrected": "Synced"}[result], message,
                   "Warning" if result == "drift" else "Normal", log)  # fmt: skip
            failures = 0
            delay = options.interval
        except Exception as exc:  # a long-running loop survives any failure
            took = time.monotonic() - started
            failures += 1
            metrics.error(took)
            delay = backoff_delay(failures, options)
            text = (
                str(exc)
                if isinstance(exc, ReconcileError | UsageError)
                else (f"{exc.__class__.__name__}: {exc}")
            )
            log(f"sync {cycles}: error: {text} (retry in {delay:.0f}s)")
            if state is not None:
                _event(client, state, "SyncFailed", text, "Warning", log)
        if options.max_cycles is not None and cycles >= options.max_cycles:
            break
        stop.wait(delay)
    return cycles


def _event(client: WatchClient, state: DesiredState, reason: str, message: str, kind: str,
           log: Log) -> None:  # fmt: skip
    from ciliumctl.errors import CiliumctlError

    try:
        record_event(client, state, reason, message, kind)
    except CiliumctlError as exc:
        log(f"could not record event {reason}: {exc.message}")
