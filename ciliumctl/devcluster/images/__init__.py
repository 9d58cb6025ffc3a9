"""Images built here for the dev cluster, never pulled: recipes, builds, pushes.

The API other parts of the project (real nodes, the agent image) code against::

    from ciliumctl.devcluster import images

    built = images.build("client", args={images.WORLD_CA: ca_pem_path})
    ref = images.push(built, "127.0.0.1:5000")   # 127.0.0.1:5000/ciliumctl/client:TAG@sha256:...
    images.names()                                # ["client", "cluster-dns", ...]
    images.UPSTREAM_ALIASES                       # upstream ref -> local repo:tag
    images.register(images.Recipe(name="cilium", packages=(...), python=images.Python(None)))
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ciliumctl.devcluster.images.builder import (
    ARTIFACTS,
    BuiltImage,
    ImageBuildError,
    Progress,
    build_recipe,
    cached_image,
    check_registry,
    images_dir,
    layout_dir,
    push_layout,
)
from ciliumctl.devcluster.images.catalog import (
    RECIPES,
    TAG,
    UPSTREAM_ALIASES,
    WORLD_CA,
    aliases_for,
    get,
    register,
)
from ciliumctl.devcluster.images.recipe import DEBIAN_SUITE, File, Python, Recipe, Symlink
from ciliumctl.verify.oci import Reference

__all__ = [
    "ARTIFACTS",
    "DEBIAN_SUITE",
    "RECIPES",
    "TAG",
    "UPSTREAM_ALIASES",
    "WORLD_CA",
    "BuiltImage",
    "File",
    "ImageBuildError",
    "Python",
    "Recipe",
    "Symlink",
    "alias_references",
    "aliases_for",
    "build",
    "cached",
    "check_registry",
    "get",
    "images_dir",
    "layout_dir",
    "names",
    "push",
    "register",
]


def names() -> list[str]:
    """Names of every known recipe (built-in and registered), sorted."""
    return sorted(RECIPES)


def build(
    name: str,
    *,
    args: Mapping[str, Path] | None = None,
    rebuild: bool = False,
    progress: Progress = lambda _: None,
) -> BuiltImage:
    """Build image ``name`` into its OCI layout, or return the cached one.

    The cache is keyed by the recipe's content hash (packages, files, wheel, pinned
    dependencies, build arguments such as :data:`WORLD_CA`), so an unchanged recipe is
    not rebuilt and the same inputs always give the same digest.
    """
    return build_recipe(get(name), args=args, rebuild=rebuild, progress=progress)


def push(built: BuiltImage, registry_hostport: str) -> str:
    """Push ``built`` to the registry at ``registry_hostport`` (127.0.0.1 only, plain HTTP)
    under ``ciliumctl/<name>:<tag>`` and each upstream alias's repository and tag; returns
    the pinned reference ``host:port/ciliumctl/<name>:<tag>@sha256:...``."""
    recipe = get(built.name)
    extra = []
    for upstream in aliases_for(recipe):
        ref = Reference.parse(upstream)
        extra.append((ref.repository, ref.tag or "latest"))
    return push_layout(built, registry_hostport, extra_tags=extra)


def alias_references(built: BuiltImage, registry_hostport: str) -> tuple[str, ...]:
    """The pinned references :func:`push` also pushed ``built`` under (its upstream aliases'
    repositories and tags in the same registry)."""
    out = []
    for upstream in aliases_for(get(built.name)):
        ref = Reference.parse(upstream)
        out.append(f"{registry_hostport}/{ref.repository}:{ref.tag or 'latest'}@{built.digest}")
    return tuple(out)


def cached(name: str) -> BuiltImage | None:
    """The image last built for ``name`` (without checking that it is current)."""
    return cached_image(get(name))
