"""Build recipes into OCI layouts and push them to a registry on 127.0.0.1.

A Debian base is ``mmdebstrap --variant=apt`` from the host's apt sources into a tarball
(reproducible with ``SOURCE_DATE_EPOCH``), cached by its package list. Everything else the
recipe adds (files, symlinks, the project's wheel and its pinned dependencies, an extra CA)
goes into a second layer written here with sorted entries, fixed owners and fixed mtimes.
umoci packs both into an OCI layout with a fixed creation time, so the same inputs give the
same manifest digest. A finished image is cached under its content hash: an unchanged
recipe is not rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ciliumctl.devcluster import binaries
from ciliumctl.devcluster.images import recipe as rc
from ciliumctl.errors import CiliumctlError, ToolMissingError, UsageError

#: The fixed time of every image (2024-01-01T00:00:00Z): file mtimes, config "created".
SOURCE_DATE_EPOCH = 1704067200
CREATED = "2024-01-01T00:00:00Z"

#: The Python of Debian bookworm (glibc 2.36), which the wheel and dependencies target.
IMAGE_PYTHON = ("3.11", "cp311", "manylinux_2_36_x86_64")
#: Every wheel platform tag glibc 2.36 on x86_64 runs (pip does not expand --platform).
IMAGE_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)
SITE_PACKAGES = "/usr/lib/python3/dist-packages"

#: Paths dpkg leaves out of every Debian base (documentation, manuals, translations).
_DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/info/*",
)

Progress = Callable[[str], None]


class ImageBuildError(CiliumctlError):
    """An image could not be built or pushed."""


@dataclass(frozen=True)
class BuiltImage:
    """An image in a local OCI layout: ``layout`` holds it under ``tag``."""

    name: str
    tag: str
    digest: str
    layout: Path
    key: str = ""
    size: int = 0
    cached: bool = False
    seconds: float = 0.0
    packages: dict[str, str] = field(default_factory=dict)

    @property
    def repository(self) -> str:
        """The local repository (``ciliumctl/<name>``)."""
        return f"ciliumctl/{self.name}"

    def to_json(self) -> dict[str, Any]:
        """JSON form (for ``images list -o json``)."""
        out = asdict(self)
        out["layout"] = str(self.layout)
        out["repository"] = self.repository
        del out["packages"]
        return out


# --------------------------------------------------------------------------- locations


def images_dir() -> Path:
    """Root of the image cache (``<cache_dir>/images``)."""
    return binaries.cache_dir() / "images"


#: Layouts kept per image name (the newest ones): variants (e.g. with and without a CA)
#: are all cache hits, old builds do not pile up.
KEEP_LAYOUTS = 3
LAYOUT_MAX_IDLE_S = 86400


def layout_dir(name: str, key: str | None = None) -> Path:
    """Where image ``name``'s OCI layouts live (``key``: the one of that content hash)."""
    base = images_dir() / "oci" / name
    return base / key[:16] if key else base


@contextlib.contextmanager
def _lock(what: str) -> Iterator[None]:
    locks = images_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{what}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(
            f"{name} is not installed (needed to build the dev cluster's images)",
            f"install the Debian package {package}: ./scripts/host-deps.sh "
            f"(or apt-get install {package})",
        )
    return path


def _run(args: list[str], what: str, *, env: Mapping[str, str] | None = None) -> str:
    proc = subprocess.run(
        args, capture_output=True, text=True, env=dict(env) if env is not None else None
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise ImageBuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


# --------------------------------------------------------------------------- Debian base


def host_apt_sources() -> tuple[tuple[str, str], ...]:
    """The host's apt sources for :data:`DEBIAN_SUITE`: (file name, text) per file.

    Only files that name the suite are used (third-party repositories stay out); their
    text is part of the base layer's cache key.
    """
    root = Path("/etc/apt")
    files = [root / "sources.list"] if (root / "sources.list").is_file() else []
    if (root / "sources.list.d").is_dir():
        files += sorted(
            p
            for p in (root / "sources.list.d").iterdir()
            if p.suffix in (".list", ".sources") and p.is_file()
        )
    out: list[tuple[str, str]] = []
    for path in files:
        text = path.read_text()
        if re.search(rf"(^|\s){rc.DEBIAN_SUITE}(\s|$)", text, re.M) and "debian" in text:
            out.append((path.name, text))
    if not out:
        raise ImageBuildError(
            f"no apt source for Debian {rc.DEBIAN_SUITE} in /etc/apt/sources.list(.d)",
            f"add a deb822 .sources file for {rc.DEBIAN_SUITE} (the images are built from it)",
        )
    return tuple(out)


def _mirror_args(sources: tuple[tuple[str, str], ...], workdir: Path) -> list[str]:
    """mmdebstrap mirror arguments: a copy of each host sources file."""
    out: list[str] = []
    for i, (name, text) in enumerate(sources):
        path = workdir / f"host{i}{Path(name).suffix}"
        path.write_text(text)
        out.append(str(path))
    return out


def _base_tar(
    recipe: rc.Recipe, key: str, sources: tuple[tuple[str, str], ...], progress: Progress
) -> Path:
    """The Debian base of ``recipe`` as a tarball, built once per key."""
    out = images_dir() / "base" / f"{key}.tar"
    if out.is_file():
        os.utime(out.with_suffix(".packages"))  # in use: kept by _prune_bases
        return out
    mmdebstrap = _tool("mmdebstrap", "mmdebstrap")
    out.parent.mkdir(parents=True, exist_ok=True)
    with _lock(f"base-{key[:16]}"):
        if out.is_file():
            return out
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            work = Path(tmp)
            log = out.with_suffix(".log")
            args = [
                mmdebstrap,
                "--variant=apt",
                "--format=tar",
                "--skip=output/dev",
                f"--include={','.join(recipe.debian_packages)}",
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                *[f"--dpkgopt={o}" for o in _DPKG_EXCLUDES],
                "--customize-hook=rm -f $1/etc/hostname $1/etc/resolv.conf",
                *[f"--customize-hook={hook}" for hook in recipe.hooks],
                # the installed package list, kept with the cached base
                f"--customize-hook=chroot $1 dpkg-query -W > {work / 'packages.txt'}",
                rc.DEBIAN_SUITE,
                str(work / "base.tar"),
                *_mirror_args(sources, work),
            ]
            progress(f"mmdebstrap {rc.DEBIAN_SUITE}: {', '.join(recipe.debian_packages)}")
            env = dict(os.environ, SOURCE_DATE_EPOCH=str(SOURCE_DATE_EPOCH), LC_ALL="C.UTF-8")
            with open(log, "w") as fh:
                proc = subprocess.run(args, stdout=fh, stderr=subprocess.STDOUT, env=env)
            if proc.returncode != 0:
                tail = _log_tail(log.read_text())
                raise ImageBuildError(
                    f"mmdebstrap failed building the base of image {recipe.name} "
                    f"(packages {', '.join(recipe.debian_packages)}); log {log}:\n{tail}",
                    "check the package names and that the host's apt mirror is reachable",
                )
            os.replace(work / "packages.txt", out.with_suffix(".packages"))
            os.replace(work / "base.tar", out)
    _prune_bases()
    return out


#: Debian bases unused for this long are removed when another base is built.
BASE_MAX_IDLE_DAYS = 7


def _prune_bases() -> None:
    """Remove the cached bases (tarball, package list, packed layout, log) of package lists
    no recipe has used for :data:`BASE_MAX_IDLE_DAYS`."""
    cutoff = time.time() - BASE_MAX_IDLE_DAYS * 86400
    for packages in (images_dir() / "base").glob("*.packages"):
        if packages.stat().st_mtime >= cutoff:
            continue
        for suffix in (".tar", ".log", ".packages"):
            packages.with_suffix(suffix).unlink(missing_ok=True)
        shutil.rmtree(packages.with_suffix(".oci"), ignore_errors=True)


def _log_tail(text: str, lines: int = 20) -> str:
    """The error lines of a tool's log (``E:``, unknown options) and its last lines."""
    all_lines = text.strip().splitlines()
    errors = [ln for ln in all_lines if ln.startswith(("E:", "Unknown option", "dpkg: error"))]
    tail = [ln for ln in all_lines[-lines:] if ln not in errors]
    return "\n".join([*errors[:10], *tail])


def _base_packages(base: Path | None) -> dict[str, str]:
    if base is None:
        return {}
    try:
        lines = base.with_suffix(".packages").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


def _member(tar_path: Path, name: str) -> bytes | None:
    """The content of one regular file of a tarball (following symlinks inside it)."""
    with tarfile.open(tar_path) as tar:
        wanted = name.lstrip("/")
        for _ in range(8):
            member = None
            for cand in (wanted, f"./{wanted}"):
                with contextlib.suppress(KeyError):
                    member = tar.getmember(cand)
                    break
            if member is None:
                return None
            if member.issym():
                target = member.linkname
                base = os.path.dirname(wanted)
                wanted = os.path.normpath(
                    target.lstrip("/") if target.startswith("/") else os.path.join(base, target)
                )
                continue
            fh = tar.extractfile(member)
            return fh.read() if fh else None
    return None


# --------------------------------------------------------------------------- artifacts


def _pause_binary() -> Path:
    """The static pause binary, compiled from pause.c with the host's gcc (cached)."""
    source = Path(__file__).with_name("pause.c")
    gcc = _tool("gcc", "gcc")
    version = _run([gcc, "--version"], "gcc --version").splitlines()[0]
    key = rc.sha256(rc.canonical({"src": rc.file_sha256(source), "gcc": version}))[:16]
    out = images_dir() / "artifacts" / f"pause-{key}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        binary = Path(tmp) / "pause"
        _run(
            [
                gcc,
                "-Os",
                "-static",
                "-s",
                "-Wall",
                "-Werror",
                f"-ffile-prefix-map={source.parent}=.",
                "-o",
                str(binary),
                str(source),
            ],
            "compiling pause.c (gcc -static; needs libc6-dev)",
        )
        os.replace(binary, out)
    return out


def _kube_proxy_binary() -> Path:
    """kube-proxy at the pinned Kubernetes version (built with the other binaries)."""
    return binaries.ensure(["kube-proxy"])["kube-proxy"]


#: Named build artifacts a recipe's files can use: name -> function giving a host path.
ARTIFACTS: dict[str, Callable[[], Path]] = {
    "pause": _pause_binary,
    "kube-proxy": _kube_proxy_binary,
}


# --------------------------------------------------------------------------- Python


def project_root() -> Path:
    """The source tree of the running ciliumctl (where pyproject.toml is)."""
    import ciliumctl

    root = Path(ciliumctl.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise ImageBuildError(
            f"ciliumctl is not running from its source tree ({root} has no pyproject.toml)",
            "build images from a checkout (pip install -e .)",
        )
    return root


def _source_hash(root: Path) -> str:
    """Fingerprint of everything that goes into the project's wheel."""
    h: list[str] = []
    for top in ("ciliumctl", "charts/cilium"):
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(dirpath) / name
                h.append(f"{path.relative_to(root)}\0{rc.file_sha256(path)}")
    for name in ("pyproject.toml", "README.md"):
        if (root / name).is_file():
            h.append(f"{name}\0{rc.file_sha256(root / name)}")
    return rc.sha256("\n".join(h).encode())


def _project_wheel(progress: Progress) -> Path:
    """``pip wheel --no-deps .`` of the project, cached by its source hash."""
    root = project_root()
    key = _source_hash(root)[:16]
    out_dir = images_dir() / "wheels" / key
    found = sorted(out_dir.glob("ciliumctl-*.whl")) if out_dir.is_dir() else []
    if found:
        return found[0]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    import importlib.util

    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as tmp:
        progress("building the ciliumctl wheel")
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(SOURCE_DATE_EPOCH))
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation]
        _run(
            [*pip, "-w", tmp, str(root)],
            "pip wheel --no-deps . (the ciliumctl wheel)",
            env=env,
        )
        os.replace(tmp, out_dir)
        os.mkdir(tmp)  # TemporaryDirectory wants to remove something
    return sorted(out_dir.glob("ciliumctl-*.whl"))[0]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_dependencies(deps: tuple[str, ...] | None) -> dict[str, str]:
    """``deps`` (None: all of ciliumctl's runtime dependencies) and their dependency
    closure, at the versions installed in this environment."""
    from importlib import metadata

    from packaging.requirements import Requirement

    env = {"python_version": IMAGE_PYTHON[0], "python_full_version": f"{IMAGE_PYTHON[0]}.2"}
    env |= {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}
    env |= {"platform_machine": "x86_64", "implementation_name": "cpython"}
    env |= {"platform_python_implementation": "CPython", "extra": ""}

    def requires(dist: str) -> list[str]:
        try:
            reqs = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            raise ImageBuildError(
                f"Python package {dist} is not installed in {sys.prefix}",
                "run `make venv` (the image pins the versions installed there)",
            ) from None
        out = []
        for text in reqs:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(env):
                out.append(req.name)
        return out

    todo = list(requires("ciliumctl") if deps is None else deps)
    pins: dict[str, str] = {}
    while todo:
        name = _norm(todo.pop())
        if name in pins:
            continue
        try:
            pins[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise ImageBuildError(
                f"Python package {name} is not installed in {sys.prefix}",
                "run `make venv` (the image pins the versions installed there)",
            ) from None
        todo += requires(name)
    return dict(sorted(pins.items()))


def _install_python(spec: rc.Python, wheel: Path, pins: Mapping[str, str], root: Path) -> None:
    """pip-install the wheel and the pinned dependencies into the staging tree ``root``."""
    target = root / SITE_PACKAGES.lstrip("/")
    version, abi, _ = IMAGE_PYTHON
    args = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
    args += ["--disable-pip-version-check", "--no-warn-script-location", "--only-binary=:all:"]
    args += ["--python-version", version, "--implementation", "cp", "--abi", abi]
    for tag in IMAGE_PLATFORMS:
        args += ["--platform", tag]
    args += ["--target", str(target), str(wheel)]
    args += [f"{n}=={v}" for n, v in pins.items()]
    _run(args, "pip install of the project's wheel into the image")
    # host-specific leftovers: scripts with the host's shebang, the wheel's file:// URL
    shutil.rmtree(target / "bin", ignore_errors=True)
    for direct in target.glob("*.dist-info/direct_url.json"):
        direct.unlink()
    for cache in target.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    _prune_records(target)
    write_scripts(root / "usr/local/bin", _console_scripts(target), spec.script_aliases)


def write_scripts(
    bindir: Path, entry_points: list[str], aliases: tuple[tuple[str, str], ...] = ()
) -> None:
    """One launcher per console script (``name = module:func``) in ``bindir``; an alias
    ``(name, runs)`` installs ``name`` with the code of script ``runs``."""
    scripts = dict(
        (name.strip(), value.strip())
        for name, _, value in (ep.partition("=") for ep in entry_points)
    )
    for alias, runs in aliases:
        if runs not in scripts:
            raise ImageBuildError(f"script alias {alias}={runs}: the wheel has no script {runs!r}")
        scripts[alias] = scripts[runs]
    bindir.mkdir(parents=True, exist_ok=True)
    for name, value in sorted(scripts.items()):
        module, _, func = value.partition(":")
        script = bindir / name
        script.write_text(
            f"#!/usr/bin/python3\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n"
        )
        script.chmod(0o755)


def _prune_records(target: Path) -> None:
    """Drop the RECORD lines of files removed above (their hashes are host-specific)."""
    for record in target.glob("*.dist-info/RECORD"):
        kept = [
            line
            for line in record.read_text().splitlines()
            if line
            and (target / line.split(",", 1)[0]).resolve().is_relative_to(target.resolve())
            and (target / line.split(",", 1)[0]).exists()
        ]
        record.write_text("".join(f"{line}\n" for line in kept))


def _console_scripts(target: Path) -> list[str]:
    out: list[str] = []
    for eps in sorted(target.glob("ciliumctl-*.dist-info/entry_points.txt")):
        section = ""
        for line in eps.read_text().splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line
            elif line and section == "[console_scripts]":
                out.append(line)
    return out


# --------------------------------------------------------------------------- layers


def write_layer(root: Path, out: Path) -> None:
    """Tar the staging tree ``root`` reproducibly: sorted, root-owned, fixed mtimes."""

    def info(path: Path, rel: str) -> tarfile.TarInfo:
        st = path.lstat()
        ti = tarfile.TarInfo(rel)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        ti.mtime = SOURCE_DATE_EPOCH
        if stat.S_ISLNK(st.st_mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(path)
        elif stat.S_ISDIR(st.st_mode):
            ti.type = tarfile.DIRTYPE
        else:
            ti.size = st.st_size
        return ti

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            base = Path(dirpath)
            for name in sorted(dirnames + filenames):
                path = base / name
                rel = str(path.relative_to(root))
                ti = info(path, rel + ("/" if path.is_dir() and not path.is_symlink() else ""))
                if ti.isreg():
                    with open(path, "rb") as fh:
                        tar.addfile(ti, fh)
                else:
                    tar.addfile(ti)
            # os.walk does not descend into symlinked dirs; keep them as links only
            dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class _Inputs:
    key: str
    base_key: str | None
    sources: tuple[tuple[str, str], ...]
    files: dict[str, Path | bytes]
    python: tuple[Path, dict[str, str]] | None
    ca: bytes | None


def _resolve(
    recipe: rc.Recipe,
    args: Mapping[str, Path],
    progress: Progress,
    sources: tuple[tuple[str, str], ...] | None,
) -> _Inputs:
    unknown = sorted(set(args) - set(recipe.build_args()))
    if unknown:
        raise UsageError(
            f"image {recipe.name} takes no build argument {', '.join(unknown)}",
            f"its arguments: {', '.join(recipe.build_args()) or 'none'}",
        )
    files: dict[str, Path | bytes] = {}
    hashes: dict[str, str] = {}
    for f in recipe.files:
        content: Path | bytes
        if f.data is not None:
            content = f.data
        elif f.source is not None:
            content = f.source
        elif f.artifact is not None:
            if f.artifact not in ARTIFACTS:
                raise UsageError(
                    f"image {recipe.name}: file {f.path} names unknown artifact {f.artifact!r}",
                    f"known artifacts: {', '.join(sorted(ARTIFACTS))}",
                )
            content = ARTIFACTS[f.artifact]()
        else:
            assert f.arg is not None
            if f.arg not in args:
                raise UsageError(
                    f"image {recipe.name} needs build argument {f.arg} (a file for {f.path})",
                    f"pass it: build({recipe.name!r}, args={{{f.arg!r}: PATH}})",
                )
            content = Path(args[f.arg])
        if isinstance(content, Path) and not content.is_file():
            raise UsageError(f"image {recipe.name}: file {content} (for {f.path}) does not exist")
        files[f.path] = content
        hashes[f.path] = (
            rc.sha256(content) if isinstance(content, bytes) else rc.file_sha256(content)
        )
    ca: bytes | None = None
    if recipe.ca_arg and recipe.ca_arg in args:
        path = Path(args[recipe.ca_arg])
        try:
            ca = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"image {recipe.name}: cannot read CA file {path}: {exc}") from None
        if b"-----BEGIN CERTIFICATE-----" not in ca:
            raise UsageError(f"image {recipe.name}: CA file {path} holds no PEM certificate")
    python: tuple[Path, dict[str, str]] | None = None
    python_key = None
    if recipe.python is not None:
        wheel = _project_wheel(progress)
        pins = pinned_dependencies(recipe.python.deps)
        python = (wheel, pins)
        python_key = rc.sha256(
            rc.canonical(
                {
                    "wheel": rc.file_sha256(wheel),
                    "pins": pins,
                    "py": [*IMAGE_PYTHON, *IMAGE_PLATFORMS],
                }
            )
        )
    if sources is None:
        sources = host_apt_sources() if recipe.packages is not None else ()
    bkey = rc.base_key(recipe, sources)
    key = rc.recipe_key(
        recipe,
        base=bkey,
        file_hashes=hashes,
        python_key=python_key,
        ca_hash=rc.sha256(ca) if ca else None,
    )
    return _Inputs(key, bkey, sources, files, python, ca)


def image_path(path: str, merged_usr: bool) -> str:
    """``path`` as the layer must name it: on a merged-/usr base, /bin, /sbin and /lib*
    are symlinks into /usr, and a layer entry below them would replace the link."""
    if merged_usr:
        for top in ("/bin/", "/sbin/", "/lib/", "/lib64/"):
            if path.startswith(top):
                return "/usr" + path
    return path


def _stage(recipe: rc.Recipe, inputs: _Inputs, base: Path | None, root: Path) -> None:
    """Write the recipe's own layer into the staging tree ``root``."""
    merged = base is not None
    for path, content in sorted(inputs.files.items()):
        dest = root / image_path(path, merged).lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            dest.write_bytes(content)
        else:
            shutil.copyfile(content, dest)
        mode = next(f.mode for f in recipe.files if f.path == path)
        dest.chmod(mode)
    for link in recipe.symlinks:
        dest = root / image_path(link.path, merged).lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(link.target)
    if inputs.python is not None and recipe.python is not None:
        _install_python(recipe.python, inputs.python[0], inputs.python[1], root)
    if inputs.ca is not None:
        bundle_path = "/etc/ssl/certs/ca-certificates.crt"
        bundle = (_member(base, bundle_path) if base else None) or b""
        dest = root / bundle_path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(bundle.rstrip(b"\n") + b"\n" + inputs.ca.strip() + b"\n")
        dest.chmod(0o644)
        extra = root / "usr/local/share/ca-certificates/ciliumctl-extra.crt"
        extra.parent.mkdir(parents=True, exist_ok=True)
        extra.write_bytes(inputs.ca.strip() + b"\n")
        extra.chmod(0o644)
    for d in [root, *root.rglob("*")]:
        if d.is_dir() and not d.is_symlink():
            d.chmod(0o755)


def _umoci_config_args(recipe: rc.Recipe) -> list[str]:
    args = ["--no-history", f"--created={CREATED}", "--author=ciliumctl"]
    args += ["--architecture=amd64", "--os=linux", f"--config.workingdir={recipe.workdir}"]
    args += [f"--config.entrypoint={a}" for a in recipe.entrypoint]
    args += [f"--config.cmd={a}" for a in recipe.cmd]
    args += [f"--config.env={k}={v}" for k, v in sorted(recipe.env.items())]
    labels = {"org.opencontainers.image.title": recipe.name, **recipe.labels}
    args += [f"--config.label={k}={v}" for k, v in sorted(labels.items())]
    args += [f"--config.exposedports={p}" for p in sorted(recipe.exposed_ports)]
    if recipe.user:
        args.append(f"--config.user={recipe.user}")
    return args


def read_layout(layout: Path) -> tuple[str, int]:
    """The manifest digest of the (single) image in ``layout`` and its total blob size."""
    index = json.loads((layout / "index.json").read_text())
    desc = index["manifests"][0]
    digest = str(desc["digest"])
    manifest = json.loads((layout / "blobs" / digest.replace(":", "/")).read_text())
    size = int(desc["size"]) + int(manifest["config"]["size"])
    size += sum(int(layer["size"]) for layer in manifest["layers"])
    return digest, size


def _load(recipe_name: str, layout: Path, cached: bool) -> BuiltImage | None:
    try:
        meta = json.loads((layout / "ciliumctl-build.json").read_text())
        digest, size = read_layout(layout)
    except (OSError, ValueError, KeyError, IndexError):
        return None
    return BuiltImage(
        recipe_name,
        str(meta.get("tag")),
        digest,
        layout,
        str(meta.get("key", "")),
        size,
        cached=cached,
        packages=dict(meta.get("packages") or {}),
    )


def _cached(recipe: rc.Recipe, key: str) -> BuiltImage | None:
    hit = _load(recipe.name, layout_dir(recipe.name, key), cached=True)
    if hit is None or hit.key != key or hit.tag != recipe.tag:
        return None
    os.utime(hit.layout)  # most recently used: kept by the pruning
    return hit


def _prune(name: str) -> None:
    """Remove layouts beyond the newest :data:`KEEP_LAYOUTS` that nothing used for a day
    (several checkouts on one machine share the cache; their variants stay)."""
    layouts = [p for p in layout_dir(name).iterdir() if p.is_dir() and not p.name.startswith(".")]
    layouts.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    cutoff = time.time() - LAYOUT_MAX_IDLE_S
    for old in layouts[KEEP_LAYOUTS:]:
        if old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)


def _base_layout(umoci: str, base: Path, key: str, progress: Progress) -> Path:
    """An OCI layout holding only the Debian base layer (tag ``base``), built once per base
    key: every image on that base starts from hard links to its blobs instead of
    compressing the same rootfs again."""
    out = images_dir() / "base" / f"{key}.oci"
    if (out / "index.json").is_file():
        return out
    with _lock(f"base-{key[:16]}"):
        if (out / "index.json").is_file():
            return out
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            layout = Path(tmp) / "layout"
            image = f"{layout}:base"
            progress("packing the Debian base layer")
            _run([umoci, "init", "--layout", str(layout)], "umoci init")
            _run([umoci, "new", "--image", image], "umoci new")
            _run(
                [umoci, "raw", "add-layer", "--no-history", "--image", image, str(base)],
                "umoci raw add-layer (Debian base)",
            )
            os.replace(layout, out)
    return out


def _start_layout(umoci: str, base_layout: Path | None, layout: Path, tag: str) -> None:
    """A fresh layout whose image ``tag`` is the base (blobs hard-linked) or empty."""
    image = f"{layout}:{tag}"
    if base_layout is None:
        _run([umoci, "init", "--layout", str(layout)], "umoci init")
        _run([umoci, "new", "--image", image], "umoci new")
        return
    layout.mkdir()
    shutil.copytree(base_layout / "blobs", layout / "blobs", copy_function=os.link)
    for name in ("index.json", "oci-layout"):
        shutil.copyfile(base_layout / name, layout / name)  # rewritten by umoci: not linked
    _run([umoci, "tag", "--image", f"{layout}:base", tag], "umoci tag")
    _run([umoci, "rm", "--image", f"{layout}:base"], "umoci rm")


def build_recipe(
    recipe: rc.Recipe,
    *,
    args: Mapping[str, Path] | None = None,
    rebuild: bool = False,
    progress: Progress = lambda _: None,
    sources: tuple[tuple[str, str], ...] | None = None,
) -> BuiltImage:
    """Build ``recipe`` (or return the cached image with the same content hash).

    ``rebuild`` rebuilds the image's own layer and layout (the cached Debian base is kept).
    """
    started = time.monotonic()
    inputs = _resolve(recipe, args or {}, progress, sources)
    with _lock(f"image-{recipe.name}"):
        if not rebuild:
            hit = _cached(recipe, inputs.key)
            if hit is not None:
                return hit
        umoci = _tool("umoci", "umoci")
        base = base_layout = None
        if inputs.base_key is not None:
            base = _base_tar(recipe, inputs.base_key, inputs.sources, progress)
            base_layout = _base_layout(umoci, base, inputs.base_key, progress)
        target = layout_dir(recipe.name, inputs.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
            work = Path(tmp)
            staging = work / "rootfs"
            staging.mkdir()
            progress(f"image {recipe.name}: staging its layer")
            _stage(recipe, inputs, base, staging)
            layer = work / "layer.tar"
            write_layer(staging, layer)
            layout = work / "layout"
            image = f"{layout}:{recipe.tag}"
            progress(f"image {recipe.name}: packing the OCI layout")
            _start_layout(umoci, base_layout, layout, recipe.tag)
            _run(
                [umoci, "raw", "add-layer", "--no-history", "--image", image, str(layer)],
                "umoci raw add-layer (the image's own layer)",
            )
            _run([umoci, "config", "--image", image, *_umoci_config_args(recipe)], "umoci config")
            _run([umoci, "gc", "--layout", str(layout)], "umoci gc")
            packages = _base_packages(base)
            meta = {"key": inputs.key, "tag": recipe.tag, "packages": packages}
            (layout / "ciliumctl-build.json").write_text(json.dumps(meta, indent=2))
            digest, size = read_layout(layout)
            if target.exists():
                os.replace(target, work / "old")
            os.replace(layout, target)
        _prune(recipe.name)
    return BuiltImage(
        recipe.name,
        recipe.tag,
        digest,
        target,
        inputs.key,
        size,
        cached=False,
        seconds=round(time.monotonic() - started, 2),
        packages=packages,
    )


def cached_image(recipe: rc.Recipe) -> BuiltImage | None:
    """The image most recently built or used for ``recipe``, without checking that it is
    current."""
    root = layout_dir(recipe.name)
    if not root.is_dir():
        return None
    layouts = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for layout in sorted(layouts, key=lambda p: p.stat().st_mtime, reverse=True):
        found = _load(recipe.name, layout, cached=True)
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------- push


def check_registry(registry_hostport: str) -> None:
    """Refuse any registry that is not on this machine (images go to 127.0.0.1 only)."""
    from ciliumctl.verify import oci

    if not oci.is_loopback(registry_hostport) or ":" not in registry_hostport:
        raise UsageError(
            f"registry {registry_hostport} is not HOST:PORT on this machine",
            "the dev cluster's images are pushed only to a registry on 127.0.0.1:PORT",
        )


def push_layout(
    built: BuiltImage,
    registry_hostport: str,
    *,
    extra_tags: list[tuple[str, str]] | None = None,
) -> str:
    """Push the layout's blobs and manifest (verbatim, so its digest is kept) to a loopback
    registry over plain HTTP, under ``ciliumctl/<name>:<tag>`` and each extra
    (repository, tag); returns the pinned reference ``host/ciliumctl/<name>:<tag>@digest``."""
    from ciliumctl.verify import oci

    check_registry(registry_hostport)
    client = oci.RegistryClient(insecure=True)
    blobs = built.layout / "blobs"
    raw = (blobs / built.digest.replace(":", "/")).read_bytes()
    manifest = json.loads(raw)
    media_type = str(manifest.get("mediaType") or oci.OCI_MANIFEST)
    targets = [(built.repository, built.tag), *(extra_tags or [])]
    for repository, tag in targets:
        ref = oci.Reference(registry_hostport, repository, tag)
        for desc in [manifest["config"], *manifest["layers"]]:
            digest = str(desc["digest"])
            if client.blob_exists(ref, digest):
                continue
            if repository != built.repository and client.mount_blob(ref, digest, built.repository):
                continue  # already uploaded under the image's own name
            client.push_blob(ref, (blobs / digest.replace(":", "/")).read_bytes())
        pushed = client.push_manifest(ref, raw, media_type)
        if pushed != built.digest:
            raise ImageBuildError(f"pushed manifest digest {pushed} != layout {built.digest}")
    return f"{registry_hostport}/{built.repository}:{built.tag}@{built.digest}"
