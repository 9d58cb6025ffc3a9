"""The dev cluster's images signed with cosign and given a syft SPDX SBOM attestation, checked
by the project's own `cilium verify image --key` and `cilium sbom verify` on a real registry;
unsigned and re-tagged images fail closed."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from ciliumctl.devcluster import images, runtime_images, signing
from ciliumctl.devcluster.images import ImageBuildError
from ciliumctl.verify import oci
from tests.verify.conftest import cilium
from tests.verify.registry import Registry, push_image


@dataclass(frozen=True)
class SignedImage:
    reference: str  # host/repo:tag@sha256:...
    state: Path
    result: signing.Signed

    @property
    def tagged(self) -> str:
        return self.reference.split("@")[0]

    @property
    def digest(self) -> str:
        return self.reference.split("@")[1]


@pytest.fixture(scope="module")
def signed_operator(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> SignedImage:
    """The operator image (the last build when cached: signing does not depend on whether
    it is current), pushed, signed and attested with a fresh dev-cluster state."""
    runtime_images.register()
    built = images.cached(runtime_images.OPERATOR) or images.build(runtime_images.OPERATOR)
    reference = images.push(built, registry.host)
    state = tmp_path_factory.mktemp("sign-state")
    return SignedImage(reference, state, signing.sign_image(reference, state, layout=built.layout))


def assert_fails_closed(proc, *reasons: str) -> None:  # type: ignore[no-untyped-def]
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    for reason in reasons:
        assert reason in out, out
    assert "verified" not in out.lower(), out


def test_signed_operator_image_verifies(signed_operator: SignedImage) -> None:
    key = str(signed_operator.result.public_key)
    proc = cilium("verify", "image", "--insecure", "--key", key, signed_operator.tagged)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "signature verified (key: key SHA256:" in proc.stdout
    assert signed_operator.digest in proc.stdout
    sbom = cilium("sbom", "verify", "--insecure", "--key", key, signed_operator.tagged)
    assert sbom.returncode == 0, sbom.stdout + sbom.stderr
    assert "SBOM attestation verified (key)" in sbom.stdout
    assert f"SBOM (spdx): {signed_operator.result.sbom_packages} packages" in sbom.stdout
    assert signed_operator.result.sbom_packages > 10  # Debian packages and the wheel's deps
    js = cilium("sbom", "verify", "--insecure", "--key", key, signed_operator.tagged, "-o", "json")
    data = json.loads(js.stdout)
    assert data["status"] == "ok" and data["digest"] == signed_operator.digest


def test_key_pair_is_kept_private_and_made_once(signed_operator: SignedImage) -> None:
    key = signing.signing_key(signed_operator.state)
    assert key.public == signed_operator.result.public_key
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(key.directory) == 0o700
    assert mode(key.private) == 0o600 and mode(key.password_file) == 0o600
    before = key.public.read_bytes()
    assert signing.signing_key(signed_operator.state).public.read_bytes() == before
    password = key.password()
    assert len(password) >= 32
    assert password not in json.dumps(signed_operator.result.to_json())


def test_unsigned_image_fails_closed(signed_operator: SignedImage, registry: Registry) -> None:
    key = str(signed_operator.result.public_key)
    ref = oci.Reference.parse(f"{registry.host}/ciliumctl/unsigned:v1")
    digest = push_image(oci.RegistryClient(insecure=True), ref)
    proc = cilium("verify", "image", "--insecure", "--key", key, str(ref))
    assert_fails_closed(proc, digest)
    assert_fails_closed(cilium("sbom", "verify", "--insecure", "--key", key, str(ref)))


def test_retagged_image_fails_closed(registry: Registry, tmp_path: Path) -> None:
    built = images.build("pause")
    reference = images.push(built, registry.host)
    done = signing.sign_image(reference, tmp_path, layout=built.layout)
    key = str(done.public_key)
    tagged = reference.split("@")[0]
    ok = cilium("verify", "image", "--insecure", "--key", key, tagged)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the same tag now names another manifest: its digest carries no signature
    other = push_image(oci.RegistryClient(insecure=True), oci.Reference.parse(tagged))
    assert other != built.digest
    assert_fails_closed(cilium("verify", "image", "--insecure", "--key", key, tagged), other)
    assert_fails_closed(cilium("sbom", "verify", "--insecure", "--key", key, tagged))
    images.push(built, registry.host)  # the tag back to the signed image for other tests


def test_push_sign_command_signs_every_repository(registry: Registry, tmp_path: Path) -> None:
    proc = cilium(
        "dev-cluster", "images", "push", "pause", "--registry", registry.host,
        "--sign", "--state-dir", str(tmp_path / "state"), "-o", "json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (pushed,) = json.loads(proc.stdout)
    signed = pushed["signed"]
    assert signed["publicKey"] == str(tmp_path / "state" / "signing" / "cosign.pub")
    assert signed["sbomType"] == "spdxjson"
    assert pushed["aliases"], pushed
    digest = pushed["reference"].split("@")[1]
    repos = [pushed["reference"].split("@")[0]]
    for alias in pushed["aliases"]:
        upstream = oci.Reference.parse(alias)
        repos.append(f"{registry.host}/{upstream.repository}:{upstream.tag}")
    for tagged in repos:
        out = cilium("verify", "image", "--insecure", "--key", signed["publicKey"], tagged)
        assert out.returncode == 0, out.stdout + out.stderr
        assert digest in out.stdout
        sbom = cilium("sbom", "verify", "--insecure", "--key", signed["publicKey"], tagged)
        assert sbom.returncode == 0, sbom.stdout + sbom.stderr


def test_unpinned_reference_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="not pinned by digest"):
        signing.sign_image("127.0.0.1:5000/ciliumctl/pause:3.10", tmp_path)
    assert not (tmp_path / "signing").exists()
