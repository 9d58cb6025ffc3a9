"""Test helpers: a real OCI registry (distribution v3) on 127.0.0.1, a test PKI, a Docker
token server, and pushing small images. No mocks: the client under test talks HTTP(S) to
the real registry binary."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import ipaddress
import json
import os
import secrets
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ciliumctl.verify import oci


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pki:
    """A CA and one server certificate for 127.0.0.1/localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def make_pki(directory: Path, name: str = "test") -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} registry CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.crt").write_bytes(ca.public_bytes(pem))
    (directory / "server.crt").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Pki(directory / "ca.crt", directory / "server.crt", directory / "server.key", key, cert)


class Registry:
    """The distribution registry binary running on 127.0.0.1 with a generated config."""

    def __init__(
        self,
        binary: Path,
        directory: Path,
        *,
        tls: Pki | None = None,
        auth: dict[str, Any] | None = None,
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.tls = tls
        self.auth = auth
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        self.directory.mkdir(parents=True, exist_ok=True)
        http_cfg: dict[str, Any] = {"addr": self.host, "secret": secrets.token_hex(16)}
        if self.tls:
            http_cfg["tls"] = {
                "certificate": str(self.tls.cert_file),
                "key": str(self.tls.key_file),
            }
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.directory / "data")},
                "delete": {"enabled": True},
            },
            "http": http_cfg,
        }
        if self.auth:
            config["auth"] = self.auth
        cfg = self.directory / "config.yml"
        cfg.write_text(yaml.safe_dump(config))
        log = open(self.directory / "registry.log", "wb")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env["OTEL_TRACES_EXPORTER"] = "none"
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "registry exited: " + (self.directory / "registry.log").read_text()[-2000:]
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("registry did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def htpasswd_line(user: str, password: str) -> str:
    import bcrypt

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"


def docker_config(directory: Path, registry: str, user: str, password: str) -> Path:
    """A Docker config.json with basic credentials for ``registry``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path = directory / "config.json"
    path.write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
    return path


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A Docker token service (HTTPS) issuing ES256 JWTs with an x5c chain for the registry.

    It checks HTTP basic credentials and grants exactly the requested scope."""

    def __init__(
        self,
        pki: Pki,
        user: str,
        password: str,
        service: str = "test-registry",
        issuer: str = "test-token-issuer",
    ) -> None:
        self.pki = pki
        self.user = user
        self.password = password
        self.service = service
        self.issuer = issuer
        self.port = free_port()
        self.requests: list[dict[str, Any]] = []
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"https://127.0.0.1:{self.port}/token"

    def token(self, scope: str) -> str:
        header = {
            "alg": "ES256",
            "typ": "JWT",
            "x5c": [
                base64.b64encode(self.pki.cert.public_bytes(serialization.Encoding.DER)).decode()
            ],
        }
        now = int(time.time())
        access = []
        if scope:
            kind, name, actions = scope.split(":", 2)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        claims = {
            "iss": self.issuer,
            "sub": self.user,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        der = self.pki.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input}.{_b64url(sig)}"

    def start(self) -> TokenServer:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                auth = self.headers.get("Authorization", "")
                expected = (
                    "Basic " + base64.b64encode(f"{outer.user}:{outer.password}".encode()).decode()
                )
                outer.requests.append({"query": query, "authorized": auth == expected})
                if auth != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": outer.token(query.get("scope", [""])[0])}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.pki.cert_file, self.pki.key_file)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def registry_auth(self) -> dict[str, Any]:
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.pki.ca_file),
            }
        }


@contextmanager
def running(registry: Registry) -> Iterator[Registry]:
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


def push_image(
    client: oci.RegistryClient,
    ref: oci.Reference,
    *,
    seed: str = "",
    platform: tuple[str, str] | None = None,
    tag: bool = True,
) -> str:
    """Push a one-layer image; returns its manifest digest."""
    layer = f"layer of {ref} {seed} {secrets.token_hex(8)}".encode()
    config = json.dumps(
        {
            "architecture": platform[1] if platform else "amd64",
            "os": platform[0] if platform else "linux",
            "rootfs": {"type": "layers", "diff_ids": [oci.digest_of(layer)]},
        }
    ).encode()
    cfg = client.push_blob(ref, config)
    lyr = client.push_blob(ref, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cfg.digest,
            "size": cfg.size,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": lyr.digest,
                "size": lyr.size,
            }
        ],
    }
    target = ref if tag else oci.Reference(ref.registry, ref.repository, None, None)
    return client.push_manifest(target, manifest, oci.OCI_MANIFEST)


def push_index(
    client: oci.RegistryClient, ref: oci.Reference, platforms: list[tuple[str, str]]
) -> tuple[str, dict[str, str]]:
    """Push a multi-arch index; returns its digest and platform -> manifest digest."""
    children: dict[str, str] = {}
    descs = []
    for os_name, arch in platforms:
        digest = push_image(
            client, ref, seed=f"{os_name}/{arch}", platform=(os_name, arch), tag=False
        )
        size = len(client.manifest(ref.with_digest(digest)).raw)
        children[f"{os_name}/{arch}"] = digest
        descs.append(
            {
                "mediaType": oci.OCI_MANIFEST,
                "digest": digest,
                "size": size,
                "platform": {"os": os_name, "architecture": arch},
            }
        )
    index = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": descs}
    return client.push_manifest(ref, index, oci.OCI_INDEX), children
