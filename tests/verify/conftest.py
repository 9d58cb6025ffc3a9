"""Session fixtures for image verification: the real registry and cosign binaries (built with
`go` into ~/.cache/ciliumctl/bin when missing), registries on free 127.0.0.1 ports."""

from __future__ import annotations

from collections.abc import Iterator
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
