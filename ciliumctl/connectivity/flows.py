"""Flow validation from the agents' ``cilium-dbg monitor -o json`` drop and policy-verdict
events: a connection expected to be denied must show a policy drop on the right node in the
right direction, an allowed one no drop at all.

The JSON is upstream's monitor format: drops carry ``type: drop``, the ``reason`` text, the
``dstID`` of the receiving endpoint (non-zero on ingress) and a ``summary`` with ``l3``/``l4``
``src``/``dst``; policy verdicts carry ``type: policy-verdict``, ``action`` and whether the
packet was ``ingress``.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ciliumctl.connectivity import model as m

MONITOR_COMMAND = (
    "cilium-dbg",
    "monitor",
    "-o",
    "json",
    "--type",
    "drop",
    "--type",
    "policy-verdict",
)


def parse_event(line: str, *, node: str, agent: str, when: float = 0.0) -> m.DropEvent | None:
    """One monitor JSON line as an event, or None for other lines (banners, other types)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind = data.get("type")
    summary = data.get("summary") or {}
    l3 = summary.get("l3") or {}
    l4 = summary.get("l4") or {}
    src, dst, port = str(l3.get("src") or ""), str(l3.get("dst") or ""), _int(l4.get("dst"))
    if not l3 and (data.get("src") or data.get("dst")):  # "ip:port" fields (the project's agent)
        src, _ = _split_hostport(str(data.get("src") or ""))
        dst, port = _split_hostport(str(data.get("dst") or ""))
    direction = str(data.get("direction") or "").lower()
    if kind == "drop":
        if direction not in ("ingress", "egress"):
            direction = "ingress" if _int(data.get("dstID")) else "egress"
        reason = str(data.get("reason") or "unknown")
        return m.DropEvent("drop", reason, node, agent, src, dst, port, direction, when)
    if kind == "policy-verdict":
        verdict = str(data.get("action") or data.get("verdict") or "").lower()
        if verdict not in ("deny", "denied", "drop"):
            return None
        ingress = data.get("ingress")
        if direction not in ("ingress", "egress"):
            direction = "ingress" if ingress is True else "egress" if ingress is False else ""
        return m.DropEvent("policy-verdict", "deny", node, agent, src, dst, port, direction, when)
    return None


def _split_hostport(text: str) -> tuple[str, int]:
    """``10.0.0.1:80``, ``[fd00::1]:80`` or ``fd00::1:80`` -> (address, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, _int(rest.lstrip(":"))
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 0
    if _is_ip(text):  # a bare IPv6 address without a port
        return text, 0
    return host, _int(port)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def related(action: m.Action, event: m.DropEvent) -> bool:
    """Is ``event`` about ``action``'s connection (source address, destination if known)?"""
    src = action.src.address(action.family)
    if src and event.src_ip and event.src_ip != src:
        return False
    dst = action.dst.address(action.family)
    if _is_ip(dst) and event.dst_ip and event.dst_ip != dst:
        return False
    return not (action.dst.port and event.dst_port and event.dst_port != action.dst.port)


def validate(action: m.Action, events: list[m.DropEvent]) -> tuple[list[str], list[m.DropEvent]]:
    """Problems with the flows of ``action`` and the drops that belong to it."""
    mine = [e for e in events if related(action, e)]
    drops = [e for e in mine if e.kind == "drop"]
    expect = action.expectation
    problems: list[str] = []
    if expect.success:
        for e in drops:
            problems.append(f"unexpected {e.describe()}")
        return problems, drops
    for side, result, node in (
        ("egress", expect.egress, action.src.node),
        ("ingress", expect.ingress, action.dst.node),
    ):
        if not result.drop or result.none:
            continue
        wanted = result.egress_drop if side == "egress" else result.ingress_drop
        if not wanted:
            continue
        seen = [e for e in drops if e.direction in (side, "") and (not node or e.node == node)]
        if result.reasons:
            good = [e for e in seen if e.reason in result.reasons]
            if not good:
                found = "; ".join(e.describe() for e in drops) or "no drop events"
                where = f" on node {node}" if node else ""
                problems.append(
                    f"expected a {side} drop '{' or '.join(result.reasons)}'{where}, saw: {found}"
                )
    return problems, drops


class StreamClient(Protocol):
    """What the monitor collector needs from the Kubernetes client."""

    def exec_stream(
        self,
        namespace: str,
        pod: str,
        command: list[str],
        container: str | None = None,
        *,
        on_stdout: Callable[[bytes], None],
        timeout: float = 60.0,
        stderr_limit: int = 1 << 16,
    ) -> Any: ...


class _Stop(Exception):
    """Raised from the stdout callback to end a monitor stream."""


class MonitorCollector:
    """Runs ``cilium-dbg monitor -o json`` in every agent pod and keeps the drop events."""

    def __init__(self, client: StreamClient, agents: list[m.Peer], timeout: float) -> None:
        self._client = client
        self._agents = agents
        self._timeout = timeout
        self._lock = threading.Lock()
        self._events: list[m.DropEvent] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self.started = threading.Event()

    def start(self) -> None:
        """Start one stream per agent (daemon threads, bounded by the run's timeout)."""
        for agent in self._agents:
            thread = threading.Thread(target=self._run, args=(agent,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, agent: m.Peer) -> None:
        namespace, _, pod = agent.pod.partition("/")
        buf = bytearray()

        def on_stdout(chunk: bytes) -> None:
            if self._stop.is_set():
                raise _Stop
            buf.extend(chunk)
            now = time.monotonic()
            while b"\n" in buf:
                line, _, rest = bytes(buf).partition(b"\n")
                buf[:] = rest
                event = parse_event(
                    line.decode("utf-8", "replace"), node=agent.node, agent=agent.pod, when=now
                )
                if event is not None:
                    with self._lock:
                        self._events.append(event)

        try:
            self._client.exec_stream(
                namespace,
                pod,
                list(MONITOR_COMMAND),
                agent.container or None,
                on_stdout=on_stdout,
                timeout=self._timeout,
            )
        except _Stop:
            return
        except Exception as exc:  # report, never crash the run: validation then fails closed
            with self._lock:
                self.errors.append(f"monitor in {agent.pod}: {exc}")

    def events(self, since: float, until: float) -> list[m.DropEvent]:
        """The events received between two monotonic times."""
        with self._lock:
            return [e for e in self._events if since <= e.time <= until]

    def all_events(self) -> list[m.DropEvent]:
        """Every event received so far."""
        with self._lock:
            return list(self._events)

    def stop(self) -> None:
        """Ask the streams to end (each stops at its next output or its timeout)."""
        self._stop.set()
