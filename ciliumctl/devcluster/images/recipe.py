"""Image recipes as data, and the content hash that keys the build cache.

A recipe says what goes into an image: an optional Debian base (packages for ``mmdebstrap
--variant=apt``; no base means ``scratch``), files and symlinks, an optional install of the
project's own wheel (with none, some or all of its runtime dependencies), and the OCI config
(entrypoint, cmd, env, working dir, labels). Everything that can change the image's bytes
is part of :func:`recipe_key`, so an unchanged recipe is never rebuilt and a changed one
always is.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ciliumctl.errors import UsageError

#: Bumped when the builder's output format changes, so every cached image is rebuilt.
BUILDER_VERSION = "1"

#: The Debian release every image is built from (the host's apt sources name its mirror).
DEBIAN_SUITE = "bookworm"

_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


@dataclass(frozen=True)
class File:
    """One file in the image: literal ``data``, a host file ``source``, or a named
    ``artifact`` (see :data:`ciliumctl.devcluster.images.builder.ARTIFACTS`), or a build
    argument ``arg`` whose value (a host path) is passed to ``build(..., args=...)``."""

    path: str
    data: bytes | None = None
    source: Path | None = None
    artifact: str | None = None
    arg: str | None = None
    mode: int = 0o644

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.data, self.source, self.artifact, self.arg)]
        if sum(given) != 1:
            raise UsageError(
                f"image file {self.path}: give exactly one of data, source, artifact or arg"
            )
        if not self.path.startswith("/"):
            raise UsageError(f"image file {self.path}: the path must be absolute")


@dataclass(frozen=True)
class Symlink:
    """A symbolic link ``path`` -> ``target`` in the image."""

    path: str
    target: str


@dataclass(frozen=True)
class Python:
    """Install the project's own wheel (``pip wheel --no-deps .``) into the image.

    ``deps`` names the runtime dependencies to install with it (their dependency closure
    too, at the versions installed in the building environment); ``None`` installs all of
    the project's runtime dependencies, ``()`` none (the stdlib-only servers).
    """

    deps: tuple[str, ...] | None = ()
    #: console scripts installed under another script's code, ``(name, runs)``: the agent
    #: image's ``cilium`` is ``cilium-dbg``, as in upstream's image, where tools such as
    #: cilium-cli exec ``cilium status`` in the agent container.
    script_aliases: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Recipe:
    """How to build one image. ``packages=None`` means a ``scratch`` image (no Debian)."""

    name: str
    tag: str = "v1"
    packages: tuple[str, ...] | None = None
    #: mmdebstrap ``--customize-hook`` commands run on the Debian base (``$1`` is its root),
    #: e.g. ``chroot "$1" ldconfig``; part of the base layer and of its cache key.
    hooks: tuple[str, ...] = ()
    files: tuple[File, ...] = ()
    symlinks: tuple[Symlink, ...] = ()
    python: Python | None = None
    #: CA certificates (PEM) passed as this build argument are appended to the system
    #: trust bundle (/etc/ssl/certs/ca-certificates.crt) that curl, OpenSSL and Python use.
    ca_arg: str | None = None
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = "/"
    labels: Mapping[str, str] = field(default_factory=dict)
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise UsageError(
                f"image recipe name {self.name!r} is invalid",
                "use lower-case letters, digits and . _ - separators",
            )
        if not _TAG.match(self.tag):
            raise UsageError(f"image recipe {self.name}: invalid tag {self.tag!r}")
        if self.python is not None and self.packages is None:
            raise UsageError(
                f"image recipe {self.name}: a Python install needs a Debian base",
                "list Debian packages (python3 is added automatically)",
            )
        if self.hooks and self.packages is None:
            raise UsageError(f"image recipe {self.name}: hooks need a Debian base")
        if self.ca_arg is not None and self.packages is None:
            raise UsageError(f"image recipe {self.name}: a CA bundle needs a Debian base")

    @property
    def repository(self) -> str:
        """The local repository name (``ciliumctl/<name>``)."""
        return f"ciliumctl/{self.name}"

    @property
    def debian_packages(self) -> tuple[str, ...]:
        """The packages mmdebstrap installs, sorted, with what the recipe implies."""
        if self.packages is None:
            return ()
        implied = {"python3"} if self.python is not None else set()
        if self.ca_arg is not None:
            implied.add("ca-certificates")
        return tuple(sorted(set(self.packages) | implied))

    def build_args(self) -> tuple[str, ...]:
        """Names of the build arguments this recipe takes."""
        names = {f.arg for f in self.files if f.arg}
        if self.ca_arg:
            names.add(self.ca_arg)
        return tuple(sorted(n for n in names if n))


def canonical(data: Any) -> bytes:
    """Stable JSON bytes: sorted keys, no whitespace (the input of every cache key)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def base_key(recipe: Recipe, apt_sources: tuple[tuple[str, str], ...]) -> str | None:
    """Cache key of the Debian base layer: suite, sources and package list."""
    if recipe.packages is None:
        return None
    doc = {
        "builder": BUILDER_VERSION,
        "suite": DEBIAN_SUITE,
        "sources": [list(s) for s in apt_sources],
        "packages": list(recipe.debian_packages),
        "hooks": list(recipe.hooks),
    }
    return sha256(canonical(doc))


def recipe_key(
    recipe: Recipe,
    *,
    base: str | None,
    file_hashes: Mapping[str, str],
    python_key: str | None,
    ca_hash: str | None,
) -> str:
    """The content hash of everything that makes up the image (the cache key).

    ``file_hashes`` maps each file's image path to the SHA-256 of its resolved content,
    ``python_key`` fingerprints the wheel and its pinned dependencies, ``ca_hash`` the
    extra CA bundle.
    """
    doc = {
        "builder": BUILDER_VERSION,
        "name": recipe.name,
        "tag": recipe.tag,
        "base": base,
        "files": [
            {"path": f.path, "mode": f.mode, "sha256": file_hashes[f.path]}
            for f in sorted(recipe.files, key=lambda f: f.path)
        ],
        "symlinks": sorted([s.path, s.target] for s in recipe.symlinks),
        "python": python_key,
        "script_aliases": sorted(recipe.python.script_aliases) if recipe.python else [],
        "ca": ca_hash,
        "config": {
            "entrypoint": list(recipe.entrypoint),
            "cmd": list(recipe.cmd),
            "env": dict(sorted(recipe.env.items())),
            "workdir": recipe.workdir,
            "labels": dict(sorted(recipe.labels.items())),
            "user": recipe.user,
            "ports": sorted(recipe.exposed_ports),
        },
    }
    return sha256(canonical(doc))
