"""Forward a local TCP port to a pod's port through the API server (kubectl port-forward).

Each accepted connection opens its own port-forward websocket to the pod, so one slow or
broken connection never stalls the others; bytes are copied both ways until either side
closes. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ciliumctl.errors import CiliumctlError
from ciliumctl.k8s.errors import KubeError

if TYPE_CHECKING:
    from ciliumctl.k8s.client import Client

LOCAL_ADDRESS = "127.0.0.1"
_CHUNK = 1 << 16


class PortInUseError(CiliumctlError):
    """The local port cannot be listened on."""


def listen(port: int, address: str = LOCAL_ADDRESS) -> socket.socket:
    """A listening socket on ``address:port``; raises :class:`PortInUseError`."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((address, port))
    except OSError as exc:
        server.close()
        why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used: {exc.strerror}"
        raise PortInUseError(
            f"local port {address}:{port} {why}", "pick another local port (--port-forward N)"
        ) from exc
    server.listen(16)
    return server


def open_stream(client: Client, namespace: str, pod: str, port: int) -> Any:
    """A kubernetes ``PortForward`` websocket to ``pod``:``port`` (raises :class:`KubeError`)."""
    from kubernetes.stream import ws_client as _ws

    ws_client: Any = _ws  # untyped module
    what = f"port-forward to pod {namespace}/{pod} port {port}"
    sock = client.open_websocket(
        f"/api/v1/namespaces/{namespace}/pods/{pod}/portforward", [("ports", str(port))], what
    )
    return ws_client.PortForward(sock, [port])


def serve(
    client: Client,
    server: socket.socket,
    namespace: str,
    pod: str,
    port: int,
    stop: threading.Event,
    on_error: Callable[[str], None] = lambda _: None,
) -> None:
    """Accept connections on ``server`` and forward each to ``pod``:``port`` until ``stop``."""
    server.settimeout(0.2)
    try:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(
                target=_forward_one,
                args=(client, conn, namespace, pod, port, stop, on_error),
                daemon=True,
            ).start()
    finally:
        server.close()


def _forward_one(
    client: Client,
    conn: socket.socket,
    namespace: str,
    pod: str,
    port: int,
    stop: threading.Event,
    on_error: Callable[[str], None],
) -> None:
    where = f"pod {namespace}/{pod} port {port}"
    try:
        stream = open_stream(client, namespace, pod, port)
    except Exception as exc:  # a connection thread reports its failure, whatever it is
        on_error(exc.message if isinstance(exc, KubeError) else f"{where}: {_why(exc)}")
        conn.close()
        return
    try:
        _pump(conn, stream.socket(port), stop)
        error = stream.error(port)
        if error:
            on_error(f"{where}: {error}")
    except Exception as exc:  # e.g. the stream reset by the API server
        on_error(f"{where}: {_why(exc)}")
    finally:
        with contextlib.suppress(OSError):
            conn.close()
        with contextlib.suppress(Exception):
            stream.close()


def _why(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _pump(local: socket.socket, remote: Any, stop: threading.Event) -> None:
    """Copy bytes both ways until one side closes or ``stop`` is set."""
    peers = {local: remote, remote: local}
    while not stop.is_set():
        ready, _, _ = select.select(list(peers), [], [], 0.2)
        for source in ready:
            try:
                data = source.recv(_CHUNK)
            except OSError:
                return
            if not data:
                return
            try:
                peers[source].sendall(data)
            except OSError:
                return
