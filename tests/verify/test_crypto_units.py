"""The verification building blocks without a registry: Ed25519ph, Merkle proofs, trust-root
loading and its fail-closed default, certificate claims and identity policies."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from ciliumctl.verify.ed25519ph import verify_ph
from ciliumctl.verify.errors import TrustRootError, UsageError, VerificationFailed
from ciliumctl.verify.policy import IdentityPolicy, certificate_claims, cilium_release_policy
from ciliumctl.verify.signatures import merkle_root_from_proof
from ciliumctl.verify.trust import TrustRoot, load_trust_root
from tests.verify.sigstore_fixtures import Claims, TestSigstore

# RFC 8032 section 7.3, test vector "abc" of Ed25519ph.
RFC8032_PUB = bytes.fromhex("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf")
RFC8032_SIG = bytes.fromhex(
    "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
    "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
)


def test_ed25519ph_rfc8032_vector() -> None:
    assert verify_ph(RFC8032_PUB, RFC8032_SIG, b"abc")
    assert not verify_ph(RFC8032_PUB, RFC8032_SIG, b"abd")
    assert not verify_ph(RFC8032_PUB, RFC8032_SIG[:63] + b"\x00", b"abc")
    assert not verify_ph(RFC8032_PUB, b"\x00" * 64, b"abc")


def _tree(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _tree(leaves[:k]) + _tree(leaves[k:])).digest()


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, leaves[:k]), _tree(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _tree(leaves[:k])]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
def test_merkle_inclusion_every_position(size: int) -> None:
    leaves = [hashlib.sha256(b"\x00" + bytes([i])).digest() for i in range(size)]
    root = _tree(leaves)
    for i in range(size):
        assert merkle_root_from_proof(i, size, leaves[i], _path(i, leaves)) == root
        if size > 1:
            other = leaves[(i + 1) % size]
            assert merkle_root_from_proof(i, size, other, _path(i, leaves)) != root
    with pytest.raises(VerificationFailed, match="outside tree"):
        merkle_root_from_proof(size, size, leaves[0], [])


def test_trust_root_round_trip_and_errors(tmp_path: Path) -> None:
    sigstore = TestSigstore(tmp_path / "s")
    root = TrustRoot.from_file(sigstore.trust_root)
    assert len(root.cas) == 1 and len(root.tlogs) == 1 and len(root.ctlogs) == 1
    with pytest.raises(TrustRootError, match="does not exist"):
        TrustRoot.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mediaType": "something/else"}))
    with pytest.raises(TrustRootError, match="not a Sigstore trusted root"):
        TrustRoot.from_file(bad)


def test_default_root_fails_closed_or_uses_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TUF_ROOT", str(tmp_path / "tuf"))
    with pytest.raises(TrustRootError) as err:
        load_trust_root()
    assert "--trust-root" in str(err.value)
    # a root that sigstore-python's TUF client cached is used offline
    cached = (
        tmp_path / "cache" / "sigstore-python" / "tuf" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    )
    cached.mkdir(parents=True)
    sigstore = TestSigstore(tmp_path / "s")
    (cached / "trusted_root.json").write_text(sigstore.trust_root.read_text())
    root = load_trust_root()
    assert root.source.startswith("Sigstore public-good (cached") and len(root.tlogs) == 1


def test_certificate_claims_and_policies(tmp_path: Path) -> None:
    sigstore = TestSigstore(tmp_path / "s")
    _key, cert = sigstore.issue(Claims.cilium_release("v1.18.5"))
    claims = certificate_claims(cert)
    assert claims.github_workflow_repository == "cilium/cilium"
    assert claims.github_workflow_ref == "refs/tags/v1.18.5"
    cilium_release_policy("v1.18.5").check(claims)
    with pytest.raises(VerificationFailed, match=re.escape("refs/tags/v1.18.6")):
        cilium_release_policy("v1.18.6").check(claims)
    # regular expressions match anywhere, as cosign's do
    IdentityPolicy(
        identity_regexp="cilium/cilium/.github", issuer_regexp="githubusercontent"
    ).check(claims)
    with pytest.raises(UsageError, match="invalid --certificate-identity-regexp"):
        IdentityPolicy(identity_regexp="(")
    with pytest.raises(UsageError, match="--certificate-oidc-issuer"):
        IdentityPolicy(identity="x").require_complete()
