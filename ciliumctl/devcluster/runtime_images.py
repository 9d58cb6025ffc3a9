"""Recipes of the runtime's images (agent ``cilium`` and ``operator-generic``) for the dev
cluster's image builder; the init-container helper scripts come from ``agent_image/``.

The agent image is Debian with bcc (``python3-bpfcc``), the kernel header packages bcc
compiles against, iproute2, and the project's wheel with all its dependencies; the operator
image is the wheel on a minimal Debian. Registering is explicit (:func:`register`) so that
importing the image catalog stays cheap.
"""

from __future__ import annotations

from ciliumctl.devcluster import images
from ciliumctl.devcluster.images.builder import project_root

AGENT = "cilium"
OPERATOR = "operator-generic"
#: Upstream references the local images stand in for (the chart's image.* defaults).
AGENT_ALIASES = ("quay.io/cilium/cilium:v1.18.0",)
OPERATOR_ALIASES = ("quay.io/cilium/operator-generic:v1.18.0",)
_SCRIPTS = {
    "/init-container.sh": "init-container.sh",
    "/install-plugin.sh": "install-plugin.sh",
    "/cni-uninstall.sh": "cni-uninstall.sh",
    "/usr/bin/cilium-mount": "cilium-mount",
    "/usr/bin/cilium-sysctlfix": "cilium-sysctlfix",
}


def recipes() -> tuple[images.Recipe, images.Recipe]:
    """The agent and operator recipes."""
    scripts = project_root() / "agent_image"
    agent = images.Recipe(
        name=AGENT,
        tag=images.TAG,
        packages=(
            "bash",
            "iproute2",
            "iptables",
            "jq",  # upstream's agent image has it: cilium-cli's drop check pipes into jq
            "kmod",
            "mount",
            "python3-bpfcc",
            "util-linux",
            "linux-headers-amd64",
        ),
        python=images.Python(None, script_aliases=(("cilium", "cilium-dbg"),)),
        files=tuple(
            images.File(path, source=scripts / name, mode=0o755) for path, name in _SCRIPTS.items()
        ),
        entrypoint=(),
        cmd=("cilium-agent", "--config-dir=/tmp/cilium/config-map"),
        labels={"io.cilium.component": "agent"},
        description="cilium-agent with its eBPF datapath (bcc), cilium-dbg, cilium-cni",
    )
    operator = images.Recipe(
        name=OPERATOR,
        tag=images.TAG,
        packages=(),
        python=images.Python(("kubernetes", "pyyaml", "prometheus_client")),
        cmd=("cilium-operator-generic", "--config-dir=/tmp/cilium/config-map"),
        labels={"io.cilium.component": "operator"},
        description="cilium-operator: leader election, cluster-pool IPAM, garbage collection",
    )
    return agent, operator


def register() -> None:
    """Make the builder know both images (idempotent)."""
    agent, operator = recipes()
    images.register(agent, aliases=AGENT_ALIASES, replace=True)
    images.register(operator, aliases=OPERATOR_ALIASES, replace=True)
