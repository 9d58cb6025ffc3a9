"""`cilium sbom download|verify`: SBOM attestations made by the real `cosign attest` (legacy
.att layers and bundles) and by the private test Sigstore, on the real registry."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from ciliumctl.verify import oci
from ciliumctl.verify.sbom import summarize
from tests.verify.conftest import Keys, cilium
from tests.verify.registry import Registry, push_image
from tests.verify.sigstore_fixtures import Claims, TestSigstore
from tests.verify.test_verify_key import assert_failed
from tests.verify.test_verify_keyless import attach_bundle, statement

SPDX = {
    "spdxVersion": "SPDX-2.3",
    "dataLicense": "CC0-1.0",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": "quay.io/cilium/cilium",
    "documentNamespace": "https://example.invalid/spdx/cilium",
    "creationInfo": {"created": "2025-01-01T00:00:00Z", "creators": ["Tool: syft-1.0.0"]},
    "packages": [
        {
            "SPDXID": "SPDXRef-a",
            "name": "github.com/cilium/ebpf",
            "versionInfo": "v0.17.1",
            "licenseConcluded": "MIT",
            "licenseDeclared": "MIT",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": "pkg:golang/github.com/cilium/ebpf@v0.17.1",
                }
            ],
        },
        {
            "SPDXID": "SPDXRef-b",
            "name": "golang.org/x/net",
            "versionInfo": "v0.30.0",
            "licenseConcluded": "BSD-3-Clause",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": "pkg:golang/golang.org/x/net@v0.30.0",
                }
            ],
        },
        {
            "SPDXID": "SPDXRef-c",
            "name": "libc6",
            "versionInfo": "2.36-9",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "LGPL-2.1",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": "pkg:deb/debian/libc6@2.36-9",
                }
            ],
        },
    ],
}

CYCLONEDX = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "version": 1,
    "components": [
        {
            "type": "library",
            "name": "github.com/spf13/cobra",
            "version": "v1.8.1",
            "purl": "pkg:golang/github.com/spf13/cobra@v1.8.1",
            "licenses": [{"license": {"id": "Apache-2.0"}}],
        },
        {
            "type": "operating-system",
            "name": "debian",
            "version": "12",
            "components": [
                {
                    "type": "library",
                    "name": "bash",
                    "version": "5.2",
                    "purl": "pkg:deb/debian/bash@5.2",
                    "licenses": [{"expression": "GPL-3.0-or-later"}],
                }
            ],
        },
    ],
}


def image(registry: Registry, client: oci.RegistryClient) -> tuple[oci.Reference, str]:
    ref = oci.Reference.parse(f"{registry.host}/s{secrets.token_hex(3)}/cilium/cilium:v1.18.5")
    return ref, push_image(client, ref)


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("sbom")
    (directory / "spdx.json").write_text(json.dumps(SPDX))
    (directory / "cdx.json").write_text(json.dumps(CYCLONEDX))
    return {"spdxjson": directory / "spdx.json", "cyclonedx": directory / "cdx.json"}


def test_summaries() -> None:
    spdx = summarize(SPDX)
    assert spdx.format == "spdx" and len(spdx.packages) == 3
    assert spdx.types == {"golang": 2, "deb": 1}
    assert spdx.licenses == {"MIT": 1, "BSD-3-Clause": 1, "LGPL-2.1": 1}
    cdx = summarize(CYCLONEDX)
    assert cdx.format == "cyclonedx" and len(cdx.packages) == 3
    assert cdx.types == {"golang": 1, "operating-system": 1, "deb": 1}
    assert cdx.licenses["GPL-3.0-or-later"] == 1 and cdx.licenses["unknown"] == 1


def test_legacy_spdx_attestation_verify_and_download(  # type: ignore[no-untyped-def]
    registry, client, attest, keys: Keys, docs, tmp_path: Path
) -> None:
    ref, digest = image(registry, client)
    attest(f"{ref.name}@{digest}", docs["spdxjson"], "spdxjson")
    key = str(keys.public("ecdsa"))
    proc = cilium("sbom", "verify", "--insecure", "--key", key, str(ref), "--packages")
    assert proc.returncode == 0, proc.stderr
    assert "SBOM attestation verified" in proc.stdout
    assert "SBOM (spdx): 3 packages" in proc.stdout
    assert "golang 2, deb 1" in proc.stdout and "github.com/cilium/ebpf" in proc.stdout
    out = tmp_path / "sbom.spdx.json"
    dl = cilium("sbom", "download", "--insecure", "--key", key, str(ref), "-o", str(out))
    assert dl.returncode == 0, dl.stderr
    assert json.loads(out.read_text()) == SPDX
    js = cilium("sbom", "verify", "--insecure", "--key", key, str(ref), "--output", "json")
    data = json.loads(js.stdout)
    assert data["status"] == "ok" and data["digest"] == digest and data["packageCount"] == 3


def test_bundle_cyclonedx_attestation(  # type: ignore[no-untyped-def]
    registry, client, attest, keys: Keys, docs
) -> None:
    ref, digest = image(registry, client)
    attest(f"{ref.name}@{digest}", docs["cyclonedx"], "cyclonedx", bundle=True)
    proc = cilium(
        "sbom",
        "verify",
        "--insecure",
        "--key",
        str(keys.public("ecdsa")),
        str(ref),
        "--predicate-type",
        "cyclonedx",
    )
    assert proc.returncode == 0, proc.stderr
    assert "SBOM (cyclonedx): 3 packages" in proc.stdout
    wrong = cilium("sbom", "verify", "--insecure", "--key", str(keys.public("ecdsa")), str(ref))
    assert_failed(wrong, "predicate type is 'https://cyclonedx.org/bom', not the expected")


def test_wrong_predicate_type(registry, client, attest, keys: Keys, docs) -> None:  # type: ignore[no-untyped-def]
    ref, digest = image(registry, client)
    attest(f"{ref.name}@{digest}", docs["spdxjson"], "spdxjson")
    proc = cilium(
        "sbom",
        "verify",
        "--insecure",
        "--key",
        str(keys.public("ecdsa")),
        str(ref),
        "--predicate-type",
        "cyclonedx",
    )
    assert_failed(
        proc,
        "predicate type is 'https://spdx.dev/Document', not the expected "
        "'https://cyclonedx.org/bom'",
    )


def test_attestation_by_another_key(registry, client, attest, keys: Keys, docs) -> None:  # type: ignore[no-untyped-def]
    ref, digest = image(registry, client)
    attest(f"{ref.name}@{digest}", docs["spdxjson"], "spdxjson", key="other")
    proc = cilium("sbom", "download", "--insecure", "--key", str(keys.public("ecdsa")), str(ref))
    assert_failed(proc, "the signature does not match the payload and the given key")
    assert "spdxVersion" not in proc.stdout


def test_attestation_of_another_digest(registry, client, attest, keys: Keys, docs) -> None:  # type: ignore[no-untyped-def]
    ref, digest = image(registry, client)
    attest(f"{ref.name}@{digest}", docs["spdxjson"], "spdxjson")
    other = ref.with_tag("v1.18.6")
    other_digest = push_image(client, other)
    att = client.manifest(ref.with_tag(oci.fallback_tag(digest) + ".att"))
    client.push_manifest(
        ref.with_tag(oci.fallback_tag(other_digest) + ".att"), json.loads(att.raw), oci.OCI_MANIFEST
    )
    proc = cilium("sbom", "verify", "--insecure", "--key", str(keys.public("ecdsa")), str(other))
    assert_failed(proc, f"subject is another digest ({digest})")


def test_missing_attestation(registry, client, keys: Keys) -> None:  # type: ignore[no-untyped-def]
    ref, digest = image(registry, client)
    proc = cilium("sbom", "verify", "--insecure", "--key", str(keys.public("ecdsa")), str(ref))
    assert_failed(proc, f"no attestations found for {ref.name}@{digest}")


def test_keyless_sbom_default_identity(registry, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sigstore = TestSigstore(tmp_path / "sigstore")
    ref, digest = image(registry, client)
    signed = sigstore.sign_dsse(
        statement(digest, "https://spdx.dev/Document", SPDX), Claims.cilium_release()
    )
    attach_bundle(client, ref, digest, TestSigstore.bundle(signed), "https://spdx.dev/Document")
    trust = ["--trust-root", str(sigstore.trust_root)]
    proc = cilium("sbom", "verify", "--insecure", *trust, str(ref))
    assert proc.returncode == 0, proc.stderr
    assert "build-images-releases.yaml@refs/tags/v1.18.5" in proc.stdout

    ref2, digest2 = image(registry, client)
    rogue = Claims("https://github.com/evil/cilium/.github/workflows/x.yaml@refs/heads/main")
    signed2 = sigstore.sign_dsse(statement(digest2, "https://spdx.dev/Document", SPDX), rogue)
    attach_bundle(client, ref2, digest2, TestSigstore.bundle(signed2), "https://spdx.dev/Document")
    bad = cilium("sbom", "verify", "--insecure", *trust, str(ref2))
    assert_failed(
        bad,
        "does not match the expected pattern 'https://github.com/cilium/cilium/.github/workflows'",
    )
