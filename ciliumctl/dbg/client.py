"""A small HTTP client for the agent's unix-socket API (used by cilium-dbg and cilium-cni)."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from ciliumctl.errors import CiliumctlError

DEFAULT_SOCKET = "/var/run/cilium/cilium.sock"
SOCKET_ENV = "CILIUM_SOCK"


class AgentUnreachableError(CiliumctlError):
    """The agent's socket is missing or refuses connections."""


class AgentAPIError(CiliumctlError):
    """The agent answered with an error status."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


def socket_path(host: str | None = None) -> str:
    """``-H unix:///path`` / ``$CILIUM_SOCK`` / the default socket."""
    value = host or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET
    return value.removeprefix("unix://")


def _connect(path: str, timeout: float) -> socket.socket:
    """Connect, waiting out a full accept queue: a unix socket with a timeout answers EAGAIN
    at once when the server's backlog is full (many pods' CNI ADDs at once), which is a busy
    agent, not a missing one."""
    deadline = time.monotonic() + (timeout or 30.0)
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except BlockingIOError:
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
            continue
        except BaseException:
            sock.close()
            raise
        return sock


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 exchange with ``Connection: close``: (status, body). Written by hand, not
    with http.client, which imports email and ssl: the CNI plugin starts for every pod, and
    they were a fifth of its start-up."""
    sock.sendall(request)
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    raw = b"".join(chunks)
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP answer: {raw[:80]!r}")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
            if len(body) < length:
                raise ConnectionError(f"answer cut short: {len(body)} of {length} bytes")
            body = body[:length]
    return int(parts[1]), body


class AgentClient:
    """Requests to one agent; every failure raises with a message a person can act on."""

    def __init__(self, path: str | None = None, timeout: float = 30.0) -> None:
        self.path = socket_path(path)
        self.timeout = timeout

    def request(self, method: str, target: str, body: Any = None) -> Any:
        """Send one request and return the decoded JSON answer."""
        data = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            f"Content-Length: {len(data)}\r\n"
            + ("Content-Type: application/json\r\n" if body is not None else "")
            + "\r\n"
        )
        try:
            sock = _connect(self.path, self.timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise AgentUnreachableError(
                f"cannot reach the agent at {self.path}: {exc.strerror or exc}",
                "is the agent running? (cilium-agent creates the socket when it starts)",
            ) from exc
        except OSError as exc:
            raise AgentUnreachableError(
                f"the agent at {self.path} did not answer {method} {target}: {exc}",
                "check the agent's log and `cilium-dbg status`",
            ) from exc
        try:
            status, raw = _exchange(sock, head.encode() + data)
        except (OSError, ValueError) as exc:  # TimeoutError and ConnectionError are OSErrors
            raise AgentUnreachableError(
                f"the agent at {self.path} did not answer {method} {target}: {exc}",
                "check the agent's log and `cilium-dbg status`",
            ) from exc
        finally:
            sock.close()
        try:
            payload = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            payload = raw.decode("utf-8", "replace")
        if status >= 400:
            message = payload if isinstance(payload, str) else json.dumps(payload)
            raise AgentAPIError(status, f"{method} {target}: {message}")
        return payload

    def get(self, target: str) -> Any:
        """GET ``target``."""
        return self.request("GET", target)
