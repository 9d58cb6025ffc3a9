"""The OCI client against a real registry: plain HTTP, HTTPS with a private CA, basic and
bearer-token auth from the Docker config, manifests, indexes, blobs, referrers."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from ciliumctl.verify import oci
from ciliumctl.verify.errors import (
    BadReference,
    NotFoundInRegistry,
    RegistryError,
    UsageError,
    VerificationFailed,
)
from tests.verify.conftest import PASSWORD, USER
from tests.verify.registry import Pki, Registry, TokenServer, free_port, push_image, push_index


def repo(reg: Registry, name: str = "") -> oci.Reference:
    return oci.Reference.parse(f"{reg.host}/test/{name or secrets.token_hex(4)}:v1.0.0")


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("quay.io/cilium/cilium:v1.18.5", "quay.io", "cilium/cilium", "v1.18.5", None),
        ("cilium/cilium", "docker.io", "cilium/cilium", "latest", None),
        ("busybox", "docker.io", "library/busybox", "latest", None),
        (
            "localhost:5000/a/b@sha256:" + "a" * 64,
            "localhost:5000",
            "a/b",
            None,
            "sha256:" + "a" * 64,
        ),
        ("127.0.0.1:5000/x:t@sha256:" + "b" * 64, "127.0.0.1:5000", "x", "t", "sha256:" + "b" * 64),
    ],
)
def test_reference_parse(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = oci.Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert oci.Reference.parse(str(ref)) == ref


@pytest.mark.parametrize("text", ["", "Foo/Bar", "quay.io/x@sha256:abc", "a b", "x:bad tag!"])
def test_bad_reference(text: str) -> None:
    with pytest.raises(BadReference):
        oci.Reference.parse(text)


def test_push_resolve_fetch_manifest_and_blobs(
    registry: Registry, client: oci.RegistryClient
) -> None:
    ref = repo(registry)
    digest = push_image(client, ref)
    assert client.resolve(ref) == digest
    manifest = client.manifest(ref.with_digest(digest))
    assert manifest.digest == digest and not manifest.is_index
    layer = manifest.layers[0]
    data = client.blob(ref, layer.digest)
    assert oci.digest_of(data) == layer.digest
    assert ref.tag in client.tags(ref)


def test_multi_arch_index(registry: Registry, client: oci.RegistryClient) -> None:
    ref = repo(registry)
    digest, children = push_index(client, ref, [("linux", "amd64"), ("linux", "arm64")])
    index = client.manifest(ref)
    assert index.is_index and index.digest == digest == client.resolve(ref)
    arm = client.platform_manifest(index, "linux", "arm64")
    assert arm.digest == children["linux/arm64"]
    with pytest.raises(NotFoundInRegistry, match="linux/amd64, linux/arm64"):
        client.platform_manifest(index, "linux", "s390x")


def test_missing_tag_and_blob(registry: Registry, client: oci.RegistryClient) -> None:
    ref = repo(registry)
    push_image(client, ref)
    with pytest.raises(NotFoundInRegistry, match="not found"):
        client.resolve(ref.with_tag("nope"))
    with pytest.raises(NotFoundInRegistry):
        client.blob(ref, "sha256:" + "0" * 64)
    assert client.manifest_or_none(ref.with_tag("nope")) is None


def test_digest_mismatch_is_refused(registry: Registry, client: oci.RegistryClient) -> None:
    ref = repo(registry)
    digest = push_image(client, ref)
    other = push_image(client, ref.with_tag("other"))
    # Ask for one digest's content by the other's URL: the registry returns what it has for
    # the URL, which the client must check against the digest it asked for.
    manifest = client.manifest(ref.with_digest(digest))
    with pytest.raises(VerificationFailed, match="does not match its digest"):
        oci.check_digest(manifest.raw, other, "manifest")


def test_cross_repository_mount(registry: Registry, client: oci.RegistryClient) -> None:
    """A blob already in one repository is linked into another without an upload; a blob
    the registry lacks is not mounted (the caller uploads it)."""
    source, target = repo(registry), repo(registry)
    data = secrets.token_bytes(4096)
    blob = client.push_blob(source, data)
    assert not client.blob_exists(target, blob.digest)
    assert client.mount_blob(target, blob.digest, source.repository)
    assert client.blob_exists(target, blob.digest)
    assert client.blob(target, blob.digest) == data
    missing = oci.digest_of(b"never pushed")
    assert not client.mount_blob(target, missing, source.repository)
    assert not client.blob_exists(target, missing)


def test_referrers_tag_fallback(registry: Registry, client: oci.RegistryClient) -> None:
    ref = repo(registry)
    subject = push_image(client, ref)
    assert client.referrers(ref, subject) == []
    art = client.push_blob(ref, b'{"x":1}')
    empty = client.push_blob(ref, b"{}")
    artifact = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "artifactType": "application/example",
        "config": {"mediaType": oci.OCI_EMPTY, "digest": empty.digest, "size": 2},
        "layers": [{"mediaType": "application/json", "digest": art.digest, "size": art.size}],
        "subject": {"mediaType": oci.OCI_MANIFEST, "digest": subject, "size": 1},
    }
    art_digest = client.push_manifest(
        oci.Reference(ref.registry, ref.repository, None, None), artifact, oci.OCI_MANIFEST
    )
    index = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_INDEX,
        "manifests": [
            {
                "mediaType": oci.OCI_MANIFEST,
                "digest": art_digest,
                "size": 100,
                "artifactType": "application/example",
            }
        ],
    }
    client.push_manifest(ref.with_tag(oci.fallback_tag(subject)), index, oci.OCI_INDEX)
    found = client.referrers(ref, subject)
    assert [d.digest for d in found] == [art_digest]
    assert client.referrers(ref, subject, "application/other") == []


def test_registry_down_names_the_registry() -> None:
    port = free_port()
    client = oci.RegistryClient(insecure=True, timeout=2)
    ref = oci.Reference.parse(f"127.0.0.1:{port}/x/y:v1")
    with pytest.raises(RegistryError, match=f"cannot reach registry 127.0.0.1:{port}"):
        client.resolve(ref)


def test_insecure_only_for_loopback() -> None:
    client = oci.RegistryClient(insecure=True)
    with pytest.raises(UsageError, match="loopback"):
        client.resolve(oci.Reference.parse("quay.io/cilium/cilium:v1.18.5"))


def test_https_unknown_ca_fails_with_hint(basic_registry: Registry, creds_for) -> None:  # type: ignore[no-untyped-def]
    client = oci.RegistryClient(docker_config=creds_for(basic_registry.host))
    with pytest.raises(RegistryError, match="TLS error") as err:
        client.resolve(repo(basic_registry))
    assert "--ca-file" in str(err.value)


def test_basic_auth_from_docker_config(basic_registry: Registry, pki: Pki, creds_for) -> None:  # type: ignore[no-untyped-def]
    client = oci.RegistryClient(ca_file=pki.ca_file, docker_config=creds_for(basic_registry.host))
    ref = repo(basic_registry)
    digest = push_image(client, ref)
    assert client.resolve(ref) == digest


def test_basic_auth_anonymous_and_wrong_password(  # type: ignore[no-untyped-def]
    basic_registry: Registry, pki: Pki, creds_for, tmp_path: Path
) -> None:
    anon = oci.RegistryClient(ca_file=pki.ca_file, docker_config=tmp_path / "none.json")
    with pytest.raises(RegistryError, match="unauthorized") as err:
        anon.resolve(repo(basic_registry))
    assert "docker login" in str(err.value)
    bad = oci.RegistryClient(
        ca_file=pki.ca_file, docker_config=creds_for(basic_registry.host, USER, "wrong-password")
    )
    with pytest.raises(RegistryError, match="unauthorized") as err:
        bad.resolve(repo(basic_registry))
    assert "wrong-password" not in str(err.value) and PASSWORD not in str(err.value)


def test_bearer_token_auth(  # type: ignore[no-untyped-def]
    token_registry: Registry, token_server: TokenServer, pki: Pki, creds_for
) -> None:
    client = oci.RegistryClient(ca_file=pki.ca_file, docker_config=creds_for(token_registry.host))
    ref = repo(token_registry)
    digest = push_image(client, ref)
    assert client.resolve(ref) == digest
    assert client.manifest(ref).digest == digest
    scopes = {q["query"]["scope"][0] for q in token_server.requests if q["authorized"]}
    actions = {frozenset(s.rsplit(":", 1)[1].split(",")) for s in scopes if ref.repository in s}
    # the registry's challenge names the scope; a pull token, then a push token
    assert actions == {frozenset({"pull"}), frozenset({"pull", "push"})}


def test_bearer_token_refused(token_registry: Registry, pki: Pki, creds_for) -> None:  # type: ignore[no-untyped-def]
    client = oci.RegistryClient(
        ca_file=pki.ca_file, docker_config=creds_for(token_registry.host, USER, "nope")
    )
    with pytest.raises(RegistryError, match="refused the credentials"):
        client.resolve(repo(token_registry))


def test_docker_config_forms(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": "dTpw"},  # u:p
                    "r.example": {"identitytoken": "refresh"},
                    "s.example": {"username": "a", "password": "b"},
                }
            }
        )
    )
    hub = oci.load_credentials("docker.io", cfg)
    assert hub is not None and (hub.username, hub.secret) == ("u", "p")
    ident = oci.load_credentials("r.example", cfg)
    assert ident is not None and ident.identity_token and ident.secret == "refresh"
    assert oci.load_credentials("s.example", cfg) == oci.Credentials("a", "b")
    assert oci.load_credentials("none.example", cfg) is None
    assert "b" not in repr(oci.load_credentials("s.example", cfg)).replace("'a'", "")
    cfg.write_text("{not json")
    with pytest.raises(RegistryError, match=str(cfg)):
        oci.load_credentials("x", cfg)


def test_credential_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "bin" / "docker-credential-testhelper"
    helper.parent.mkdir()
    helper.write_text(
        "#!/bin/sh\nread host\n"
        'if [ "$host" = "h.example" ]; then echo \'{"Username":"hu","Secret":"hs"}\'; '
        "else echo 'credentials not found'; exit 1; fi\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:/usr/bin:/bin")
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps({"credHelpers": {"h.example": "testhelper"}, "credsStore": "testhelper"})
    )
    assert oci.load_credentials("h.example", cfg) == oci.Credentials("hu", "hs")
    assert oci.load_credentials("other.example", cfg) is None
