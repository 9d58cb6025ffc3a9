"""Keyless `cilium verify image` against a private Sigstore (tests/verify/sigstore_fixtures):
legacy signatures attached by the real `cosign attach signature`, and Sigstore bundles
attached as referrers; every check of the chain of trust has a failing case."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.verify import oci
from tests.verify.conftest import cilium, cosign_env
from tests.verify.registry import Registry, push_image
from tests.verify.sigstore_fixtures import Claims, Signed, TestSigstore, make_ca, pem
from tests.verify.test_verify_key import assert_failed


@pytest.fixture(scope="session")
def sigstore(tmp_path_factory: pytest.TempPathFactory) -> TestSigstore:
    return TestSigstore(tmp_path_factory.mktemp("sigstore"))


def fresh(
    registry: Registry, client: oci.RegistryClient, tag: str = "v1.18.5"
) -> tuple[oci.Reference, str]:
    ref = oci.Reference.parse(f"{registry.host}/k{secrets.token_hex(3)}/cilium/cilium:{tag}")
    return ref, push_image(client, ref)


def cosign_payload(cosign: Path, image: str) -> bytes:
    proc = subprocess.run(
        [str(cosign), "generate", "--allow-http-registry", image],
        capture_output=True,
        env=cosign_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def attach_legacy(cosign: Path, image: str, signed: Signed, tmp: Path) -> None:
    """`cosign attach signature` with the certificate, chain and Rekor bundle."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "payload.json").write_bytes(signed.payload)
    (tmp / "sig").write_text(TestSigstore.rekor_response(signed)["base64Signature"])
    (tmp / "cert.pem").write_bytes(pem(signed.leaf))
    (tmp / "chain.pem").write_bytes(b"".join(pem(c) for c in signed.chain))
    (tmp / "rekor.json").write_text(json.dumps(TestSigstore.rekor_response(signed)))
    proc = subprocess.run(
        [
            str(cosign),
            "attach",
            "signature",
            "--allow-http-registry",
            "--payload",
            str(tmp / "payload.json"),
            "--signature",
            str(tmp / "sig"),
            "--certificate",
            str(tmp / "cert.pem"),
            "--certificate-chain",
            str(tmp / "chain.pem"),
            "--rekor-response",
            str(tmp / "rekor.json"),
            image,
        ],
        capture_output=True,
        text=True,
        env=cosign_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def attach_bundle(
    client: oci.RegistryClient,
    ref: oci.Reference,
    subject: str,
    bundle: dict[str, Any],
    predicate: str,
) -> None:
    """Attach a bundle as cosign does: a referrer manifest plus the tag-fallback index."""
    media = "application/vnd.dev.sigstore.bundle.v0.3+json"
    blob = client.push_blob(ref, json.dumps(bundle).encode())
    empty = client.push_blob(ref, b"{}")
    size = len(client.manifest(ref.with_digest(subject)).raw)
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "artifactType": media,
        "config": {"mediaType": oci.OCI_EMPTY, "digest": empty.digest, "size": 2},
        "layers": [{"mediaType": media, "digest": blob.digest, "size": blob.size}],
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": predicate,
        },
        "subject": {"mediaType": oci.OCI_MANIFEST, "digest": subject, "size": size},
    }
    digest = client.push_manifest(
        oci.Reference(ref.registry, ref.repository), manifest, oci.OCI_MANIFEST
    )
    tag = ref.with_tag(oci.fallback_tag(subject))
    existing = client.manifest_or_none(tag)
    manifests = list(existing.data["manifests"]) if existing else []
    manifests.append(
        {
            "mediaType": oci.OCI_MANIFEST,
            "digest": digest,
            "size": len(json.dumps(manifest, separators=(",", ":"))),
            "artifactType": oci.OCI_EMPTY,
        }
    )
    client.push_manifest(
        tag, {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": manifests}, oci.OCI_INDEX
    )


def sign_legacy(
    sigstore: TestSigstore,
    cosign: Path,
    ref: oci.Reference,
    digest: str,
    tmp: Path,
    claims: Claims | None = None,
    **issue: Any,
) -> None:
    image = f"{ref.name}@{digest}"
    payload = cosign_payload(cosign, image)
    signed = sigstore.sign_payload(payload, claims or Claims.cilium_release(), **issue)
    attach_legacy(cosign, image, signed, tmp)


def statement(
    digest: str,
    predicate_type: str = "https://sigstore.dev/cosign/sign/v1",
    predicate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": digest.split(":")[1]}}],
        "predicateType": predicate_type,
        "predicate": predicate or {},
    }


def verify(ref: oci.Reference, sigstore: TestSigstore, *extra: str):  # type: ignore[no-untyped-def]
    return cilium(
        "verify", "image", "--insecure", "--trust-root", str(sigstore.trust_root), str(ref), *extra
    )


def test_legacy_keyless_with_cilium_defaults(  # type: ignore[no-untyped-def]
    registry, client, cosign_binary, sigstore, tmp_path
) -> None:
    ref, digest = fresh(registry, client)
    sign_legacy(sigstore, cosign_binary, ref, digest, tmp_path)
    proc = verify(ref, sigstore, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "ok" and data["mode"] == "keyless" and data["digest"] == digest
    signer = data["signer"]
    assert signer["identity"].endswith("build-images-releases.yaml@refs/tags/v1.18.5")
    assert signer["issuer"] == "https://token.actions.githubusercontent.com"
    assert signer["github_workflow_name"] == "Image Release Build"
    assert data["tlogIndex"] > 1000
    text = verify(ref, sigstore)
    assert text.returncode == 0 and "signature verified (keyless:" in text.stdout


def test_bundle_keyless_with_inclusion_proof(  # type: ignore[no-untyped-def]
    registry, client, sigstore
) -> None:
    ref, digest = fresh(registry, client)
    signed = sigstore.sign_dsse(statement(digest), Claims.cilium_release())
    attach_bundle(
        client, ref, digest, TestSigstore.bundle(signed), "https://sigstore.dev/cosign/sign/v1"
    )
    proc = verify(ref, sigstore, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["signature"].startswith("bundle sha256:")


def test_explicit_identity_flags(registry, client, cosign_binary, sigstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ref, digest = fresh(registry, client, tag="latest")
    claims = Claims(
        "https://github.com/acme/app/.github/workflows/ci.yaml@refs/heads/main",
        github={"repository": "acme/app", "trigger": "push"},
    )
    sign_legacy(sigstore, cosign_binary, ref, digest, tmp_path, claims)
    ok = verify(
        ref,
        sigstore,
        "--certificate-identity-regexp",
        "^https://github.com/acme/",
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
        "--certificate-github-workflow-repository",
        "acme/app",
        "--certificate-github-workflow-trigger",
        "push",
    )
    assert ok.returncode == 0, ok.stderr
    bad = verify(
        ref,
        sigstore,
        "--certificate-identity-regexp",
        "^https://github.com/acme/",
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
        "--certificate-github-workflow-trigger",
        "release",
    )
    assert_failed(bad, "github workflow trigger 'push' does not match the expected 'release'")
    missing = verify(ref, sigstore, "--certificate-identity-regexp", "acme")
    assert missing.returncode == 2 and "--certificate-oidc-issuer" in missing.stderr


def test_wrong_identity(registry, client, cosign_binary, sigstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ref, digest = fresh(registry, client)
    # signed by the release workflow, but for another tag
    sign_legacy(sigstore, cosign_binary, ref, digest, tmp_path, Claims.cilium_release("v1.18.4"))
    assert_failed(verify(ref, sigstore), "certificate identity", "refs/tags/v1.18.5")


def test_wrong_issuer(registry, client, cosign_binary, sigstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ref, digest = fresh(registry, client)
    claims = Claims.cilium_release(issuer="https://accounts.google.com")
    sign_legacy(sigstore, cosign_binary, ref, digest, tmp_path, claims)
    assert_failed(verify(ref, sigstore), "certificate OIDC issuer 'https://accounts.google.com'")


def test_wrong_workflow_name(registry, client, cosign_binary, sigstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ref, digest = fresh(registry, client)
    claims = Claims.cilium_release(name="CI Build")
    sign_legacy(sigstore, cosign_binary, ref, digest, tmp_path, claims)
    assert_failed(verify(ref, sigstore), "github workflow name 'CI Build'")


def test_unknown_ca(registry, client, cosign_binary, sigstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ref, digest = fresh(registry, client)
    rogue = make_ca("rogue fulcio", sigstore.now)
    sign_legacy(sigstore, cosign_binary, ref, digest, tmp_path, ca=rogue)
    assert_failed(verify(ref, sigstore), "does not chain to a certificate authority")


def test_sct_from_unknown_log(registry, client, cosign_binary, sigstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ec

    ref, digest = fresh(registry, client)
    sign_legacy(
        sigstore,
        cosign_binary,
        ref,
        digest,
        tmp_path,
        ct_key=ec.generate_private_key(ec.SECP256R1()),
    )
    assert_failed(verify(ref, sigstore), "SCT from unknown CT log")


def test_tampered_log_entry_time(registry, client, cosign_binary, sigstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ref, digest = fresh(registry, client)
    image = f"{ref.name}@{digest}"
    signed = sigstore.sign_payload(cosign_payload(cosign_binary, image), Claims.cilium_release())
    signed.entry["integratedTime"] = str(int(signed.entry["integratedTime"]) + 60)
    attach_legacy(cosign_binary, image, signed, tmp_path)
    assert_failed(verify(ref, sigstore), "signed entry timestamp does not match")


def test_log_entry_of_another_signature(  # type: ignore[no-untyped-def]
    registry, client, cosign_binary, sigstore, tmp_path
) -> None:
    ref, digest = fresh(registry, client)
    image = f"{ref.name}@{digest}"
    payload = cosign_payload(cosign_binary, image)
    signed = sigstore.sign_payload(payload, Claims.cilium_release())
    other = sigstore.sign_payload(payload + b" ", Claims.cilium_release())
    signed.entry = other.entry  # a genuine log entry, but for another signature
    attach_legacy(cosign_binary, image, signed, tmp_path)
    assert_failed(verify(ref, sigstore), "records another signature, key or payload")


def test_bundle_with_broken_inclusion_proof(registry, client, sigstore) -> None:  # type: ignore[no-untyped-def]
    import base64

    ref, digest = fresh(registry, client)
    signed = sigstore.sign_dsse(statement(digest), Claims.cilium_release())
    proof = signed.entry["inclusionProof"]
    proof["hashes"][0] = base64.b64encode(b"\x00" * 32).decode()
    attach_bundle(
        client, ref, digest, TestSigstore.bundle(signed), "https://sigstore.dev/cosign/sign/v1"
    )
    assert_failed(verify(ref, sigstore), "inclusion proof does not lead to its root hash")


def test_bundle_for_another_digest(registry, client, sigstore) -> None:  # type: ignore[no-untyped-def]
    ref, digest = fresh(registry, client)
    other = "sha256:" + "ab" * 32
    signed = sigstore.sign_dsse(statement(other), Claims.cilium_release())
    attach_bundle(
        client, ref, digest, TestSigstore.bundle(signed), "https://sigstore.dev/cosign/sign/v1"
    )
    assert_failed(verify(ref, sigstore), f"subject is another digest ({other})")


def test_other_trust_root_rejects(registry, client, cosign_binary, sigstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ref, digest = fresh(registry, client)
    sign_legacy(sigstore, cosign_binary, ref, digest, tmp_path)
    other = TestSigstore(tmp_path / "other")
    assert_failed(verify(ref, other), "does not list")
