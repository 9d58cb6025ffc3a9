"""Signing the dev cluster's images: a cosign signature and a syft SPDX SBOM attestation.

The key pair lives in the dev cluster's state directory (``<state>/signing/cosign.key`` and
``cosign.pub``), made once with ``cosign generate-key-pair``. Its password is
``$COSIGN_PASSWORD`` when set at generation, otherwise a generated one kept in
``<state>/signing/cosign.password`` (mode 0600); it is never printed. Signatures are made
without a transparency log (offline, as the dev cluster is), so verify them with
``cilium verify image --key <state>/signing/cosign.pub``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ciliumctl.devcluster import binaries
from ciliumctl.devcluster.images import ImageBuildError

SIGNING_DIR = "signing"
#: The SBOM attestation's cosign type (SPDX JSON, as Cilium's own SBOMs).
SBOM_TYPE = "spdxjson"
_TIMEOUT = 300


@dataclass(frozen=True)
class SigningKey:
    """The dev cluster's cosign key pair (password in the environment or the state)."""

    directory: Path

    @property
    def private(self) -> Path:
        """The encrypted private key (cosign format)."""
        return self.directory / "cosign.key"

    @property
    def public(self) -> Path:
        """The public key to give ``cilium verify image --key``."""
        return self.directory / "cosign.pub"

    @property
    def password_file(self) -> Path:
        """The generated password (0600), absent when ``$COSIGN_PASSWORD`` made the key."""
        return self.directory / "cosign.password"

    def password(self) -> str:
        """The private key's password: the stored one, else ``$COSIGN_PASSWORD``."""
        if self.password_file.exists():
            return self.password_file.read_text().strip()
        env = os.environ.get("COSIGN_PASSWORD")
        if env is None:
            raise ImageBuildError(
                f"no password for the signing key {self.private}",
                "set COSIGN_PASSWORD to the password the key was generated with",
            )
        return env


@dataclass(frozen=True)
class Signed:
    """What :func:`sign_image` did for one image."""

    reference: str
    public_key: Path
    sbom_packages: int

    def to_json(self) -> dict[str, object]:
        """JSON form (for ``images push --sign -o json``)."""
        return {
            "reference": self.reference,
            "publicKey": str(self.public_key),
            "sbomType": SBOM_TYPE,
            "sbomPackages": self.sbom_packages,
        }


def _cosign_env(password: str) -> dict[str, str]:
    """The environment cosign runs in: the key's password, no prompts, no TUF fetches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSIGN_", "SIGSTORE_"))}
    env.update(COSIGN_PASSWORD=password, COSIGN_YES="true", TUF_ROOT="/nonexistent")
    return env


def _run(argv: list[str], env: dict[str, str], what: str, cwd: Path | None = None) -> str:
    """Run a tool; a failure raises with the tail of its stderr (which holds no secret)."""
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildError(f"{what} timed out after {_TIMEOUT}s") from exc
    if proc.returncode != 0:
        raise ImageBuildError(
            f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}",
            "check that the registry is up and the image reference is pinned by digest",
        )
    return proc.stdout


def signing_key(state_dir: Path) -> SigningKey:
    """The key pair in ``state_dir``, generated with cosign on first use."""
    key = SigningKey(state_dir / SIGNING_DIR)
    if key.private.exists() and key.public.exists():
        return key
    key.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(key.directory, 0o700)
    for stale in (key.private, key.public, key.password_file):
        stale.unlink(missing_ok=True)
    password = os.environ.get("COSIGN_PASSWORD")
    if password is None:
        password = secrets.token_urlsafe(32)
        fd = os.open(key.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
    cosign = binaries.ensure(["cosign"])["cosign"]
    _run(
        [str(cosign), "generate-key-pair", "--output-key-prefix", "cosign"],
        _cosign_env(password),
        "cosign generate-key-pair",
        cwd=key.directory,
    )
    os.chmod(key.private, 0o600)
    return key


def _pinned(reference: str) -> str:
    """``reference`` without its tag when it is pinned (``host/repo:tag@sha256:...``)."""
    name, sep, digest = reference.partition("@")
    if not sep or not digest.startswith("sha256:"):
        raise ImageBuildError(
            f"image reference {reference!r} is not pinned by digest",
            "sign the reference `images push` returns (host/repo:tag@sha256:...)",
        )
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        last[-1] = last[-1].rsplit(":", 1)[0]
    return "/".join(last) + "@" + digest


def _check_layout(layout: Path, reference: str) -> None:
    """Refuse a layout that does not hold the manifest ``reference`` is pinned to."""
    import json

    digest = _pinned(reference).rsplit("@", 1)[1]
    try:
        index = json.loads((layout / "index.json").read_text())
    except (OSError, ValueError) as exc:
        raise ImageBuildError(f"{layout} is not an OCI layout: {exc}") from exc
    digests = [str(m.get("digest")) for m in index.get("manifests") or []]
    if digests != [digest]:
        raise ImageBuildError(
            f"OCI layout {layout} holds {digests}, not only {digest}",
            "make the SBOM from the registry (no layout) or from the image's own layout",
        )


def sbom(reference: str, layout: Path | None = None) -> bytes:
    """An SPDX JSON SBOM of the image made by syft: from its local OCI layout when given
    (the same manifest as the pushed one), else from the registry (plain HTTP on
    127.0.0.1)."""
    syft = binaries.ensure(["syft"])["syft"]
    if layout is not None:
        _check_layout(layout, reference)
    env = dict(os.environ)
    env.update(SYFT_CHECK_FOR_APP_UPDATE="false", SYFT_REGISTRY_INSECURE_USE_HTTP="true")
    source = f"oci-dir:{layout}" if layout is not None else f"registry:{_pinned(reference)}"
    return _run([str(syft), source, "-o", "spdx-json", "-q"], env, "syft").encode()


def sign_image(
    reference: str,
    state_dir: Path,
    *,
    layout: Path | None = None,
    also: tuple[str, ...] = (),
) -> Signed:
    """Sign the pushed image ``reference`` (pinned by digest) with the dev cluster's key and
    attach its syft SPDX SBOM as a cosign ``spdxjson`` attestation; the same for each
    reference in ``also`` (the image's other repositories: cosign keeps signatures per
    repository)."""
    import json

    targets = [_pinned(r) for r in (reference, *also)]
    key = signing_key(state_dir)
    env = _cosign_env(key.password())
    cosign = str(binaries.ensure(["cosign"])["cosign"])
    common = ["--key", str(key.private), "--tlog-upload=false", "--allow-http-registry"]
    document = sbom(reference, layout)
    packages = len(json.loads(document).get("packages") or [])
    with tempfile.TemporaryDirectory(prefix="ciliumctl-sbom-") as tmp:
        predicate = Path(tmp) / "sbom.spdx.json"
        predicate.write_bytes(document)
        for pinned in targets:
            _run([cosign, "sign", *common, pinned], env, f"cosign sign {pinned}")
            attest = ["attest", *common, "--type", SBOM_TYPE, "--predicate", str(predicate)]
            _run([cosign, *attest, pinned], env, f"cosign attest {pinned}")
    return Signed(reference, key.public, packages)
