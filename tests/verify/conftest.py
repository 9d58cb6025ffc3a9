"""Session fixtures for image verification: the real registry and cosign binaries (built with
`go` into ~/.cache/ciliumctl/bin when missing), registries on free 127.0.0.1 ports."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ciliumctl.devcluster import binaries
from ciliumctl.verify import oci
from tests.verify.registry import (
    Pki,
    Registry,
    TokenServer,
    docker_config,
    htpasswd_line,
    make_pki,
)

USER, PASSWORD = "ci-user", "s3cret-Pa55word"


@pytest.fixture(scope="session")
def registry_binary() -> Path:
    return binaries.ensure(["registry"])["registry"]


@pytest.fixture(scope="session")
def cosign_binary() -> Path:
    return binaries.ensure(["cosign"])["cosign"]


@pytest.fixture(scope="session")
def registry(registry_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain-HTTP registry on 127.0.0.1 without auth (use ``insecure=True``)."""
    reg = Registry(registry_binary, tmp_path_factory.mktemp("registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def basic_registry(
    registry_binary: Path, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """An HTTPS registry (test CA) with htpasswd basic auth."""
    directory = tmp_path_factory.mktemp("basic-registry")
    htpasswd = directory / "htpasswd"
    htpasswd.write_text(htpasswd_line(USER, PASSWORD) + "\n")
    auth = {"htpasswd": {"realm": "test", "path": str(htpasswd)}}
    reg = Registry(registry_binary, directory, tls=pki, auth=auth).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def token_server(pki: Pki) -> Iterator[TokenServer]:
    server = TokenServer(pki, USER, PASSWORD).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def token_registry(
    registry_binary: Path,
    pki: Pki,
    token_server: TokenServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Registry]:
    """An HTTPS registry (test CA) with bearer-token auth from :class:`TokenServer`."""
    directory = tmp_path_factory.mktemp("token-registry")
    reg = Registry(registry_binary, directory, tls=pki, auth=token_server.registry_auth()).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def creds_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a Docker config with the test credentials for a registry host."""

    def make(host: str, user: str = USER, password: str = PASSWORD) -> Path:
        return docker_config(tmp_path / "docker", host, user, password)

    return make


@pytest.fixture
def client(registry: Registry) -> oci.RegistryClient:
    return oci.RegistryClient(insecure=True)


@dataclass(frozen=True)
class Keys:
    """cosign key pairs (password ``COSIGN_PASSWORD``): ECDSA P-256, Ed25519 and RSA."""

    directory: Path

    def private(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    def public(self, name: str) -> Path:
        return self.directory / f"{name}.pub"


COSIGN_PASSWORD = "test-key-password"


def cosign_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSIGN_")}
    env.update(COSIGN_PASSWORD=COSIGN_PASSWORD, COSIGN_YES="true", TUF_ROOT="/nonexistent")
    return env


def run_cosign(cosign: Path, *args: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(
        [str(cosign), *args],
        capture_output=True,
        text=True,
        env=cosign_env(),
        cwd=cwd,
        timeout=120,
    )
    assert proc.returncode == 0, f"cosign {' '.join(args)} failed:\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="session")
def keys(cosign_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Key pairs made by cosign: generate-key-pair (ECDSA) and import-key-pair (Ed25519,
    RSA, and a second ECDSA key that signs nothing it should)."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    directory = tmp_path_factory.mktemp("keys")
    run_cosign(cosign_binary, "generate-key-pair", "--output-key-prefix", "ecdsa", cwd=directory)
    generated = {
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "rsa": rsa.generate_private_key(65537, 2048),
        "other": ec.generate_private_key(ec.SECP256R1()),
    }
    for name, key in generated.items():
        pem = directory / f"{name}.pem"
        pem.write_bytes(
            key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
        )
        run_cosign(
            cosign_binary,
            "import-key-pair",
            "--key",
            str(pem),
            "--output-key-prefix",
            name,
            cwd=directory,
        )
    return Keys(directory)


@pytest.fixture(scope="session")
def sign(cosign_binary: Path, keys: Keys):  # type: ignore[no-untyped-def]
    """Sign ``host/repo@digest`` with cosign and a key (no transparency log: offline)."""

    def do(image: str, key: str = "ecdsa", *, bundle: bool = False) -> None:
        args = [
            "sign",
            "--key",
            str(keys.private(key)),
            "--tlog-upload=false",
            "--allow-http-registry",
            image,
        ]
        if bundle:
            args.insert(1, "--new-bundle-format")
        run_cosign(cosign_binary, *args)

    return do


@pytest.fixture(scope="session")
def attest(cosign_binary: Path, keys: Keys):  # type: ignore[no-untyped-def]
    """Attest a predicate file to ``host/repo@digest`` with cosign."""

    def do(
        image: str, predicate: Path, kind: str, key: str = "ecdsa", *, bundle: bool = False
    ) -> None:
        args = [
            "attest",
            "--key",
            str(keys.private(key)),
            "--tlog-upload=false",
            "--allow-http-registry",
            "--type",
            kind,
            "--predicate",
            str(predicate),
            image,
        ]
        if bundle:
            args.insert(1, "--new-bundle-format")
        run_cosign(cosign_binary, *args)

    return do


def cilium(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `cilium` command as a user does."""
    full = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    full.update({"NO_COLOR": "1", "COLUMNS": "250"})
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )
