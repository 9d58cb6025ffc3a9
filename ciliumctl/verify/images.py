"""Verifying many images at once: those a release's chart deploys, or those a cluster runs.

:func:`verify_images` is the entry point ``install``/``upgrade --verify-images`` and
``cilium verify images`` share: each image is resolved and checked in parallel and gets one
:class:`~ciliumctl.verify.cosign.ImageResult`; nothing is raised for a failing image.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ciliumctl.verify import oci
from ciliumctl.verify.cosign import ImageResult, Verifier, verify_image
from ciliumctl.verify.errors import BadReference, UsageError
from ciliumctl.verify.policy import (
    GITHUB_ISSUER,
    IdentityPolicy,
    cilium_release_policy,
)

#: Images of the chart, by component name: (values path of the ``image`` section, digest
#: table name, fallback repository, fallback tag or None for "v" + the Cilium version,
#: GitHub repository that builds it). The fallback is used only when the chart's
#: values.yaml lacks the section.
CHART_IMAGES: dict[str, tuple[tuple[str, ...], str, str, str | None, str]] = {
    "cilium": (("image",), "cilium", "quay.io/cilium/cilium", None, "cilium/cilium"),
    "operator-generic": (
        ("operator", "image"),
        "operator-generic",
        "quay.io/cilium/operator",
        None,
        "cilium/cilium",
    ),
    "hubble-relay": (
        ("hubble", "relay", "image"),
        "hubble-relay",
        "quay.io/cilium/hubble-relay",
        None,
        "cilium/cilium",
    ),
    "hubble-ui": (
        ("hubble", "ui", "frontend", "image"),
        "hubble-ui",
        "quay.io/cilium/hubble-ui",
        "v0.13.3",
        "cilium/hubble-ui",
    ),
    "hubble-ui-backend": (
        ("hubble", "ui", "backend", "image"),
        "hubble-ui-backend",
        "quay.io/cilium/hubble-ui-backend",
        "v0.13.3",
        "cilium/hubble-ui",
    ),
    "certgen": (
        ("certgen", "image"),
        "certgen",
        "quay.io/cilium/certgen",
        "v0.2.4",
        "cilium/certgen",
    ),
}


@dataclass(frozen=True)
class ImageSpec:
    """One image to check, with the identity its signature must carry (keyless)."""

    component: str
    image: str
    policy: IdentityPolicy | None = None


def _dig(values: Mapping[str, Any], path: Sequence[str]) -> Mapping[str, Any] | None:
    node: Any = values
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, Mapping) else None


def replace_registry(repository: str, registry: str) -> str:
    """Swap the registry of ``repository`` (as the chart's ``imageRegistry`` does)."""
    registry = registry.rstrip("/")
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return f"{registry}/{rest}"
    return f"{registry}/{repository}"


def chart_images(
    version: str,
    chart: Path,
    *,
    registry: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> list[ImageSpec]:
    """Every image the chart at ``chart`` deploys for Cilium ``version``.

    Read from the chart's values.yaml (repository, tag, digest, ``useDigest``, the operator's
    ``-generic`` flavour) and files/image-digests.yaml (digests the chart knows per release);
    components the values lack come from :data:`CHART_IMAGES`. ``registry`` replaces every
    image's registry; ``overrides`` maps a component to a full image reference.
    """
    import yaml

    from ciliumctl.errors import ConfigError

    version = version.lstrip("v")
    if not re.fullmatch(r"\d+\.\d+\.\d+(-[\w.]+)?", version):
        raise UsageError(f"invalid Cilium version {version!r}", "use X.Y.Z, e.g. 1.18.5")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(CHART_IMAGES))
    if unknown:
        raise UsageError(
            f"unknown image component {', '.join(unknown)}",
            f"choose from {', '.join(CHART_IMAGES)}",
        )
    try:
        values = yaml.safe_load((chart / "values.yaml").read_text()) or {}
        digests_file = chart / "files" / "image-digests.yaml"
        known = yaml.safe_load(digests_file.read_text()) if digests_file.is_file() else {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the chart at {chart}: {exc}") from None
    known_digests = (known or {}).get(version) or {}
    release_tag = f"v{version}"
    out: list[ImageSpec] = []
    for component, (path, table, repo_default, tag_default, gh_repo) in CHART_IMAGES.items():
        section = _dig(values, path)
        if section is not None:
            repo = str(section.get("repository") or repo_default)
            if component.startswith("operator-"):
                repo = f"{repo}-generic{section.get('suffix') or ''}"
            tag = str(section.get("tag") or release_tag)
            digest = str(
                section.get("genericDigest" if component.startswith("operator-") else "digest")
                or ""
            )
            if not digest and tag == release_tag and not section.get("suffix"):
                digest = str(known_digests.get(table) or "")
            use_digest = bool(section.get("useDigest", True))
            override = section.get("override")
        else:
            repo, tag, digest, use_digest, override = (
                repo_default,
                tag_default or release_tag,
                "",
                False,
                None,
            )
            if component.startswith("operator-"):
                repo = f"{repo}-generic"
        if registry:
            repo = replace_registry(repo, registry)
        image = f"{repo}:{tag}" + (f"@{digest}" if use_digest and digest else "")
        if override:
            image = str(override)
        image = overrides.get(component, image)
        try:
            ref = oci.Reference.parse(image)
        except BadReference as exc:
            raise UsageError(f"image of {component}: {exc.message}") from None
        out.append(ImageSpec(component, image, default_policy(ref, gh_repo)))
    return out


def default_policy(ref: oci.Reference, gh_repo: str = "cilium/cilium") -> IdentityPolicy | None:
    """The identity Cilium's own workflows sign ``ref`` with, when it is a Cilium image.

    Images built by cilium/cilium at a release tag get the exact release identity of the
    docs; images of other Cilium repositories (hubble-ui, certgen) must come from a
    workflow of that repository. Other images have no default (None)."""
    if "cilium" not in ref.repository.split("/")[:-1]:  # quay.io/cilium/X or a mirror of it
        return None
    tag = ref.tag or ""
    if gh_repo == "cilium/cilium" and re.fullmatch(r"v\d+\.\d+\.\d+(-[\w.]+)?", tag):
        return cilium_release_policy(tag)
    if gh_repo != "cilium/cilium":
        return IdentityPolicy(
            identity_regexp=f"^https://github\\.com/{re.escape(gh_repo)}/\\.github/workflows/",
            issuer=GITHUB_ISSUER,
            github_workflow_repository=gh_repo,
        )
    return None


class PodLister(Protocol):
    """The cluster read ``--from-cluster`` needs (a :class:`ciliumctl.k8s.Client`)."""

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...


def cluster_images(client: PodLister, namespace: str) -> list[ImageSpec]:
    """Every distinct image running in ``namespace``, pinned to the digest the kubelet
    reports (``status.containerStatuses[].imageID``) where there is one."""
    seen: dict[str, ImageSpec] = {}
    for pod in client.list("v1", "Pod", namespace):
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        statuses = {
            s.get("name"): s
            for s in [
                *(status.get("containerStatuses") or []),
                *(status.get("initContainerStatuses") or []),
            ]
        }
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            image = str(container.get("image") or "")
            if not image:
                continue
            image_id = str((statuses.get(container.get("name")) or {}).get("imageID") or "")
            match = re.search(r"@(sha256:[0-9a-f]{64})$", image_id)
            if match and "@" not in image:
                image = f"{image}@{match.group(1)}"
            if image not in seen:
                seen[image] = image_spec(image, str(container.get("name")))
    return list(seen.values())


def image_spec(image: str, component: str = "") -> ImageSpec:
    """An :class:`ImageSpec` for any image reference, with its default Cilium signer
    (none for images outside Cilium's repositories). For ``install --verify-images``:
    ``verify_images([image_spec(i) for i in rendered_images], Verifier(trust=...), client)``.
    """
    try:
        ref = oci.Reference.parse(image)
    except BadReference:
        return ImageSpec(component or image, image, None)
    name = ref.repository.rsplit("/", 1)[-1]
    gh = "cilium/cilium"
    if name.startswith("hubble-ui"):
        gh = "cilium/hubble-ui"
    elif name == "certgen":
        gh = "cilium/certgen"
    return ImageSpec(component or name, image, default_policy(ref, gh))


def verify_images(
    images: Sequence[ImageSpec],
    verifier: Verifier,
    client: oci.RegistryClient,
    *,
    workers: int = 8,
    progress: Callable[[ImageResult], None] | None = None,
) -> list[ImageResult]:
    """Check every image in parallel; results in the order of ``images``.

    For keyless checks an image's own policy (its default identity) is used when the
    verifier has none; an image with neither fails with the reason."""

    def one(spec: ImageSpec) -> ImageResult:
        v = verifier
        if v.key is None and v.policy is None:
            if spec.policy is None:
                return ImageResult(
                    spec.image,
                    None,
                    False,
                    "keyless",
                    error="no identity to check it against (not a Cilium image); pass "
                    "--certificate-identity and --certificate-oidc-issuer, or --key",
                )
            v = replace(v, policy=spec.policy)
        try:
            result = verify_image(client, spec.image, v)
        except BadReference as exc:
            result = ImageResult(spec.image, None, False, v.mode, error=exc.message)
        if progress is not None:
            progress(result)
        return result

    if not images:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(images)))) as pool:
        return list(pool.map(one, images))


def make_verifier(
    key: Path | None,
    policy: IdentityPolicy | None,
    trust_root: Path | None,
    *,
    keyless_needs_policy: bool,
) -> Verifier:
    """The verifier for a public key (``key``) or keyless checks (trust root + policy).

    Fails closed: a keyless check needs a trust root (``load_trust_root`` refuses when none is
    given or cached) and, when ``keyless_needs_policy``, an identity policy.
    """
    from ciliumctl.verify.errors import UsageError
    from ciliumctl.verify.signatures import load_public_key
    from ciliumctl.verify.trust import load_trust_root

    if key is not None:
        if policy is not None:
            raise UsageError("--key and --certificate-* flags exclude each other")
        try:
            pem = key.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read --key {key}: {exc.strerror}") from None
        trust = load_trust_root(trust_root) if trust_root else None
        return Verifier(key=load_public_key(pem, str(key)), trust=trust)
    if policy is not None:
        policy.require_complete()
    elif keyless_needs_policy:
        raise UsageError(
            "no identity to check the signature against",
            "pass --certificate-identity and --certificate-oidc-issuer (Cilium release images "
            "quay.io/cilium/*:vX.Y.Z have defaults), or --key",
        )
    return Verifier(trust=load_trust_root(trust_root), policy=policy)


def rendered_images(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every container image of the workloads in rendered manifests, in order, once each."""
    seen: dict[str, None] = {}
    for obj in objects:
        spec: Any = obj.get("spec") or {}
        if obj.get("kind") == "CronJob":
            spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or {}
        if obj.get("kind") == "Pod":
            pod = spec
        for key in ("initContainers", "containers"):
            for container in pod.get(key) or []:
                if container.get("image"):
                    seen.setdefault(str(container["image"]), None)
    return list(seen)


def require_verified(
    images: Sequence[str],
    verifier: Verifier,
    client: oci.RegistryClient,
    *,
    workers: int = 8,
) -> list[ImageResult]:
    """Verify ``images``; raise :class:`VerificationFailed` naming every failure (for
    ``install/upgrade --verify-images``: nothing is applied when this raises)."""
    from ciliumctl.verify.errors import VerificationFailed

    results = verify_images([image_spec(i) for i in images], verifier, client, workers=workers)
    failed = [r for r in results if not r.ok]
    if failed:
        raise VerificationFailed(
            "image verification failed, nothing was applied: "
            + "; ".join(f"{r.image}: {r.reason}" for r in failed)
        )
    return results
