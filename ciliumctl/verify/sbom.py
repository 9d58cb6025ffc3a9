"""SBOM attestations: find, check and summarise the SPDX or CycloneDX document of an image.

Cilium attaches its syft-generated SBOM as an in-toto attestation (a signed DSSE envelope)
to every image. An attestation counts only when its signature and signer pass, its
subject is the image's digest and its predicate type is the one asked for.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ciliumctl.verify import oci
from ciliumctl.verify.cosign import (
    Verifier,
    check_subject,
    find_evidence,
    parse_statement,
    verify_evidence,
)
from ciliumctl.verify.errors import UsageError, VerificationFailed
from ciliumctl.verify.signatures import Evidence, SignatureCheck

PREDICATE_TYPES = {
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
}


@dataclass(frozen=True)
class Package:
    """One package listed by an SBOM."""

    name: str
    version: str
    type: str
    licenses: tuple[str, ...] = ()


@dataclass(frozen=True)
class SbomSummary:
    """What an SBOM contains, in numbers."""

    format: str
    packages: list[Package] = field(default_factory=list)

    @property
    def licenses(self) -> Counter[str]:
        """Packages per license."""
        return Counter(lic for p in self.packages for lic in p.licenses or ("unknown",))

    @property
    def types(self) -> Counter[str]:
        """Packages per package type (golang, deb, ...)."""
        return Counter(p.type for p in self.packages)

    def as_dict(self, with_packages: bool = False) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {
            "format": self.format,
            "packageCount": len(self.packages),
            "licenses": dict(self.licenses.most_common()),
            "packageTypes": dict(self.types.most_common()),
        }
        if with_packages:
            out["packages"] = [
                {"name": p.name, "version": p.version, "type": p.type, "licenses": list(p.licenses)}
                for p in self.packages
            ]
        return out


@dataclass(frozen=True)
class SbomAttestation:
    """A checked SBOM attestation of one image."""

    image: str
    digest: str
    predicate_type: str
    document: dict[str, Any]
    check: SignatureCheck
    summary: SbomSummary


def predicate_type_for(name: str) -> str:
    """``spdxjson``/``cyclonedx`` (or a full predicate type URI) to the URI."""
    if name in PREDICATE_TYPES:
        return PREDICATE_TYPES[name]
    if "://" in name:
        return name
    raise UsageError(
        f"unknown --predicate-type {name!r}", f"choose from {', '.join(PREDICATE_TYPES)}"
    )


def _document(statement: dict[str, Any]) -> dict[str, Any]:
    predicate = statement.get("predicate")
    # cosign before 2.0 wrapped some predicates as {"Data": "<document>", "Timestamp": ...}
    if isinstance(predicate, dict) and isinstance(predicate.get("Data"), str):
        try:
            predicate = json.loads(predicate["Data"])
        except ValueError:
            raise VerificationFailed("the attestation's predicate is not a JSON document") from None
    if not isinstance(predicate, dict):
        raise VerificationFailed("the attestation has no SBOM document as its predicate")
    return predicate


def fetch_sbom(
    client: oci.RegistryClient, image: str, verifier: Verifier, predicate_type: str
) -> SbomAttestation:
    """The first attestation of ``image`` that passes every check; raises with every
    attestation's reason when none does."""
    ref = oci.Reference.parse(image)
    digest = client.resolve(ref)
    found = find_evidence(client, ref, digest, attestations=True)

    def payload_check(ev: Evidence) -> None:
        statement = parse_statement(ev)
        got = statement.get("predicateType")
        if got != predicate_type:
            raise VerificationFailed(
                f"predicate type is {got!r}, not the expected {predicate_type!r}"
            )
        check_subject(statement, digest)

    checks = verify_evidence(found, verifier, payload_check)
    for ev, check in zip(found.evidence, checks[len(found.broken) :], strict=True):
        if check.ok:
            document = _document(parse_statement(ev))
            return SbomAttestation(
                image, digest, predicate_type, document, check, summarize(document)
            )
    if not checks:
        raise VerificationFailed(
            f"no attestations found for {ref.name}@{digest}",
            "the image has no SBOM attached (`cosign attest`), or it is in another repository",
        )
    reasons = "; ".join(f"{c.source}: {c.reason}" for c in checks)
    raise VerificationFailed(f"no {predicate_type} attestation of {image} passed: {reasons}")


def _purl_type(purl: str) -> str | None:
    if purl.startswith("pkg:"):
        return purl[4:].split("/", 1)[0].split("@", 1)[0] or None
    return None


def summarize(document: dict[str, Any]) -> SbomSummary:
    """Packages, licenses and package types of an SPDX (JSON) or CycloneDX document."""
    if "spdxVersion" in document:
        return SbomSummary("spdx", [_spdx_package(p) for p in document.get("packages") or []])
    if document.get("bomFormat") == "CycloneDX" or "components" in document:
        return SbomSummary(
            "cyclonedx", [_cdx_package(c) for c in _cdx_components(document.get("components"))]
        )
    raise VerificationFailed("the attested document is neither SPDX JSON nor CycloneDX JSON")


def _spdx_package(p: dict[str, Any]) -> Package:
    purls = [
        str(r.get("referenceLocator", ""))
        for r in p.get("externalRefs") or []
        if r.get("referenceType") == "purl"
    ]
    ptype = next((t for t in map(_purl_type, purls) if t), None)
    ptype = ptype or str(p.get("primaryPackagePurpose") or "unknown").lower()
    licenses = tuple(
        str(v)
        for v in (p.get("licenseConcluded"), p.get("licenseDeclared"))
        if v and v not in ("NOASSERTION", "NONE")
    )
    return Package(
        str(p.get("name", "")), str(p.get("versionInfo", "")), ptype, tuple(dict.fromkeys(licenses))
    )


def _cdx_components(components: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c in components or []:
        if isinstance(c, dict):
            out.append(c)
            out += _cdx_components(c.get("components"))
    return out


def _cdx_package(c: dict[str, Any]) -> Package:
    licenses: list[str] = []
    for entry in c.get("licenses") or []:
        lic = entry.get("license") or {}
        value = lic.get("id") or lic.get("name") or entry.get("expression")
        if value:
            licenses.append(str(value))
    ptype = _purl_type(str(c.get("purl", ""))) or str(c.get("type") or "unknown")
    return Package(str(c.get("name", "")), str(c.get("version", "")), ptype, tuple(licenses))
