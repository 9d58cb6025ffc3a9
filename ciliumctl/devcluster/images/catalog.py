"""The dev cluster's images: built-in recipes and the upstream names they stand in for.

Upstream manifests (cilium-cli's connectivity test, kubelet's sandbox, kube-proxy) name
public images; the dev cluster never pulls those. Each is built here from Debian packages
and the project's own code, pushed to the local registry under ``ciliumctl/<name>`` and
under the upstream repository and tag in :data:`UPSTREAM_ALIASES`, so that containerd's
registry mirrors resolve the upstream names to these images.
"""

from __future__ import annotations

from ciliumctl import __version__
from ciliumctl.devcluster.binaries import KUBERNETES_VERSION
from ciliumctl.devcluster.images.recipe import File, Python, Recipe, Symlink
from ciliumctl.errors import UsageError

TAG = __version__

#: The build argument that adds a CA (PEM file) to an image's trust bundle: the dev
#: cluster's "world" CA, so the client trusts the world's HTTPS servers.
WORLD_CA = "world-ca"

_SERVER = {"org.opencontainers.image.source": "ciliumctl"}

_BUILTIN: tuple[Recipe, ...] = (
    Recipe(
        name="pause",
        tag=TAG,
        files=(File("/pause", artifact="pause", mode=0o755),),
        entrypoint=("/pause",),
        description="pod sandbox: blocks and reaps children (static C binary, scratch)",
        labels=_SERVER,
    ),
    Recipe(
        name="client",
        tag=TAG,
        packages=(
            "bind9-dnsutils",
            "ca-certificates",
            "curl",
            "iproute2",
            "iputils-ping",
            "netcat-openbsd",
        ),
        files=(File("/usr/bin/pause", artifact="pause", mode=0o755),),
        # cilium-cli runs its client pods with `/bin/ash -c ...` (alpine's shell)
        symlinks=(Symlink("/usr/bin/ash", "dash"),),
        ca_arg=WORLD_CA,
        cmd=("/usr/bin/pause",),
        description="connectivity client: curl, ping, dig/nslookup, ip, nc, /usr/bin/pause",
        labels=_SERVER,
    ),
    Recipe(
        name="echo",
        tag=TAG,
        packages=("curl",),
        python=Python(deps=()),
        entrypoint=("/usr/bin/python3", "-m", "ciliumctl.devcluster.echo"),
        env={"PORT": "8080"},
        exposed_ports=("8080/tcp", "8443/tcp"),
        description="HTTP(S) echo server: answers JSON with the request it saw",
        labels=_SERVER,
    ),
    Recipe(
        name="dns-test",
        tag=TAG,
        packages=(),
        python=Python(deps=()),
        entrypoint=("/usr/bin/python3", "-m", "ciliumctl.devcluster.dns"),
        cmd=("-conf", "/etc/coredns/Corefile"),
        exposed_ports=("53/udp", "53/tcp"),
        description="DNS test server (CoreDNS-style Corefile: local, hosts, forward, ready)",
        labels=_SERVER,
    ),
    Recipe(
        name="cluster-dns",
        tag=TAG,
        packages=(),
        python=Python(deps=("kubernetes", "pyyaml")),
        entrypoint=("/usr/bin/python3", "-m", "ciliumctl.devcluster.dns"),
        cmd=("-conf", "/etc/coredns/Corefile"),
        exposed_ports=("53/udp", "53/tcp", "8080/tcp", "8181/tcp"),
        description="cluster DNS: Services from the API server, the rest forwarded",
        labels=_SERVER,
    ),
    Recipe(
        name="kube-proxy",
        tag=TAG,
        packages=("conntrack", "iptables", "ipset", "kmod"),
        files=(File("/usr/local/bin/kube-proxy", artifact="kube-proxy", mode=0o755),),
        entrypoint=("/usr/local/bin/kube-proxy",),
        description=f"kube-proxy {KUBERNETES_VERSION} with iptables and conntrack",
        labels=_SERVER,
    ),
)

RECIPES: dict[str, Recipe] = {r.name: r for r in _BUILTIN}

#: Upstream image reference -> the local ``repository:tag`` that stands in for it (the
#: tags cilium-cli 1.18's connectivity test and Kubernetes 1.34 use).
UPSTREAM_ALIASES: dict[str, str] = {
    "quay.io/cilium/alpine-curl:v1.10.0": f"ciliumctl/client:{TAG}",
    "quay.io/cilium/json-mock:v1.3.8": f"ciliumctl/echo:{TAG}",
    "docker.io/coredns/coredns:1.12.0": f"ciliumctl/dns-test:{TAG}",
    "registry.k8s.io/coredns/coredns:v1.12.1": f"ciliumctl/cluster-dns:{TAG}",
    "registry.k8s.io/pause:3.10": f"ciliumctl/pause:{TAG}",
    "registry.k8s.io/pause:3.10.1": f"ciliumctl/pause:{TAG}",
    f"registry.k8s.io/kube-proxy:{KUBERNETES_VERSION}": f"ciliumctl/kube-proxy:{TAG}",
}


def register(recipe: Recipe, *, aliases: tuple[str, ...] = (), replace: bool = False) -> None:
    """Add ``recipe`` (e.g. the agent image) so ``build``/``push``/``names`` know it.

    ``aliases`` are upstream references (``quay.io/cilium/cilium:v1.18.0``) it stands in
    for. Registering a name twice is an error unless ``replace`` is set.
    """
    if recipe.name in RECIPES and not replace and RECIPES[recipe.name] != recipe:
        raise UsageError(
            f"an image recipe named {recipe.name!r} is already registered",
            "pick another name or pass replace=True",
        )
    RECIPES[recipe.name] = recipe
    for upstream in aliases:
        UPSTREAM_ALIASES[upstream] = f"{recipe.repository}:{recipe.tag}"


def get(name: str) -> Recipe:
    """The recipe called ``name``; a usage error lists the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise UsageError(
            f"unknown image {name!r}", f"choose from {', '.join(sorted(RECIPES))}"
        ) from None


def aliases_for(recipe: Recipe) -> list[str]:
    """The upstream references that resolve to ``recipe``'s image."""
    local = f"{recipe.repository}:{recipe.tag}"
    return sorted(up for up, loc in UPSTREAM_ALIASES.items() if loc == local)
