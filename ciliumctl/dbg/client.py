"""A small HTTP client for the agent's unix-socket API (used by cilium-dbg and cilium-cni)."""

from __future__ import annotations

import http.client
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


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        """Connect, waiting out a full accept queue: a unix socket with a timeout answers
        EAGAIN at once when the server's backlog is full (many pods' CNI ADDs at once), which
        is a busy agent, not a missing one."""
        deadline = time.monotonic() + (self.timeout or 30.0)
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self._path)
            except BlockingIOError:
                sock.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)
                continue
            except BaseException:
                sock.close()
                raise
            self.sock = sock
            return


class AgentClient:
    """Requests to one agent; every failure raises with a message a person can act on."""

    def __init__(self, path: str | None = None, timeout: float = 30.0) -> None:
        self.path = socket_path(path)
        self.timeout = timeout

    def request(self, method: str, target: str, body: Any = None) -> Any:
        """Send one request and return the decoded JSON answer."""
        conn = _UnixConnection(self.path, self.timeout)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise AgentUnreachableError(
                f"cannot reach the agent at {self.path}: {exc.strerror or exc}",
                "is the agent running? (cilium-agent creates the socket when it starts)",
            ) from exc
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise AgentUnreachableError(
                f"the agent at {self.path} did not answer {method} {target}: {exc}",
                "check the agent's log and `cilium-dbg status`",
            ) from exc
        finally:
            conn.close()
        try:
            payload = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            payload = raw.decode("utf-8", "replace")
        if resp.status >= 400:
            message = payload if isinstance(payload, str) else json.dumps(payload)
            raise AgentAPIError(resp.status, f"{method} {target}: {message}")
        return payload

    def get(self, target: str) -> Any:
        """GET ``target``."""
        return self.request("GET", target)
