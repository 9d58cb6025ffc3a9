"""Errors of image verification: registry access, trust roots and failed verifications."""

from __future__ import annotations

from ciliumctl.errors import CiliumctlError, ConfigError, UsageError


class RegistryError(CiliumctlError):
    """The registry could not be reached or answered with an error."""


class NotFoundInRegistry(RegistryError):
    """A manifest, tag or blob does not exist in the registry."""


class TrustRootError(ConfigError):
    """No usable Sigstore trust root (the public-good root is not cached, or a bad file)."""


class VerificationFailed(CiliumctlError):
    """A signature, certificate, transparency-log entry or attestation did not verify."""


class BadReference(UsageError):
    """An image reference that cannot be parsed."""


__all__ = [
    "BadReference",
    "NotFoundInRegistry",
    "RegistryError",
    "TrustRootError",
    "UsageError",
    "VerificationFailed",
]
