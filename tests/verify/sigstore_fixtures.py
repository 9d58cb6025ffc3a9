"""An offline Sigstore for tests: a Fulcio-like CA, a CT log and a Rekor-like log, each with
its own key, published as a real ``trusted_root.json``.

It issues what the public-good instance would: a short-lived code-signing certificate with
the GitHub Actions OIDC extensions and an embedded SCT (RFC 6962 precertificate entry)
signed by the CT key; a transparency-log entry (hashedrekord or dsse body) with a signed
entry timestamp and, for bundles, a Merkle inclusion proof and a signed checkpoint. Nothing
here is trusted by the verifier except through the trust root file, exactly as in
production.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ciliumctl.verify.signatures import pae

FULCIO = "1.3.6.1.4.1.57264.1."
SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
GITHUB = "https://token.actions.githubusercontent.com"


def _spki(key: Any) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Any) -> bytes:
    return hashlib.sha256(_spki(key)).digest()


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def _octet_string(raw: bytes) -> bytes:
    n = len(raw)
    if n < 128:
        return bytes([0x04, n]) + raw
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x04, 0x80 | len(size)]) + size + raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(name: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ciliumctl tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA384())
    )
    return key, cert


@dataclass
class Claims:
    identity: str
    issuer: str = GITHUB
    github: dict[str, str] = field(default_factory=dict)

    @classmethod
    def cilium_release(cls, tag: str = "v1.18.5", **changes: str) -> Claims:
        github = {
            "trigger": "push",
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "name": "Image Release Build",
            "repository": "cilium/cilium",
            "ref": f"refs/tags/{tag}",
        }
        github.update({k: v for k, v in changes.items() if k in github})
        identity = changes.get(
            "identity",
            f"https://github.com/cilium/cilium/.github/workflows/build-images-releases.yaml@refs/tags/{tag}",
        )
        return cls(identity, changes.get("issuer", GITHUB), github)


@dataclass
class Signed:
    """A keyless signature over ``payload`` with its verification material."""

    payload: bytes
    signature: bytes
    leaf: x509.Certificate
    chain: list[x509.Certificate]
    entry: dict[str, Any]  # transparency-log entry (bundle JSON form)


class TestSigstore:
    """A private Sigstore deployment: CA, CT log, transparency log and their trust root."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.ca_key, self.ca = make_ca("test fulcio", self.now)
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.log_key = ec.generate_private_key(ec.SECP256R1())
        self.log_index = 1000
        self.trust_root = directory / "trusted_root.json"
        self.trust_root.write_text(json.dumps(self.trusted_root()))

    def trusted_root(self) -> dict[str, Any]:
        start = (self.now - dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")

        def log(key: Any, url: str) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_spki(key.public_key())),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": start},
                },
                "logId": {"keyId": _b64(key_id(key.public_key()))},
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(self.log_key, "https://rekor.test.invalid")],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "ciliumctl tests", "commonName": "test fulcio"},
                    "uri": "https://fulcio.test.invalid",
                    "certChain": {
                        "certificates": [
                            {"rawBytes": _b64(self.ca.public_bytes(serialization.Encoding.DER))}
                        ]
                    },
                    "validFor": {"start": start},
                }
            ],
            "ctlogs": [log(self.ct_key, "https://ctfe.test.invalid")],
            "timestampAuthorities": [],
        }

    # -- Fulcio

    def issue(
        self,
        claims: Claims,
        *,
        ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
        ct_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A 10-minute code-signing certificate for ``claims`` with an embedded SCT."""
        ca_key, ca_cert = ca or (self.ca_key, self.ca)
        ct = ct_key or self.ct_key
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - dt.timedelta(minutes=1))
            .not_valid_after(self.now + dt.timedelta(minutes=9))
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
            )
            .add_extension(x509.ExtendedKeyUsage([x509.OID_CODE_SIGNING]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                False,
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(claims.identity)]),
                True,
            )
            .add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier(FULCIO + "1"), claims.issuer.encode()
                ),
                False,
            )
        )
        for n, name in ((2, "trigger"), (3, "sha"), (4, "name"), (5, "repository"), (6, "ref")):
            if name in claims.github:
                builder = builder.add_extension(
                    x509.UnrecognizedExtension(
                        x509.ObjectIdentifier(FULCIO + str(n)), claims.github[name].encode()
                    ),
                    False,
                )
        builder = builder.add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(FULCIO + "8"), _der_utf8(claims.issuer)
            ),
            False,
        )
        precert = builder.sign(ca_key, hashes.SHA384())
        tbs = precert.tbs_certificate_bytes
        millis = int(self.now.timestamp() * 1000)
        issuer_key_hash = hashlib.sha256(_spki(ca_cert.public_key())).digest()
        signed = (
            struct.pack(">BBQH", 0, 0, millis, 1)
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack(">H", 0)
        )
        sig = ct.sign(signed, ec.ECDSA(hashes.SHA256()))
        sct = (
            bytes([0])
            + key_id(ct.public_key())
            + struct.pack(">QH", millis, 0)
            + bytes([4, 3])
            + struct.pack(">H", len(sig))
            + sig
        )
        sct_list = struct.pack(">H", len(sct) + 2) + struct.pack(">H", len(sct)) + sct
        cert = builder.add_extension(
            x509.UnrecognizedExtension(SCT_OID, _octet_string(sct_list)), False
        ).sign(ca_key, hashes.SHA384())
        assert cert.tbs_precertificate_bytes == tbs
        return key, cert

    # -- Rekor

    def log_entry(
        self, body: dict[str, Any], *, proof: bool, integrated_time: int | None = None
    ) -> dict[str, Any]:
        """A transparency-log entry (bundle JSON form) for ``body``, with its SET and,
        when ``proof``, an inclusion proof in a 7-leaf tree with a signed checkpoint."""
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        self.log_index += 1
        when = integrated_time or int(self.now.timestamp())
        log_id = key_id(self.log_key.public_key())
        set_payload = json.dumps(
            {
                "body": _b64(canonical),
                "integratedTime": when,
                "logID": log_id.hex(),
                "logIndex": self.log_index,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        entry: dict[str, Any] = {
            "logIndex": str(self.log_index),
            "logId": {"keyId": _b64(log_id)},
            "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
            "integratedTime": str(when),
            "inclusionPromise": {
                "signedEntryTimestamp": _b64(
                    self.log_key.sign(set_payload, ec.ECDSA(hashes.SHA256()))
                )
            },
            "canonicalizedBody": _b64(canonical),
        }
        if proof:
            entry["inclusionProof"] = self._inclusion(canonical)
        return entry

    def _inclusion(self, canonical: bytes, index: int = 5, size: int = 7) -> dict[str, Any]:
        leaves = [hashlib.sha256(b"\x00" + f"other {i}".encode()).digest() for i in range(size)]
        leaves[index] = hashlib.sha256(b"\x00" + canonical).digest()

        def root(nodes: list[bytes]) -> bytes:
            if len(nodes) == 1:
                return nodes[0]
            k = 1 << ((len(nodes) - 1).bit_length() - 1)
            return hashlib.sha256(b"\x01" + root(nodes[:k]) + root(nodes[k:])).digest()

        def path(m: int, nodes: list[bytes]) -> list[bytes]:
            if len(nodes) == 1:
                return []
            k = 1 << ((len(nodes) - 1).bit_length() - 1)
            if m < k:
                return [*path(m, nodes[:k]), root(nodes[k:])]
            return [*path(m - k, nodes[k:]), root(nodes[:k])]

        root_hash = root(leaves)
        origin = "rekor.test.invalid - 1234"
        note = f"{origin}\n{size}\n{_b64(root_hash)}\n"
        sig = self.log_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        hint = key_id(self.log_key.public_key())[:4]
        checkpoint = f"{note}\n\u2014 rekor.test.invalid {_b64(hint + sig)}\n"
        return {
            "logIndex": str(index),
            "rootHash": _b64(root_hash),
            "treeSize": str(size),
            "hashes": [_b64(h) for h in path(index, leaves)],
            "checkpoint": {"envelope": checkpoint},
        }

    # -- signing

    def sign_payload(self, payload: bytes, claims: Claims, **issue: Any) -> Signed:
        """Sign a simple-signing payload and log it as a hashedrekord entry."""
        key, leaf = self.issue(claims, **issue)
        sig = key.sign(payload, ec.ECDSA(hashes.SHA256()))
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {
                    "hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}
                },
                "signature": {"content": _b64(sig), "publicKey": {"content": _b64(pem(leaf))}},
            },
        }
        ca = issue.get("ca")
        chain = [ca[1] if ca else self.ca]
        return Signed(payload, sig, leaf, chain, self.log_entry(body, proof=False))

    def sign_dsse(self, statement: dict[str, Any], claims: Claims, **issue: Any) -> Signed:
        """Sign an in-toto statement as DSSE and log it as a dsse entry with a proof."""
        key, leaf = self.issue(claims, **issue)
        payload = json.dumps(statement).encode()
        sig = key.sign(pae("application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256()))
        body = {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": "00" * 32},
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
                "signatures": [{"signature": _b64(sig), "verifier": _b64(pem(leaf))}],
            },
        }
        return Signed(payload, sig, leaf, [self.ca], self.log_entry(body, proof=True))

    @staticmethod
    def rekor_response(signed: Signed) -> dict[str, Any]:
        """The ``cosign attach signature --rekor-response`` file for a legacy signature."""
        e = signed.entry
        return {
            "base64Signature": _b64(signed.signature),
            "rekorBundle": {
                "SignedEntryTimestamp": e["inclusionPromise"]["signedEntryTimestamp"],
                "Payload": {
                    "body": e["canonicalizedBody"],
                    "integratedTime": int(e["integratedTime"]),
                    "logIndex": int(e["logIndex"]),
                    "logID": base64.b64decode(e["logId"]["keyId"]).hex(),
                },
            },
        }

    @staticmethod
    def bundle(signed: Signed) -> dict[str, Any]:
        """A Sigstore bundle v0.3 with the DSSE envelope."""
        return {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {
                    "rawBytes": _b64(signed.leaf.public_bytes(serialization.Encoding.DER))
                },
                "tlogEntries": [signed.entry],
            },
            "dsseEnvelope": {
                "payload": _b64(signed.payload),
                "payloadType": "application/vnd.in-toto+json",
                "signatures": [{"sig": _b64(signed.signature), "keyid": ""}],
            },
        }
