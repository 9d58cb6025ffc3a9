"""`cilium verify image --key` on a real registry with signatures made by the real cosign:
both storage formats, three key types, and every failure a user can meet."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from ciliumctl.verify import oci
from tests.verify.conftest import Keys, cilium
from tests.verify.registry import Registry, free_port, push_image, push_index


def new_image(
    registry: Registry, client: oci.RegistryClient, name: str = "cilium"
) -> tuple[str, str]:
    """Push a fresh image; returns (tagged reference, host/repo@digest)."""
    repo = f"{registry.host}/t{secrets.token_hex(3)}/cilium/{name}"
    ref = oci.Reference.parse(f"{repo}:v1.18.5")
    digest = push_image(client, ref)
    return str(ref), f"{repo}@{digest}"


def assert_failed(proc, *reasons: str) -> None:  # type: ignore[no-untyped-def]
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    for reason in reasons:
        assert reason in out, out
    assert "verified" not in out.lower(), out


@pytest.mark.parametrize("key", ["ecdsa", "ed25519", "rsa"])
def test_legacy_signature_each_key_type(  # type: ignore[no-untyped-def]
    registry: Registry, client: oci.RegistryClient, sign, keys: Keys, key: str
) -> None:
    tagged, pinned = new_image(registry, client)
    sign(pinned, key)
    proc = cilium("verify", "image", "--insecure", "--key", str(keys.public(key)), tagged)
    assert proc.returncode == 0, proc.stderr
    assert "signature verified (key: key SHA256:" in proc.stdout
    assert pinned.split("@")[1] in proc.stdout


def test_bundle_signature_and_json(  # type: ignore[no-untyped-def]
    registry: Registry, client: oci.RegistryClient, sign, keys: Keys
) -> None:
    tagged, pinned = new_image(registry, client)
    sign(pinned, bundle=True)
    proc = cilium(
        "verify", "image", "--insecure", "--key", str(keys.public("ecdsa")), tagged, "-o", "json"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "ok" and data["digest"] == pinned.split("@")[1]
    assert data["signature"].startswith("bundle sha256:")
    assert [s["status"] for s in data["signatures"]] == ["ok"]


def test_multi_arch_index_signature(  # type: ignore[no-untyped-def]
    registry: Registry, client: oci.RegistryClient, sign, keys: Keys
) -> None:
    ref = oci.Reference.parse(f"{registry.host}/t{secrets.token_hex(3)}/cilium/cilium:v1.18.5")
    digest, _children = push_index(client, ref, [("linux", "amd64"), ("linux", "arm64")])
    sign(f"{ref.name}@{digest}")
    proc = cilium("verify", "image", "--insecure", "--key", str(keys.public("ecdsa")), str(ref))
    assert proc.returncode == 0, proc.stderr
    assert digest in proc.stdout


def test_signature_by_another_key(  # type: ignore[no-untyped-def]
    registry: Registry, client: oci.RegistryClient, sign, keys: Keys
) -> None:
    tagged, pinned = new_image(registry, client)
    sign(pinned, "other")
    sign(pinned, "other", bundle=True)
    proc = cilium("verify", "image", "--insecure", "--key", str(keys.public("ecdsa")), tagged)
    assert_failed(
        proc,
        "sig layer 0: the signature does not match the payload and the given key",
        "bundle sha256:",
    )


def test_tampered_payload(  # type: ignore[no-untyped-def]
    registry: Registry, client: oci.RegistryClient, sign, keys: Keys
) -> None:
    tagged, pinned = new_image(registry, client)
    sign(pinned)
    ref = oci.Reference.parse(tagged)
    digest = pinned.split("@")[1]
    sig_ref = ref.with_tag(oci.fallback_tag(digest) + ".sig")
    manifest = client.manifest(sig_ref)
    layer = manifest.layers[0]
    payload = json.loads(client.blob(ref, layer.digest))
    payload["optional"] = {"injected": "by an attacker"}
    blob = client.push_blob(ref, json.dumps(payload).encode())
    data = json.loads(manifest.raw)
    data["layers"][0].update(digest=blob.digest, size=blob.size)
    client.push_manifest(sig_ref, data, oci.OCI_MANIFEST)
    proc = cilium("verify", "image", "--insecure", "--key", str(keys.public("ecdsa")), tagged)
    assert_failed(proc, "the signature does not match the payload")


def test_signature_of_another_digest(  # type: ignore[no-untyped-def]
    registry: Registry, client: oci.RegistryClient, sign, keys: Keys
) -> None:
    tagged_a, pinned_a = new_image(registry, client)
    sign(pinned_a)
    ref_a = oci.Reference.parse(tagged_a)
    digest_a = pinned_a.split("@")[1]
    # Image B in the same repository carries a copy of A's (valid) signature manifest.
    ref_b = ref_a.with_tag("v1.18.6")
    digest_b = push_image(client, ref_b)
    sig_a = client.manifest(ref_a.with_tag(oci.fallback_tag(digest_a) + ".sig"))
    client.push_manifest(
        ref_a.with_tag(oci.fallback_tag(digest_b) + ".sig"), json.loads(sig_a.raw), oci.OCI_MANIFEST
    )
    proc = cilium("verify", "image", "--insecure", "--key", str(keys.public("ecdsa")), str(ref_b))
    assert_failed(proc, f"the signed payload names another image digest ({digest_a})")


def test_missing_signature(registry: Registry, client: oci.RegistryClient, keys: Keys) -> None:
    tagged, pinned = new_image(registry, client)
    proc = cilium("verify", "image", "--insecure", "--key", str(keys.public("ecdsa")), tagged)
    assert_failed(proc, f"no signatures found for {pinned}")


def test_missing_image(registry: Registry, keys: Keys) -> None:
    proc = cilium(
        "verify",
        "image",
        "--insecure",
        "--key",
        str(keys.public("ecdsa")),
        f"{registry.host}/nothing/here:v1",
    )
    assert_failed(proc, "not found")


def test_registry_down(keys: Keys) -> None:
    port = free_port()
    start = time.monotonic()
    proc = cilium(
        "verify",
        "image",
        "--insecure",
        "--key",
        str(keys.public("ecdsa")),
        f"127.0.0.1:{port}/cilium/cilium:v1.18.5",
    )
    assert_failed(proc, f"cannot reach registry 127.0.0.1:{port}")
    assert time.monotonic() - start < 30


def test_bad_key_file_is_a_usage_error(registry: Registry, keys: Keys) -> None:
    proc = cilium(
        "verify",
        "image",
        "--insecure",
        "--key",
        str(keys.private("ecdsa")),
        f"{registry.host}/x/y:v1",
    )
    assert proc.returncode == 2
    assert "not a PEM public key" in proc.stderr


def test_keyless_without_trust_root_fails_closed(
    registry: Registry, client: oci.RegistryClient, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    tagged, _ = new_image(registry, client)
    env = {
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "d"),
        "XDG_CACHE_HOME": str(tmp_path / "c"),
        "TUF_ROOT": str(tmp_path / "t"),
    }
    proc = cilium("verify", "image", "--insecure", tagged, env=env)
    assert_failed(proc, "public-good trust root is not cached", "--trust-root")


def test_non_cilium_image_needs_identity(registry: Registry, client: oci.RegistryClient) -> None:
    ref = oci.Reference.parse(f"{registry.host}/library/busybox:v1.18.5")
    push_image(client, ref)
    proc = cilium("verify", "image", "--insecure", str(ref))
    assert proc.returncode == 2
    assert "--certificate-identity" in proc.stderr
