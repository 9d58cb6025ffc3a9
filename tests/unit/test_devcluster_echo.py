"""The echo server (json-mock's role) as a real process on 127.0.0.1, HTTP and HTTPS."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.verify.registry import make_pki


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, "echo exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"echo not listening on {port}")


def test_echo_returns_the_request_as_json(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    http_port, https_port = _free_port(), _free_port()
    env = {"PORT": str(http_port), "TLS_PORT": str(https_port), "PATH": "/usr/bin:/bin"}
    env |= {"TLS_CERT": str(pki.cert_file), "TLS_KEY": str(pki.key_file)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ciliumctl.devcluster.echo", "--address", "127.0.0.1"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(http_port, proc)
        _wait(https_port, proc)
        req = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/private/path?a=1&a=2",
            data=b'{"k": 1}',
            method="POST",
            headers={"X-Very-Secret-Token": "42", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            seen = json.loads(resp.read())
        assert seen["method"] == "POST"
        assert seen["path"] == "/private/path" and seen["query"] == {"a": ["1", "2"]}
        assert seen["headers"]["x-very-secret-token"] == "42"
        assert json.loads(seen["body"]) == {"k": 1}
        assert seen["client"]["address"] == "127.0.0.1" and seen["server"]["tls"] is False
        head = urllib.request.Request(f"http://127.0.0.1:{http_port}/", method="HEAD")
        with urllib.request.urlopen(head, timeout=5) as resp:
            assert resp.status == 200 and resp.read() == b""
        ctx = ssl.create_default_context(cafile=str(pki.ca_file))
        with urllib.request.urlopen(
            f"https://127.0.0.1:{https_port}/secure", context=ctx, timeout=5
        ) as resp:
            seen = json.loads(resp.read())
        assert seen["server"]["tls"] is True and seen["path"] == "/secure"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_echo_rejects_half_a_tls_setting() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ciliumctl.devcluster.echo", "--tls-cert", "x.pem"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.returncode == 2 and "TLS_KEY" in out.stderr


def test_echo_takes_the_gateway_api_echo_servers_flags_as_cilium_cli_passes_them() -> None:
    """cilium-cli runs its --echo-image with ``--tcp=9090 --port=8080 --grpc=7070
    --port=8443 --tls=8443 --crt=... --key=...``: HTTP is served on the first --port; the
    other listeners are ignored; a flag of neither kind is still refused."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ciliumctl.devcluster.echo", "--address", "127.0.0.1",
         "--tcp=9090", f"--port={port}", "--grpc=7070", "--port=8443", "--tls=8443",
         "--crt=/cert.crt", "--key=/cert.key"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait(port, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert resp.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    out = subprocess.run(
        [sys.executable, "-m", "ciliumctl.devcluster.echo", "--bogus=1"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.returncode == 2 and "unrecognized arguments: --bogus=1" in out.stderr
