"""The dev cluster's binaries: pinned versions, lookup, and builds from the Go module proxy.

Lookup order for each binary: ``$PATH``, ``$KUBEBUILDER_ASSETS``, then the cache
(``~/.cache/ciliumctl/bin``). A binary found on PATH or in KUBEBUILDER_ASSETS is used only if
it reports the pinned version line (Debian's kubectl, for instance, is far too old). When a
binary is missing it is built with ``go`` from a generated wrapper module; builds are
idempotent and serialized by a file lock so parallel test runs do not collide.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ciliumctl.errors import CiliumctlError, ToolMissingError

#: The one place where the dev cluster's versions are pinned.
KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.7.0"
HELM_VERSION = "v3.19.5"
CNI_PLUGINS_VERSION = "v1.6.2"
SYFT_VERSION = "v1.57.1"


@dataclass(frozen=True)
class Recipe:
    """How to build a group of binaries from one Go module at one version."""

    name: str
    module: str
    version: str
    go_version: str
    #: binary name -> Go package path
    packages: dict[str, str]
    #: regex matched against the binary's version output to accept a found binary
    accept: str
    version_args: tuple[str, ...] = ("--version",)
    ldflags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def build_id(self) -> str:
        """The version plus a fingerprint of the build flags: a change to either rebuilds."""
        import hashlib

        digest = hashlib.sha256("\n".join(self.ldflags).encode()).hexdigest()[:12]
        return f"{self.version}+{digest}"


def _kube_ldflags(version: str) -> tuple[str, ...]:
    major, minor = version.lstrip("v").split(".")[:2]
    out = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        out += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return tuple(out)


def _minor_pattern(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    return rf"v?{major}\.{minor}\.\d+"


RECIPES: dict[str, Recipe] = {
    "kubernetes": Recipe(
        name="kubernetes",
        module="k8s.io/kubernetes",
        version=KUBERNETES_VERSION,
        go_version="1.24.0",
        packages={
            "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
            "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
            "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
            "kubectl": "k8s.io/kubernetes/cmd/kubectl",
            # real worker nodes (`dev-cluster up --real-nodes`) and `--cni bridge`'s kube-proxy
            "kubelet": "k8s.io/kubernetes/cmd/kubelet",
            "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
        },
        accept=rf"Kubernetes {_minor_pattern(KUBERNETES_VERSION)}|"
        rf"Client Version: {_minor_pattern(KUBERNETES_VERSION)}",
        ldflags=_kube_ldflags(KUBERNETES_VERSION),
    ),
    "etcd": Recipe(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version=ETCD_VERSION,
        go_version="1.26.0",
        packages={"etcd": "go.etcd.io/etcd/server/v3"},
        accept=r"etcd Version: 3\.[56]\.\d+",
    ),
    "kwok": Recipe(
        name="kwok",
        module="sigs.k8s.io/kwok",
        version=KWOK_VERSION,
        go_version="1.24.0",
        packages={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
        accept=r"0\.[7-9]\.\d+|0\.1\d\.\d+",
        ldflags=(f"-X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION.lstrip('v')}",),
    ),
    "helm": Recipe(
        name="helm",
        module="helm.sh/helm/v3",
        version=HELM_VERSION,
        go_version="1.24.0",
        packages={"helm": "helm.sh/helm/v3/cmd/helm"},
        accept=r"v3\.(1[89]|[2-9]\d)\.\d+",
        version_args=("version", "--short"),
        # helm template assumes this Kubernetes version when it is not told one; the default
        # (1.20) is older than charts' kubeVersion constraints allow.
        ldflags=(
            f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
            "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
            f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={KUBERNETES_VERSION.split('.')[1]}",
        ),
    ),
    # Image signatures and attestations (`cilium verify`, `cilium sbom`): the tests sign and
    # attest with the real cosign and push to a real OCI registry on 127.0.0.1.
    "cosign": Recipe(
        name="cosign",
        module="github.com/sigstore/cosign/v2",
        version="v2.6.5",
        go_version="1.25.0",
        packages={"cosign": "github.com/sigstore/cosign/v2/cmd/cosign"},
        accept=r"GitVersion:\s+v2\.(6|[7-9]|\d\d)\.\d+",
        version_args=("version",),
        ldflags=("-X sigs.k8s.io/release-utils/version.gitVersion=v2.6.5",),
    ),
    "registry": Recipe(
        name="registry",
        module="github.com/distribution/distribution/v3",
        version="v3.1.2",
        go_version="1.26.0",
        packages={"registry": "github.com/distribution/distribution/v3/cmd/registry"},
        accept=r"registry \S+ v3\.\d+\.\d+",
        ldflags=("-X github.com/distribution/distribution/v3/version.version=v3.1.2",),
    ),
    # The reference CNI plugins: `dev-cluster up --cni bridge` makes real nodes usable before
    # Cilium is installed.
    "cni-plugins": Recipe(
        name="cni-plugins",
        module="github.com/containernetworking/plugins",
        version=CNI_PLUGINS_VERSION,
        go_version="1.24.0",
        packages={
            "bridge": "github.com/containernetworking/plugins/plugins/main/bridge",
            "host-local": "github.com/containernetworking/plugins/plugins/ipam/host-local",
            "loopback": "github.com/containernetworking/plugins/plugins/main/loopback",
            "portmap": "github.com/containernetworking/plugins/plugins/meta/portmap",
        },
        accept=r"CNI \S+ plugin v1\.\d+",
        version_args=(),
        ldflags=(
            "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion="
            + CNI_PLUGINS_VERSION,
        ),
    ),
    # SBOMs of the images built here, attached as cosign attestations (as Cilium's are).
    "syft": Recipe(
        name="syft",
        module="github.com/anchore/syft",
        version=SYFT_VERSION,
        go_version="1.25.0",
        packages={"syft": "github.com/anchore/syft/cmd/syft"},
        accept=r"Version:\s+1\.\d+\.\d+",
        version_args=("version",),
        ldflags=(f"-X main.version={SYFT_VERSION.lstrip('v')}",),
    ),
}

#: binary name -> recipe name
BINARIES: dict[str, str] = {b: r.name for r in RECIPES.values() for b in r.packages}


def cache_dir() -> Path:
    """Root of ciliumctl's cache (``$CILIUMCTL_CACHE_DIR`` or ``$XDG_CACHE_HOME/ciliumctl``)."""
    if os.environ.get("CILIUMCTL_CACHE_DIR"):
        return Path(os.environ["CILIUMCTL_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "ciliumctl"


def bin_dir() -> Path:
    """Where built binaries are kept."""
    return cache_dir() / "bin"


def _manifest_path() -> Path:
    return bin_dir() / "versions.json"


def _read_manifest() -> dict[str, str]:
    try:
        data = json.loads(_manifest_path().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _version_ok(path: Path, recipe: Recipe) -> bool:
    args = ("version", "--client") if path.name == "kubectl" else recipe.version_args
    try:
        proc = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return re.search(recipe.accept, proc.stdout + proc.stderr) is not None


def find(name: str) -> Path | None:
    """Locate binary ``name`` at an acceptable version without building it."""
    recipe = RECIPES[BINARIES[name]]
    candidates: list[Path] = []
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and (Path(assets) / name).is_file():
        candidates.append(Path(assets) / name)
    for cand in candidates:
        if cand.resolve().parent != bin_dir().resolve() and _version_ok(cand, recipe):
            return cand
    cached = bin_dir() / name
    cached_ok = cached.is_file() and os.access(cached, os.X_OK)
    if cached_ok and _read_manifest().get(name) == recipe.build_id:
        return cached
    return None


def missing(names: list[str] | None = None) -> list[str]:
    """The binaries (all known, or ``names``) that are not available."""
    return [n for n in (names or list(BINARIES)) if find(n) is None]


@contextmanager
def _build_lock() -> Iterator[None]:
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise FileNotFoundError("go")
    return go


def _run_go(args: list[str], cwd: Path, progress: Callable[[str], None]) -> str:
    goflags = " ".join(f for f in [os.environ.get("GOFLAGS", ""), "-mod=mod"] if f)
    env = dict(os.environ, GOFLAGS=goflags, CGO_ENABLED="0")
    proc = subprocess.Popen(
        [_go(), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = [*tail[-39:], line]
        progress(line)
    if proc.wait() != 0:
        raise CiliumctlError(
            f"`go {' '.join(args[:2])}` failed in {cwd}:\n" + "\n".join(tail),
            "check that the Go module proxy is reachable (GOPROXY) and Go is recent enough",
        )
    return "\n".join(tail)


def staging_replaces(kubernetes_gomod: str, version: str) -> list[str]:
    """The ``replace`` lines mapping each k8s.io staging module to its published v0.x.y."""
    staging_version = "v0." + version.lstrip("v").split(".", 1)[1]
    mods = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", kubernetes_gomod, re.M)
    return [f"\t{m} => {m} {staging_version}" for m in sorted(set(mods))]


def wrapper_module(recipe: Recipe, replaces: list[str]) -> tuple[str, str]:
    """The go.mod and tools.go of the wrapper module that builds ``recipe``."""
    gomod = [
        f"module ciliumctl.local/build/{recipe.name}",
        "",
        f"go {recipe.go_version}",
        "",
        f"require {recipe.module} {recipe.version}",
    ]
    if replaces:
        gomod += ["", "replace (", *replaces, ")"]
    imports = "\n".join(f'\t_ "{p}"' for p in sorted(set(recipe.packages.values())))
    tools = f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"
    return "\n".join(gomod) + "\n", tools


def build(recipe_name: str, progress: Callable[[str], None] = lambda _: None) -> list[Path]:
    """Build every binary of one recipe into the cache (no-op when already built)."""
    recipe = RECIPES[recipe_name]
    try:
        _go()
    except FileNotFoundError:
        names = ", ".join(recipe.packages)
        raise ToolMissingError(
            f"{names} {recipe.version} not found and `go` is not installed to build it",
            f"either install Go (1.24 or newer) so ciliumctl builds it from the Go module proxy, "
            f"or put {names} ({recipe.version}) on PATH, in $KUBEBUILDER_ASSETS or in "
            f"{bin_dir()}",
        ) from None
    with _build_lock():
        manifest = _read_manifest()
        targets = [bin_dir() / b for b in recipe.packages]
        if all(t.is_file() and manifest.get(t.name) == recipe.build_id for t in targets):
            return targets
        work = cache_dir() / "build" / f"{recipe.name}-{recipe.version}"
        work.mkdir(parents=True, exist_ok=True)
        replaces: list[str] = []
        if recipe.name == "kubernetes":
            progress(f"resolving {recipe.module}@{recipe.version}")
            info = json.loads(
                _run_go(
                    ["mod", "download", "-json", f"{recipe.module}@{recipe.version}"],
                    work,
                    lambda _: None,
                )
                or "{}"
            )
            replaces = staging_replaces(Path(info["GoMod"]).read_text(), recipe.version)
        gomod, tools = wrapper_module(recipe, replaces)
        (work / "go.mod").write_text(gomod)
        (work / "tools.go").write_text(tools)
        progress(f"resolving dependencies of {recipe.module}@{recipe.version}")
        _run_go(["mod", "tidy"], work, lambda _: None)
        bin_dir().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=bin_dir()) as tmp:
            # One `go build` for all binaries of a recipe: shared packages compile once and
            # the links run in parallel. With several packages, -o names each binary after
            # its package's last path element (which is how RECIPES names them).
            names = ", ".join(recipe.packages)
            step = f"building {names} {recipe.version}"
            progress(step)
            compiled = 0

            def count(_line: str) -> None:
                nonlocal compiled
                compiled += 1
                progress(f"{step}: {compiled} packages")

            single = len(recipe.packages) == 1
            out = Path(tmp) / next(iter(recipe.packages)) if single else Path(tmp)
            args = ["build", "-v", "-trimpath", "-o", f"{out}{'' if single else os.sep}"]
            args += ["-ldflags", " ".join(("-s", "-w", *recipe.ldflags))]
            _run_go([*args, *recipe.packages.values()], work, count)
            for binary in recipe.packages:
                os.replace(Path(tmp) / binary, bin_dir() / binary)
                manifest[binary] = recipe.build_id
        _manifest_path().write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return targets


def ensure(
    names: list[str] | None = None, progress: Callable[[str], None] = lambda _: None
) -> dict[str, Path]:
    """Find every binary in ``names`` (default: all), building missing ones."""
    wanted = names or list(BINARIES)
    found: dict[str, Path] = {}
    for name in wanted:
        path = find(name)
        if path is None:
            build(BINARIES[name], progress)
            path = bin_dir() / name
        found[name] = path
    return found
