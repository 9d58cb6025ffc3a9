"""Sigstore trust roots: the Fulcio CAs, transparency logs and CT logs keyless checks rely on.

A trust root is a Sigstore ``trusted_root.json`` (media type
``application/vnd.dev.sigstore.trustedroot+json;version=0.1``), the same file cosign takes
with ``--trusted-root``. Without ``--trust-root`` the public-good root is used, but only from
a local cache that sigstore-python or cosign populated through TUF: ciliumctl never
downloads it itself, and with no cache it fails closed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ciliumctl.verify.errors import TrustRootError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
    from cryptography.x509 import Certificate

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"


@dataclass(frozen=True)
class Validity:
    """A half-open period; ``end`` None means still valid."""

    start: dt.datetime | None
    end: dt.datetime | None

    def contains(self, when: dt.datetime) -> bool:
        """True when ``when`` lies in the period."""
        return (self.start is None or self.start <= when) and (self.end is None or when < self.end)


@dataclass(frozen=True)
class LogKey:
    """A transparency or CT log's public key, identified by SHA-256 of its DER SPKI."""

    log_id: bytes
    key: PublicKeyTypes
    validity: Validity
    base_url: str = ""


@dataclass(frozen=True)
class CertificateAuthority:
    """A Fulcio CA: its chain (leaf-most first) and when it issued certificates."""

    chain: tuple[Certificate, ...]
    validity: Validity
    uri: str = ""


@dataclass(frozen=True)
class TrustRoot:
    """The parts of a Sigstore trusted root used for keyless verification."""

    source: str
    cas: tuple[CertificateAuthority, ...]
    tlogs: dict[bytes, LogKey] = field(default_factory=dict)
    ctlogs: dict[bytes, LogKey] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path) -> TrustRoot:
        """Load a ``trusted_root.json``; raises :class:`TrustRootError` naming the problem."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise TrustRootError(
                f"trust root {path} does not exist",
                "pass --trust-root with a Sigstore trusted_root.json",
            ) from None
        except (OSError, ValueError) as exc:
            raise TrustRootError(f"cannot read trust root {path}: {exc}") from None
        return cls.from_json(data, str(path))

    @classmethod
    def from_json(cls, data: Any, source: str) -> TrustRoot:
        """Parse the JSON form of a trusted root."""
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        if not isinstance(data, dict) or data.get("mediaType") != TRUSTED_ROOT_MEDIA_TYPE:
            raise TrustRootError(
                f"{source} is not a Sigstore trusted root (mediaType "
                f"{data.get('mediaType') if isinstance(data, dict) else None!r})",
                f"expected mediaType {TRUSTED_ROOT_MEDIA_TYPE}",
            )
        try:
            cas = tuple(
                CertificateAuthority(
                    chain=tuple(
                        x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"]))
                        for c in ca["certChain"]["certificates"]
                    ),
                    validity=_validity(ca.get("validFor")),
                    uri=str(ca.get("uri", "")),
                )
                for ca in data.get("certificateAuthorities") or []
            )

            def logs(key: str) -> dict[bytes, LogKey]:
                out: dict[bytes, LogKey] = {}
                for entry in data.get(key) or []:
                    pk = entry["publicKey"]
                    der = base64.b64decode(pk["rawBytes"])
                    log_id = base64.b64decode(entry["logId"]["keyId"])
                    out[log_id] = LogKey(
                        log_id=log_id,
                        key=load_der_public_key(der),
                        validity=_validity(pk.get("validFor")),
                        base_url=str(entry.get("baseUrl", "")),
                    )
                return out

            return cls(source, cas, logs("tlogs"), logs("ctlogs"))
        except (KeyError, TypeError, ValueError) as exc:
            raise TrustRootError(f"malformed trust root {source}: {exc!r}") from None


def _validity(data: Any) -> Validity:
    def parse(value: Any) -> dt.datetime | None:
        if not value:
            return None
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))

    data = data or {}
    return Validity(parse(data.get("start")), parse(data.get("end")))


def key_id(public_key: PublicKeyTypes) -> bytes:
    """The Sigstore/RFC 6962 log ID of a key: SHA-256 of its DER SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def cached_public_good_paths() -> list[Path]:
    """Where a TUF-fetched public-good ``trusted_root.json`` may be cached on this machine.

    sigstore-python keeps it under ``$XDG_DATA_HOME/sigstore-python/tuf/<url>/`` and cosign
    under ``~/.sigstore/root/<host>/targets/``. Both were verified through TUF when fetched.
    """
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    sigstore_root = Path(os.environ.get("TUF_ROOT") or Path.home() / ".sigstore" / "root")
    candidates = [
        *sorted(
            (data_home / "sigstore-python" / "tuf").glob(
                "*tuf-repo-cdn.sigstore.dev*/trusted_root.json"
            )
        ),
        *sorted(
            (cache_home / "sigstore-python" / "tuf").glob(
                "*tuf-repo-cdn.sigstore.dev*/trusted_root.json"
            )
        ),
        sigstore_root / "tuf-repo-cdn.sigstore.dev" / "targets" / "trusted_root.json",
        sigstore_root / "targets" / "trusted_root.json",
    ]
    return [p for p in candidates if p.is_file()]


def load_trust_root(path: Path | None = None) -> TrustRoot:
    """The trust root at ``path``, else the cached Sigstore public-good root; fails closed."""
    if path is not None:
        return TrustRoot.from_file(path)
    for cached in cached_public_good_paths():
        root = TrustRoot.from_file(cached)
        return TrustRoot(
            f"Sigstore public-good (cached {cached})", root.cas, root.tlogs, root.ctlogs
        )
    raise TrustRootError(
        "the Sigstore public-good trust root is not cached on this machine and ciliumctl does "
        "not download it",
        "pass --trust-root with a trusted_root.json (for example one fetched with "
        "`cosign initialize` or `python -m sigstore verify` on a connected machine), or use "
        "--key for key-based signatures",
    )
