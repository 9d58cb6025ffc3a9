"""An HTTP(S) echo server: every request is answered with JSON describing that request.

It plays the role of quay.io/cilium/json-mock in cilium-cli's connectivity test: any method
on any path gets ``200`` and a JSON body with the method, path, query, headers, body, the
client's address and port and the serving pod's hostname, so a test sees which backend
answered and which source address it saw (Cilium's policies and NAT change exactly that).

Configuration follows the upstream pods: ``PORT`` (default 8080) for HTTP; with
``TLS_CERT`` and ``TLS_KEY`` (PEM files) HTTPS is served too, on ``TLS_PORT`` (default
8443). Command-line flags override the environment. Stdlib only: the image needs no
dependencies.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import socket
import ssl
import sys
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 1 << 20


def _port(address: Any) -> int:
    return int(address[1]) if isinstance(address, tuple) else 0


def describe(handler: http.server.BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
    """The JSON document describing one request (what the echo server answers)."""
    url = urlsplit(handler.path)
    client = handler.client_address
    host, port = str(client[0]), int(client[1])
    if host.startswith("::ffff:"):
        host = host[len("::ffff:") :]
    try:
        text: str | None = body.decode()
    except UnicodeDecodeError:
        text = None
    return {
        "method": handler.command,
        "path": url.path,
        "query": {k: v if len(v) > 1 else v[0] for k, v in parse_qs(url.query).items()},
        "url": handler.path,
        "httpVersion": handler.request_version,
        "headers": {k.lower(): v for k, v in handler.headers.items()},
        "body": text,
        "bodyBytes": len(body),
        "client": {"address": host, "port": port},
        "server": {
            "hostname": socket.gethostname(),
            "port": _port(handler.server.server_address),
            "tls": isinstance(handler.connection, ssl.SSLSocket),
        },
    }


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers every method with the JSON description of the request."""

    server_version = "ciliumctl-echo"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.client_address[0]} {format % args}\n")

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413, "request body too large")
            return
        body = self.rfile.read(length) if length else b""
        data = json.dumps(describe(self, body), indent=2).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _answer


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, port: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        super().__init__((address, port), EchoHandler, bind_and_activate=False)
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.server_bind()
        self.server_activate()


def default_address() -> str:
    """``::`` (dual stack) where the kernel has IPv6, else ``0.0.0.0``."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::", 0))
        return "::"
    except OSError:
        return "0.0.0.0"  # noqa: S104 - a server in a pod listens on all addresses


def serve(
    address: str,
    port: int,
    tls: tuple[str, str] | None = None,
    tls_port: int = 8443,
    ready: threading.Event | None = None,
) -> list[http.server.ThreadingHTTPServer]:
    """Start the HTTP (and HTTPS) servers in threads; returns them (``shutdown()`` stops)."""
    servers: list[http.server.ThreadingHTTPServer] = [_Server(address, port)]
    if tls is not None:
        https = _Server(address, tls_port)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls[0], tls[1])
        https.socket = ctx.wrap_socket(https.socket, server_side=True)
        servers.append(https)
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    if ready is not None:
        ready.set()
    return servers


#: flags of the gateway-api echo server (cilium-cli's ``--echo-image``) accepted and ignored
UPSTREAM_ECHO_FLAGS = ("--tcp", "--grpc", "--tls=", "--crt", "--key")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the echo image."""
    parser = argparse.ArgumentParser(
        prog="echo", description=__doc__.splitlines()[0], allow_abbrev=False
    )
    parser.add_argument("--address", default=os.environ.get("ADDRESS") or default_address())
    # repeated as the gateway-api echo server's ``--port=8080 --port=8443``: HTTP on the first
    parser.add_argument("--port", type=int, action="append")
    parser.add_argument("--tls-port", type=int, default=int(os.environ.get("TLS_PORT") or 8443))
    parser.add_argument("--tls-cert", default=os.environ.get("TLS_CERT"))
    parser.add_argument("--tls-key", default=os.environ.get("TLS_KEY"))
    # that server's other listeners (--tcp, --grpc, --tls, --crt, --key) are not served here:
    # cilium-cli passes them to the echo image it runs for its L7 load-balancer pod
    opts, ignored = parser.parse_known_args(argv)
    if any(not arg.startswith(UPSTREAM_ECHO_FLAGS) for arg in ignored):
        parser.error(f"unrecognized arguments: {' '.join(ignored)}")
    opts.port = opts.port[0] if opts.port else int(os.environ.get("PORT") or 8080)
    if bool(opts.tls_cert) != bool(opts.tls_key):
        parser.error("HTTPS needs both --tls-cert/TLS_CERT and --tls-key/TLS_KEY")
    tls = (opts.tls_cert, opts.tls_key) if opts.tls_cert else None
    servers = serve(opts.address, opts.port, tls, opts.tls_port)
    ports = ", ".join(str(s.server_address[1]) for s in servers)
    sys.stderr.write(f"echo: listening on {opts.address} port(s) {ports}\n")
    sys.stderr.flush()
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    for srv in servers:
        srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
