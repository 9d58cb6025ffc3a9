"""Image signature and SBOM verification (cosign signatures, Sigstore bundles, in-toto SBOMs).

Submodules: :mod:`oci` (registry client), :mod:`trust` (Sigstore trust roots),
:mod:`policy` (identity policies), :mod:`sigstore_verify` (signature, certificate and
transparency-log checks), :mod:`cosign` (finding signatures and attestations in a registry),
:mod:`images` (verifying the images of a release or a cluster) and :mod:`sbom`.
"""
