"""Checking one signature: key-based, or keyless against a Sigstore trust root.

Both cosign formats (legacy simple-signing layers with annotations, and Sigstore bundles)
are turned into one :class:`Evidence` and checked by one code path, in the order the
Sigstore client specification gives:

1. the transparency-log entry: its signed entry timestamp (inclusion promise) and, when
   present, its Merkle inclusion proof and signed checkpoint; this yields the signing time;
2. the certificate chains to a Fulcio CA of the trust root, valid at that time;
3. the certificate's embedded SCT is signed by a CT log of the trust root;
4. the certificate is a code-signing certificate and its identity matches the policy;
5. the signature over the payload verifies with the certificate's (or the given) key;
6. the log entry records this very signature, key and payload.

Every failure raises :class:`VerificationFailed` with the reason; nothing is skipped
silently.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ciliumctl.verify.errors import UsageError, VerificationFailed
from ciliumctl.verify.policy import CertificateClaims, IdentityPolicy, certificate_claims
from ciliumctl.verify.trust import LogKey, TrustRoot, key_id

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
    from cryptography.x509 import Certificate

SCT_OID = "1.3.6.1.4.1.11129.2.4.2"


@dataclass(frozen=True)
class InclusionProof:
    """An RFC 6962 inclusion proof with the log's signed checkpoint."""

    log_index: int
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str | None


@dataclass(frozen=True)
class TlogEntry:
    """A transparency-log (Rekor) entry as carried in a bundle or cosign annotation."""

    log_index: int
    log_id: bytes
    integrated_time: int | None
    body: bytes
    kind: str = ""
    version: str = ""
    signed_entry_timestamp: bytes | None = None
    proof: InclusionProof | None = None


@dataclass(frozen=True)
class Evidence:
    """One signature over one payload, with what is needed to check it.

    ``signed`` is what the signature covers: the payload itself for simple signing, the
    DSSE pre-authentication encoding for envelopes.
    """

    source: str
    fmt: str  # "simplesigning" or "dsse"
    payload: bytes
    signature: bytes = field(repr=False)
    payload_type: str | None = None
    certificate: bytes | None = None  # DER
    chain: tuple[bytes, ...] = ()
    tlog: TlogEntry | None = None
    rfc3161: bool = False

    @property
    def signed(self) -> bytes:
        """The bytes the signature is over."""
        if self.fmt == "dsse":
            return pae(self.payload_type or "", self.payload)
        return self.payload


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome of checking one piece of evidence."""

    source: str
    ok: bool
    mode: str  # "key" or "keyless"
    reason: str | None = None
    claims: CertificateClaims | None = None
    log_index: int | None = None
    signed_at: dt.datetime | None = None
    payload: bytes = field(default=b"", repr=False)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (ValueError, TypeError):
        raise VerificationFailed(f"{what} is not valid base64") from None


# --------------------------------------------------------------------------- keys


def load_public_key(pem: bytes, source: str) -> PublicKeyTypes:
    """A PEM public key (or certificate) for ``--key``: ECDSA, Ed25519 or RSA."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        if b"BEGIN CERTIFICATE" in pem:
            key: PublicKeyTypes = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = load_pem_public_key(pem)
    except ValueError as exc:
        raise UsageError(
            f"{source} is not a PEM public key: {exc}",
            "pass the public half (cosign.pub), not the private key",
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise UsageError(f"{source}: unsupported key type {type(key).__name__}")
    return key


def verify_raw(key: PublicKeyTypes, signature: bytes, data: bytes) -> bool:
    """Check ``signature`` over ``data`` as cosign signs: ECDSA with the curve's hash,
    Ed25519, or RSA PKCS#1 v1.5 (PSS accepted too) with SHA-256."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            algo: hashes.HashAlgorithm = {
                "secp384r1": hashes.SHA384(),
                "secp521r1": hashes.SHA512(),
            }.get(key.curve.name, hashes.SHA256())
            key.verify(signature, data, ec.ECDSA(algo))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            # cosign 2.x signs with Ed25519ph; older releases with pure Ed25519.
            from cryptography.hazmat.primitives import serialization

            from ciliumctl.verify.ed25519ph import verify_ph

            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            if verify_ph(raw, signature, data):
                return True
            key.verify(signature, data)
        elif isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                key.verify(
                    signature,
                    data,
                    padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
                    hashes.SHA256(),
                )
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _pem(key: PublicKeyTypes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --------------------------------------------------------------------------- transparency log


def _log_key(trust: TrustRoot, log_id: bytes) -> LogKey:
    key = trust.tlogs.get(log_id)
    if key is None:
        raise VerificationFailed(
            f"transparency-log entry is from log {log_id.hex()[:16]}..., which the trust root "
            f"({trust.source}) does not list"
        )
    return key


def verify_tlog_entry(entry: TlogEntry, trust: TrustRoot) -> dt.datetime | None:
    """Check the entry's signed entry timestamp and inclusion proof; return its signed time.

    Returns None when the entry carries no inclusion promise (so no signed time)."""
    log = _log_key(trust, entry.log_id)
    signed_time = None
    if entry.signed_entry_timestamp is not None:
        if entry.integrated_time is None:
            raise VerificationFailed("transparency-log entry has a promise but no time")
        canonical = json.dumps(
            {
                "body": base64.b64encode(entry.body).decode(),
                "integratedTime": entry.integrated_time,
                "logID": entry.log_id.hex(),
                "logIndex": entry.log_index,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        if not verify_raw(log.key, entry.signed_entry_timestamp, canonical):
            raise VerificationFailed(
                "the transparency log's signed entry timestamp does not match the entry "
                "(the entry or its time was altered, or another log signed it)"
            )
        signed_time = dt.datetime.fromtimestamp(entry.integrated_time, dt.UTC)
        if not log.validity.contains(signed_time):
            raise VerificationFailed(
                f"the transparency-log key was not valid at {signed_time:%Y-%m-%d %H:%M:%S}Z"
            )
    if entry.proof is not None:
        _verify_inclusion(entry, entry.proof, log)
    if signed_time is None and entry.proof is None:
        raise VerificationFailed(
            "transparency-log entry has neither an inclusion promise nor an inclusion proof"
        )
    return signed_time


def _verify_inclusion(entry: TlogEntry, proof: InclusionProof, log: LogKey) -> None:
    leaf = hashlib.sha256(b"\x00" + entry.body).digest()
    root = merkle_root_from_proof(proof.log_index, proof.tree_size, leaf, list(proof.hashes))
    if root != proof.root_hash:
        raise VerificationFailed("transparency-log inclusion proof does not lead to its root hash")
    if not proof.checkpoint:
        raise VerificationFailed("transparency-log inclusion proof has no signed checkpoint")
    note, sep, sigs = proof.checkpoint.partition("\n\n")
    lines = note.split("\n")
    if not sep or len(lines) < 3:
        raise VerificationFailed("malformed transparency-log checkpoint")
    try:
        size, root_hash = int(lines[1]), base64.b64decode(lines[2])
    except ValueError:
        raise VerificationFailed("malformed transparency-log checkpoint") from None
    if size != proof.tree_size or root_hash != proof.root_hash:
        raise VerificationFailed("transparency-log checkpoint is for another tree than the proof")
    text = (note + "\n").encode()
    for _name, sig64 in re.findall(r"\u2014 (\S+) (\S+)\n", sigs):
        raw = base64.b64decode(sig64)
        if raw[:4] == log.log_id[:4] and verify_raw(log.key, raw[4:], text):
            return
    raise VerificationFailed("transparency-log checkpoint is not signed by the log's key")


def merkle_root_from_proof(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof implies."""
    if index < 0 or index >= size:
        raise VerificationFailed(f"inclusion proof index {index} outside tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationFailed("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationFailed("inclusion proof is shorter than the tree is deep")
    return r


def check_tlog_body(entry: TlogEntry, ev: Evidence, signer_pem: bytes) -> None:
    """The log entry must record this signature, this key and this payload."""
    try:
        body = json.loads(entry.body)
        kind, spec = body["kind"], body["spec"]
    except (ValueError, KeyError, TypeError):
        raise VerificationFailed("transparency-log entry body is not a Rekor entry") from None
    payload_hash = hashlib.sha256(ev.payload).hexdigest()
    sig64 = base64.b64encode(ev.signature).decode()
    try:
        if kind == "hashedrekord":
            ok = (
                spec["data"]["hash"]["algorithm"] == "sha256"
                and spec["data"]["hash"]["value"] == payload_hash
                and spec["signature"]["content"] == sig64
                and _same_pem(spec["signature"]["publicKey"]["content"], signer_pem)
            )
        elif kind == "dsse":
            ok = spec["payloadHash"]["value"] == payload_hash and any(
                s["signature"] == sig64 and _same_pem(s["verifier"], signer_pem)
                for s in spec["signatures"]
            )
        elif kind == "intoto":
            content = spec["content"]
            sigs = content["envelope"]["signatures"]
            ok = content["payloadHash"]["value"] == payload_hash and any(
                _b64(s["sig"], "intoto signature").decode() == sig64
                and _same_pem(s["publicKey"], signer_pem)
                for s in sigs
            )
        else:
            raise VerificationFailed(f"unsupported transparency-log entry kind {kind!r}")
    except (KeyError, TypeError, UnicodeDecodeError):
        raise VerificationFailed(f"malformed {kind} transparency-log entry") from None
    if not ok:
        raise VerificationFailed(
            f"the transparency-log entry ({kind}) records another signature, key or payload"
        )


def _same_pem(b64_pem: str, signer_pem: bytes) -> bool:
    try:
        pem = base64.b64decode(b64_pem)
    except ValueError:
        return False
    return _pem_der(pem) == _pem_der(signer_pem)


def _pem_der(pem: bytes) -> bytes:
    body = b"".join(line for line in pem.strip().splitlines() if not line.startswith(b"-----"))
    try:
        return base64.b64decode(body)
    except ValueError:
        return b""


# --------------------------------------------------------------------------- certificates


def _verify_chain(
    leaf: Certificate, intermediates: list[Certificate], trust: TrustRoot, when: dt.datetime
) -> list[Certificate]:
    """Build and check the chain from ``leaf`` to a Fulcio CA valid at ``when``."""
    from cryptography import x509
    from cryptography.x509.verification import (
        Criticality,
        ExtensionPolicy,
        PolicyBuilder,
        Store,
        VerificationError,
    )

    errors: list[str] = []
    for ca in trust.cas:
        if not ca.validity.contains(when):
            continue
        ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
            x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
        )
        ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
        )
        verifier = (
            PolicyBuilder()
            .store(Store(list(ca.chain)))
            .time(when)
            .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
            .build_client_verifier()
        )
        try:
            return list(verifier.verify(leaf, intermediates).chain)
        except (VerificationError, x509.UnsupportedGeneralNameType) as exc:
            errors.append(str(exc))
    detail = f": {errors[0]}" if errors else ""
    raise VerificationFailed(
        f"the signing certificate (issuer {leaf.issuer.rfc4514_string()}) does not chain to a "
        f"certificate authority of the trust root ({trust.source}) valid at "
        f"{when:%Y-%m-%d %H:%M:%S}Z{detail}",
        "pass --trust-root for a private Sigstore deployment",
    )


def verify_sct(leaf: Certificate, issuer: Certificate, trust: TrustRoot) -> None:
    """Check an embedded SCT (RFC 6962 precertificate entry) against the trust root's CT logs."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        scts = leaf.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
    except x509.ExtensionNotFound:
        raise VerificationFailed("the signing certificate has no embedded SCT") from None
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    tbs = leaf.tbs_precertificate_bytes
    reasons = []
    for sct in scts:
        log = trust.ctlogs.get(sct.log_id)
        if log is None:
            reasons.append(f"SCT from unknown CT log {sct.log_id.hex()[:16]}...")
            continue
        millis = int(sct.timestamp.replace(tzinfo=dt.UTC).timestamp() * 1000)
        ext = sct.extension_bytes
        signed = (
            struct.pack(">BBQH", 0, 0, millis, 1)
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack(">H", len(ext))
            + ext
        )
        if verify_raw(log.key, sct.signature, signed):
            return
        reasons.append("SCT signature does not match the certificate")
    raise VerificationFailed(
        "the signing certificate's SCT is not from a trusted CT log: " + "; ".join(reasons)
    )


def _code_signing(cert: Certificate) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise VerificationFailed("the signing certificate lacks key usage extensions") from None
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise VerificationFailed("the signing certificate is not a code-signing certificate")


# --------------------------------------------------------------------------- entry points


def check_keyless(ev: Evidence, trust: TrustRoot, policy: IdentityPolicy) -> SignatureCheck:
    """Keyless: certificate, SCT, transparency log, identity and signature all verify."""
    from cryptography import x509

    if ev.certificate is None:
        raise VerificationFailed(
            "the signature carries no certificate (it was made with a key)",
            "pass --key with the signer's public key",
        )
    leaf = x509.load_der_x509_certificate(ev.certificate)
    if ev.tlog is None:
        raise VerificationFailed(
            "the signature has no transparency-log entry, which keyless signatures need"
        )
    when = verify_tlog_entry(ev.tlog, trust)
    if when is None:
        raise VerificationFailed(
            "no signed time for the signature: the log entry has no inclusion promise"
            + (" (RFC 3161 timestamps are not supported)" if ev.rfc3161 else "")
        )
    intermediates = [x509.load_der_x509_certificate(c) for c in ev.chain]
    chain = _verify_chain(leaf, intermediates, trust, when)
    verify_sct(leaf, chain[1], trust)
    _code_signing(leaf)
    claims = certificate_claims(leaf)
    policy.check(claims)
    if not verify_raw(leaf.public_key(), ev.signature, ev.signed):
        raise VerificationFailed("the signature does not match the payload and certificate")
    from cryptography.hazmat.primitives import serialization

    check_tlog_body(ev.tlog, ev, leaf.public_bytes(serialization.Encoding.PEM))
    return SignatureCheck(
        ev.source,
        True,
        "keyless",
        claims=claims,
        log_index=ev.tlog.log_index,
        signed_at=when,
        payload=ev.payload,
    )


def check_with_key(ev: Evidence, key: PublicKeyTypes, trust: TrustRoot | None) -> SignatureCheck:
    """Key-based: the signature verifies with ``key``; a log entry, when present and a trust
    root is at hand, must verify too."""
    if not verify_raw(key, ev.signature, ev.signed):
        raise VerificationFailed("the signature does not match the payload and the given key")
    when = None
    index = None
    if ev.tlog is not None and trust is not None and trust.tlogs:
        when = verify_tlog_entry(ev.tlog, trust)
        check_tlog_body(ev.tlog, ev, _pem(key))
        index = ev.tlog.log_index
    return SignatureCheck(
        ev.source, True, "key", log_index=index, signed_at=when, payload=ev.payload
    )


def key_fingerprint(key: PublicKeyTypes) -> str:
    """Short SHA-256 of a key, for output."""
    return "SHA256:" + key_id(key).hex()[:16]
