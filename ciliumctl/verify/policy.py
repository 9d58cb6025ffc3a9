"""Identity policies for keyless signatures, with cosign's flags and Cilium's defaults.

A Fulcio certificate names who signed (the SAN: a workflow URI or an e-mail) and the OIDC
issuer that vouched for it; GitHub Actions certificates add the workflow's repository,
name, ref, trigger and commit as extensions. A policy says which values to accept.
Regular expressions match anywhere in the value, as cosign's (Go ``MatchString``) do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from ciliumctl.verify.errors import UsageError, VerificationFailed

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
CILIUM_REPOSITORY = "cilium/cilium"
CILIUM_RELEASE_WORKFLOW = "Image Release Build"
CILIUM_RELEASE_IDENTITY = (
    "https://github.com/cilium/cilium/.github/workflows/build-images-releases.yaml@refs/tags/{tag}"
)
CILIUM_WORKFLOWS_REGEXP = "https://github.com/cilium/cilium/.github/workflows"

_FULCIO = "1.3.6.1.4.1.57264.1."
#: Fulcio certificate extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md)
OID_ISSUER_V1 = _FULCIO + "1"
OID_ISSUER_V2 = _FULCIO + "8"
OID_GITHUB_TRIGGER = _FULCIO + "2"
OID_GITHUB_SHA = _FULCIO + "3"
OID_GITHUB_NAME = _FULCIO + "4"
OID_GITHUB_REPOSITORY = _FULCIO + "5"
OID_GITHUB_REF = _FULCIO + "6"
OID_OTHERNAME_SAN = _FULCIO + "7"
OID_SOURCE_REPOSITORY_DIGEST = _FULCIO + "13"
OID_SOURCE_REPOSITORY_REF = _FULCIO + "14"
OID_BUILD_TRIGGER = _FULCIO + "20"


@dataclass(frozen=True)
class CertificateClaims:
    """What a signing certificate says about its signer."""

    identity: str
    issuer: str | None
    github_workflow_trigger: str | None = None
    github_workflow_sha: str | None = None
    github_workflow_name: str | None = None
    github_workflow_repository: str | None = None
    github_workflow_ref: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The non-empty claims, for output."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name))}


def _ext_value(cert: Certificate, oid: str, der_string: bool) -> str | None:
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid))
    except x509.ExtensionNotFound:
        return None
    raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    if der_string:
        raw = _der_string(raw)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def _der_string(raw: bytes) -> bytes:
    """The contents of a DER UTF8String/IA5String (Fulcio's v2 extensions)."""
    if len(raw) < 2 or raw[0] not in (0x0C, 0x16, 0x13):
        return b""
    length, offset = raw[1], 2
    if length & 0x80:
        n = length & 0x7F
        length, offset = int.from_bytes(raw[2 : 2 + n], "big"), 2 + n
    return raw[offset : offset + length]


def certificate_claims(cert: Certificate) -> CertificateClaims:
    """Read identity, issuer and GitHub workflow claims from a Fulcio certificate."""
    from cryptography import x509

    identity = ""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        values = [
            *san.get_values_for_type(x509.UniformResourceIdentifier),
            *san.get_values_for_type(x509.RFC822Name),
        ]
        for other in san.get_values_for_type(x509.OtherName):
            if other.type_id.dotted_string == OID_OTHERNAME_SAN:
                values.append(_der_string(other.value).decode(errors="replace"))
        identity = values[0] if values else ""
    except x509.ExtensionNotFound:
        pass
    issuer = _ext_value(cert, OID_ISSUER_V2, True) or _ext_value(cert, OID_ISSUER_V1, False)
    return CertificateClaims(
        identity=identity,
        issuer=issuer,
        github_workflow_trigger=_ext_value(cert, OID_GITHUB_TRIGGER, False)
        or _ext_value(cert, OID_BUILD_TRIGGER, True),
        github_workflow_sha=_ext_value(cert, OID_GITHUB_SHA, False)
        or _ext_value(cert, OID_SOURCE_REPOSITORY_DIGEST, True),
        github_workflow_name=_ext_value(cert, OID_GITHUB_NAME, False),
        github_workflow_repository=_ext_value(cert, OID_GITHUB_REPOSITORY, False),
        github_workflow_ref=_ext_value(cert, OID_GITHUB_REF, False)
        or _ext_value(cert, OID_SOURCE_REPOSITORY_REF, True),
    )


@dataclass(frozen=True)
class IdentityPolicy:
    """Which keyless signers to accept; every set field must match (cosign's semantics)."""

    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None
    github_workflow_trigger: str | None = None
    github_workflow_sha: str | None = None
    github_workflow_name: str | None = None
    github_workflow_repository: str | None = None
    github_workflow_ref: str | None = None

    def __post_init__(self) -> None:
        for name in ("identity_regexp", "issuer_regexp"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    flag = "--certificate-" + name.replace("_regexp", "-regexp")
                    flag = flag.replace("issuer-regexp", "oidc-issuer-regexp")
                    raise UsageError(f"invalid {flag} {pattern!r}: {exc}") from None

    def require_complete(self) -> None:
        """Keyless verification needs an identity and an issuer, as cosign insists."""
        if self.identity is None and self.identity_regexp is None:
            raise UsageError(
                "keyless verification needs --certificate-identity or "
                "--certificate-identity-regexp",
                "or pass --key for a key-based signature",
            )
        if self.issuer is None and self.issuer_regexp is None:
            raise UsageError(
                "keyless verification needs --certificate-oidc-issuer or "
                "--certificate-oidc-issuer-regexp"
            )

    def check(self, claims: CertificateClaims) -> None:
        """Raise :class:`VerificationFailed` naming the first claim that does not match."""
        self._exact("identity", self.identity, claims.identity)
        self._regexp("identity", self.identity_regexp, claims.identity)
        self._exact("OIDC issuer", self.issuer, claims.issuer)
        self._regexp("OIDC issuer", self.issuer_regexp, claims.issuer)
        for name in (
            "github_workflow_trigger",
            "github_workflow_sha",
            "github_workflow_name",
            "github_workflow_repository",
            "github_workflow_ref",
        ):
            self._exact(name.replace("_", " "), getattr(self, name), getattr(claims, name))

    @staticmethod
    def _exact(what: str, want: str | None, got: str | None) -> None:
        if want is not None and want != got:
            raise VerificationFailed(
                f"certificate {what} {got!r} does not match the expected {want!r}"
            )

    @staticmethod
    def _regexp(what: str, pattern: str | None, got: str | None) -> None:
        if pattern is not None and (got is None or re.search(pattern, got) is None):
            raise VerificationFailed(
                f"certificate {what} {got!r} does not match the expected pattern {pattern!r}"
            )

    def describe(self) -> dict[str, str]:
        """The constraints that are set, for output."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name))}


def cilium_release_policy(tag: str) -> IdentityPolicy:
    """The identity Cilium's release workflow signs images ``tag`` with (seed docs)."""
    return IdentityPolicy(
        identity=CILIUM_RELEASE_IDENTITY.format(tag=tag),
        issuer=GITHUB_ISSUER,
        github_workflow_repository=CILIUM_REPOSITORY,
        github_workflow_name=CILIUM_RELEASE_WORKFLOW,
        github_workflow_ref=f"refs/tags/{tag}",
    )


def cilium_sbom_policy() -> IdentityPolicy:
    """Any workflow of the Cilium repository, as the SBOM docs verify attestations."""
    return IdentityPolicy(identity_regexp=CILIUM_WORKFLOWS_REGEXP, issuer=GITHUB_ISSUER)
