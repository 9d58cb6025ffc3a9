"""Finding and checking cosign signatures and attestations of an image in its registry.

Two storage formats exist and both are read:

* legacy: a manifest tagged ``sha256-<hex>.sig`` (signatures) or ``.att`` (attestations)
  in the image's repository, one layer per signature, the certificate, chain and Rekor
  bundle in the layer's annotations;
* Sigstore bundles attached as OCI referrers of the image (``cosign --new-bundle-format``),
  found with the referrers API or its tag fallback.

A signature counts only when its signed payload names the digest being checked.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ciliumctl.verify import oci
from ciliumctl.verify.errors import RegistryError, VerificationFailed
from ciliumctl.verify.signatures import (
    Evidence,
    InclusionProof,
    SignatureCheck,
    TlogEntry,
    check_keyless,
    check_with_key,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    from ciliumctl.verify.policy import IdentityPolicy
    from ciliumctl.verify.trust import TrustRoot

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_LAYER = "application/vnd.dsse.envelope.v1+json"
INTOTO = "application/vnd.in-toto+json"
ANN_SIGNATURE = "dev.cosignproject.cosign/signature"
ANN_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANN_CHAIN = "dev.sigstore.cosign/chain"
ANN_BUNDLE = "dev.sigstore.cosign/bundle"
ANN_RFC3161 = "dev.sigstore.cosign/rfc3161timestamp"
ANN_PREDICATE = "predicateType"
ANN_BUNDLE_PREDICATE = "dev.sigstore.bundle.predicateType"
BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
SIMPLESIGNING_TYPE = "cosign container image signature"
STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")

#: Attestations and signature payloads are small; SBOMs can be several MiB.
MAX_SIGNATURE_BLOB = 64 * 1024 * 1024


@dataclass(frozen=True)
class Verifier:
    """How to check signatures: with a public key, or keyless with a trust root and policy."""

    key: PublicKeyTypes | None = None
    trust: TrustRoot | None = None
    policy: IdentityPolicy | None = None

    @property
    def mode(self) -> str:
        """``key`` or ``keyless``."""
        return "key" if self.key is not None else "keyless"

    def check(self, ev: Evidence) -> SignatureCheck:
        """Verify one piece of evidence; raises :class:`VerificationFailed`."""
        if self.key is not None:
            return check_with_key(ev, self.key, self.trust)
        if self.trust is None or self.policy is None:
            raise VerificationFailed("keyless checks need a trust root and an identity policy")
        return check_keyless(ev, self.trust, self.policy)


@dataclass(frozen=True)
class ImageResult:
    """The outcome for one image: ``ok`` when at least one signature passed every check."""

    image: str
    digest: str | None
    ok: bool
    mode: str
    checks: list[SignatureCheck] = field(default_factory=list)
    error: str | None = None

    @property
    def reason(self) -> str:
        """Why it failed (the error, or each signature's reason), empty when ok."""
        if self.ok:
            return ""
        if self.error:
            return self.error
        if not self.checks:
            return "no signatures found"
        return "; ".join(f"{c.source}: {c.reason}" for c in self.checks if c.reason)

    @property
    def passed(self) -> SignatureCheck | None:
        """The first signature that passed."""
        return next((c for c in self.checks if c.ok), None)


# --------------------------------------------------------------------------- parsing


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise VerificationFailed(f"{what} is not valid base64") from None


def _pem_certs(pem: str) -> list[bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise VerificationFailed(f"malformed certificate annotation: {exc}") from None
    return [c.public_bytes(serialization.Encoding.DER) for c in certs]


def _legacy_tlog(raw: str) -> TlogEntry:
    try:
        bundle = json.loads(raw)
        payload = bundle["Payload"]
        return TlogEntry(
            log_index=int(payload["logIndex"]),
            log_id=bytes.fromhex(payload["logID"]),
            integrated_time=int(payload["integratedTime"]),
            body=_b64(payload["body"], "Rekor bundle body"),
            signed_entry_timestamp=_b64(bundle["SignedEntryTimestamp"], "Rekor SET"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed(f"malformed Rekor bundle annotation: {exc!r}") from None


def _annotated_material(ann: Mapping[str, str]) -> dict[str, Any]:
    cert = chain = None
    if ann.get(ANN_CERTIFICATE):
        cert = _pem_certs(ann[ANN_CERTIFICATE])[0]
        chain = tuple(_pem_certs(ann[ANN_CHAIN])) if ann.get(ANN_CHAIN) else ()
    return {
        "certificate": cert,
        "chain": chain or (),
        "tlog": _legacy_tlog(ann[ANN_BUNDLE]) if ann.get(ANN_BUNDLE) else None,
        "rfc3161": bool(ann.get(ANN_RFC3161)),
    }


def parse_envelope(raw: bytes, what: str) -> tuple[str, bytes, list[bytes]]:
    """A DSSE envelope's payload type, payload and signatures."""
    try:
        env = json.loads(raw)
        payload_type = str(env["payloadType"])
        payload = _b64(env["payload"], f"{what} payload")
        sigs = [_b64(s["sig"], f"{what} signature") for s in env["signatures"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed(f"{what} is not a DSSE envelope: {exc!r}") from None
    if not sigs:
        raise VerificationFailed(f"{what} has no signatures")
    return payload_type, payload, sigs


def parse_bundle(raw: bytes, source: str) -> list[Evidence]:
    """The evidence in a Sigstore bundle (v0.1 to v0.3) carrying a DSSE envelope."""
    try:
        bundle = json.loads(raw)
        media_type = str(bundle["mediaType"])
        material = bundle["verificationMaterial"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed(f"{source} is not a Sigstore bundle: {exc!r}") from None
    if not media_type.startswith(BUNDLE_MEDIA_PREFIX):
        raise VerificationFailed(f"{source}: unknown bundle media type {media_type!r}")
    cert: bytes | None = None
    chain: tuple[bytes, ...] = ()
    if material.get("certificate"):
        cert = _b64(material["certificate"]["rawBytes"], "bundle certificate")
    elif material.get("x509CertificateChain"):
        certs = [
            _b64(c["rawBytes"], "bundle certificate")
            for c in material["x509CertificateChain"].get("certificates") or []
        ]
        cert, chain = (certs[0], tuple(certs[1:])) if certs else (None, ())
    entries = material.get("tlogEntries") or []
    if len(entries) > 1:
        raise VerificationFailed(f"{source}: more than one transparency-log entry")
    tlog = _bundle_tlog(entries[0]) if entries else None
    rfc3161 = bool((material.get("timestampVerificationData") or {}).get("rfc3161Timestamps"))
    if "dsseEnvelope" not in bundle:
        raise VerificationFailed(
            f"{source}: bundle carries a message signature, not a DSSE envelope; image "
            "signatures and attestations are DSSE envelopes"
        )
    env = bundle["dsseEnvelope"]
    payload_type, payload, sigs = parse_envelope(json.dumps(env).encode(), source)
    return [
        Evidence(
            source=source,
            fmt="dsse",
            payload=payload,
            signature=sig,
            payload_type=payload_type,
            certificate=cert,
            chain=chain,
            tlog=tlog,
            rfc3161=rfc3161,
        )
        for sig in sigs
    ]


def _bundle_tlog(entry: Mapping[str, Any]) -> TlogEntry:
    try:
        proof = None
        if entry.get("inclusionProof"):
            p = entry["inclusionProof"]
            proof = InclusionProof(
                log_index=int(p["logIndex"]),
                tree_size=int(p["treeSize"]),
                root_hash=_b64(p["rootHash"], "inclusion proof root hash"),
                hashes=tuple(_b64(h, "inclusion proof hash") for h in p.get("hashes") or []),
                checkpoint=(p.get("checkpoint") or {}).get("envelope"),
            )
        promise = entry.get("inclusionPromise") or {}
        kv = entry.get("kindVersion") or {}
        return TlogEntry(
            log_index=int(entry["logIndex"]),
            log_id=_b64(entry["logId"]["keyId"], "log ID"),
            integrated_time=int(entry["integratedTime"]) if entry.get("integratedTime") else None,
            body=_b64(entry["canonicalizedBody"], "log entry body"),
            kind=str(kv.get("kind", "")),
            version=str(kv.get("version", "")),
            signed_entry_timestamp=_b64(promise["signedEntryTimestamp"], "SET")
            if promise.get("signedEntryTimestamp")
            else None,
            proof=proof,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationFailed(f"malformed transparency-log entry in bundle: {exc!r}") from None


# --------------------------------------------------------------------------- discovery


@dataclass
class Found:
    """Evidence found for a digest, and material that could not even be parsed."""

    evidence: list[Evidence] = field(default_factory=list)
    broken: list[tuple[str, str]] = field(default_factory=list)


def find_evidence(
    client: oci.RegistryClient, ref: oci.Reference, digest: str, *, attestations: bool
) -> Found:
    """Signatures (or attestations) of ``digest`` in both cosign formats."""
    found = Found()
    suffix = "att" if attestations else "sig"
    tag = ref.with_tag(f"{oci.fallback_tag(digest)}.{suffix}")
    manifest = client.manifest_or_none(tag)
    if manifest is not None:
        for i, layer in enumerate(manifest.layers):
            source = f"{suffix} layer {i}"
            want = DSSE_LAYER if attestations else SIMPLESIGNING
            if layer.media_type != want:
                continue
            try:
                blob = client.blob(ref, layer.digest, MAX_SIGNATURE_BLOB)
                material = _annotated_material(layer.annotations)
                if attestations:
                    payload_type, payload, sigs = parse_envelope(blob, source)
                    found.evidence += [
                        Evidence(source, "dsse", payload, s, payload_type, **material) for s in sigs
                    ]
                else:
                    sig = _b64(layer.annotations.get(ANN_SIGNATURE, ""), f"{source} signature")
                    if not sig:
                        raise VerificationFailed(f"{source} has no signature annotation")
                    found.evidence.append(Evidence(source, "simplesigning", blob, sig, **material))
            except (VerificationFailed, RegistryError) as exc:
                found.broken.append((source, str(exc)))
    for desc in client.referrers(ref, digest):
        # The tag fallback index written by cosign (go-containerregistry) may carry the
        # config media type as artifactType and no annotations: then read the manifest.
        listed = desc.artifact_type or oci.OCI_EMPTY
        if not (listed.startswith(BUNDLE_MEDIA_PREFIX) or listed == oci.OCI_EMPTY):
            continue
        source = f"bundle {desc.digest[:19]}"
        try:
            art = client.manifest(ref.with_digest(desc.digest))
            if not (art.artifact_type or "").startswith(BUNDLE_MEDIA_PREFIX):
                continue
            predicate = art.annotations.get(ANN_BUNDLE_PREDICATE) or desc.annotations.get(
                ANN_BUNDLE_PREDICATE
            )
            if predicate is not None and (predicate == COSIGN_SIGN_PREDICATE) == attestations:
                continue
            for layer in art.layers:
                if layer.media_type.startswith(BUNDLE_MEDIA_PREFIX):
                    blob = client.blob(ref, layer.digest, MAX_SIGNATURE_BLOB)
                    found.evidence += parse_bundle(blob, source)
        except (VerificationFailed, RegistryError) as exc:
            found.broken.append((source, str(exc)))
    return found


# --------------------------------------------------------------------------- payload checks


def check_signed_digest(ev: Evidence, digest: str) -> None:
    """The signed payload must name ``digest`` (and be an image signature)."""
    if ev.fmt == "simplesigning":
        try:
            critical = json.loads(ev.payload)["critical"]
            named = critical["image"]["docker-manifest-digest"]
            kind = critical.get("type")
        except (ValueError, KeyError, TypeError):
            raise VerificationFailed(
                "the signed payload is not a cosign simple-signing payload"
            ) from None
        if str(kind).lower() != SIMPLESIGNING_TYPE:
            raise VerificationFailed(
                f"the signed payload has type {kind!r}, not an image signature"
            )
        if named != digest:
            raise VerificationFailed(f"the signed payload names another image digest ({named})")
        return
    statement = parse_statement(ev)
    if statement.get("predicateType") != COSIGN_SIGN_PREDICATE:
        raise VerificationFailed(
            f"the signed statement has predicate type {statement.get('predicateType')!r}, "
            "not an image signature"
        )
    check_subject(statement, digest)


def parse_statement(ev: Evidence) -> dict[str, Any]:
    """The in-toto statement inside a DSSE envelope."""
    if ev.payload_type != INTOTO:
        raise VerificationFailed(f"DSSE payload type {ev.payload_type!r} is not in-toto")
    try:
        statement = json.loads(ev.payload)
        if not isinstance(statement, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise VerificationFailed(f"the in-toto statement is not valid JSON: {exc}") from None
    if statement.get("_type") not in STATEMENT_TYPES:
        raise VerificationFailed(f"unknown in-toto statement type {statement.get('_type')!r}")
    return statement


def check_subject(statement: Mapping[str, Any], digest: str) -> None:
    """One of the statement's subjects must be ``digest``."""
    algorithm = digest.partition(":")[0]
    subjects = statement.get("subject") or []
    named = [
        f"{algorithm}:{s.get('digest', {}).get(algorithm)}"
        for s in subjects
        if isinstance(s, dict) and isinstance(s.get("digest"), dict)
    ]
    if not any(n == digest for n in named):
        raise VerificationFailed(
            f"the statement's subject is another digest ({', '.join(named) or 'none'})"
        )


# --------------------------------------------------------------------------- verify


def verify_evidence(
    found: Found, verifier: Verifier, check_payload: Callable[[Evidence], None]
) -> list[SignatureCheck]:
    """Check every piece of evidence; each gets its own outcome."""
    checks: list[SignatureCheck] = [
        SignatureCheck(source, False, verifier.mode, reason=reason)
        for source, reason in found.broken
    ]
    for ev in found.evidence:
        try:
            check_payload(ev)
            checks.append(verifier.check(ev))
        except VerificationFailed as exc:
            checks.append(SignatureCheck(ev.source, False, verifier.mode, reason=str(exc)))
    return checks


def verify_image(client: oci.RegistryClient, image: str, verifier: Verifier) -> ImageResult:
    """Resolve ``image`` to its digest and check its signatures.

    Registry and verification errors become a failed result; bad references and bad usage
    raise."""
    ref = oci.Reference.parse(image)
    digest: str | None = None
    try:
        digest = client.resolve(ref)
        found = find_evidence(client, ref, digest, attestations=False)
    except (RegistryError, VerificationFailed) as exc:
        return ImageResult(image, digest, False, verifier.mode, error=str(exc))
    resolved = digest

    def payload_check(ev: Evidence) -> None:
        check_signed_digest(ev, resolved)

    checks = verify_evidence(found, verifier, payload_check)
    ok = any(c.ok for c in checks)
    error = None if checks else f"no signatures found for {ref.name}@{digest}"
    return ImageResult(image, digest, ok, verifier.mode, checks, error)
