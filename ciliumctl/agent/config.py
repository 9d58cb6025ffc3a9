"""The agent's configuration: the directory ``cilium-dbg build-config`` wrote, then flags.

One file per key (``/tmp/cilium/config-map/<key>`` holds the value), as upstream's agent
reads ``--config-dir``. ``--key=value`` flags override the directory. Typed accessors cover
the keys this agent acts on; every key is kept and served by ``/v1/config``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ciliumctl.datapath.model import Enforcement
from ciliumctl.errors import ConfigError, UsageError
from ciliumctl.nodeconfig.engine import is_configmap_key

DEFAULT_CONFIG_DIR = "/tmp/cilium/config-map"  # noqa: S108 - the path the chart mounts
DEFAULT_SOCKET = "/var/run/cilium/cilium.sock"
DEFAULT_STATE_DIR = "/var/run/cilium"
#: Defaults of the keys the agent reads (upstream's defaults).
DEFAULTS: dict[str, str] = {
    "cluster-name": "default",
    "cluster-id": "0",
    "enable-policy": "default",
    "identity-allocation-mode": "crd",
    "ipam": "cluster-pool",
    "routing-mode": "tunnel",
    "tunnel-protocol": "vxlan",
    "kube-proxy-replacement": "false",
    "enable-ipv4": "true",
    "enable-ipv6": "false",
    "enable-ipv4-masquerade": "true",
    "enable-bpf-masquerade": "false",
    "enable-hubble": "false",
    "enable-l7-proxy": "true",
    "enable-ipsec": "false",
    "enable-wireguard": "false",
    "allow-localhost": "auto",
    "labels": "",
    "socket-path": DEFAULT_SOCKET,
    "state-dir": DEFAULT_STATE_DIR,
    "agent-health-port": "9879",
    "enable-health-checking": "true",
    "enable-k8s-networkpolicy": "true",
    "monitor-aggregation": "medium",
    "cluster-health-port": "4240",
    "prometheus-serve-addr": ":9962",
    "write-cni-conf-when-ready": "",
    "cni-log-file": "/var/run/cilium/cilium-cni.log",
    "identity-heartbeat-timeout": "30m0s",
    "bpf-root": "/sys/fs/bpf",
    "monitor-queue-size": "4096",
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")


def parse_duration(text: str) -> float:
    """Go durations (``30m0s``, ``1h``, ``500ms``) in seconds."""
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ConfigError(f"{text!r} is not a duration", "use e.g. 30m0s, 15m or 90s")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def read_config_dir(path: Path) -> dict[str, str]:
    """Key -> value from a config directory (dot files and sub-directories skipped)."""
    if not path.is_dir():
        raise ConfigError(
            f"config directory {path} does not exist",
            "run `cilium-dbg build-config` first (the chart's config init container does)",
        )
    out: dict[str, str] = {}
    for entry in sorted(path.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        out[entry.name] = entry.read_text().strip()
    return out


def parse_flags(argv: Sequence[str]) -> tuple[dict[str, str], str | None]:
    """``--key=value`` / ``--key value`` / ``--flag`` into overrides, and ``--config-dir``."""
    overrides: dict[str, str] = {}
    config_dir: str | None = None
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise UsageError(f"unexpected argument {arg!r}", "pass options as --key=value")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value, i = args[i + 1], i + 1
            else:
                value = "true"
        if not is_configmap_key(key):
            raise UsageError(f"--{key} is not a valid option name", "use --key=value")
        if key == "config-dir":
            config_dir = value
        else:
            overrides[key] = value
        i += 1
    return overrides, config_dir


@dataclass
class AgentConfig:
    """Every key the agent runs with (defaults, config directory, flags) and typed views."""

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls, config_dir: Path | None = None, overrides: Mapping[str, str] | None = None
    ) -> AgentConfig:
        """Defaults <- config directory <- flags."""
        values = dict(DEFAULTS)
        sources = dict.fromkeys(DEFAULTS, "default")
        if config_dir is not None:
            for key, value in read_config_dir(config_dir).items():
                values[key], sources[key] = value, f"config-dir:{config_dir}"
        for key, value in (overrides or {}).items():
            values[key], sources[key] = value, "flag"
        config = cls(values, sources)
        config.validate()
        return config

    def get(self, key: str) -> str:
        """A value (empty when unset)."""
        return self.values.get(key, "")

    def flag(self, key: str) -> bool:
        """A boolean key."""
        return self.get(key).lower() in ("true", "1", "yes", "strict")

    def validate(self) -> None:
        """Reject values this agent cannot run with, naming the key and the fix."""
        choices = {
            "enable-policy": [e.value for e in Enforcement],
            "identity-allocation-mode": ["crd"],
            "ipam": ["cluster-pool", "kubernetes"],
            "routing-mode": ["tunnel", "native"],
            "tunnel-protocol": ["vxlan", "geneve", ""],
        }
        for key, allowed in choices.items():
            if self.get(key) not in allowed:
                raise ConfigError(
                    f"{key}={self.get(key)!r} ({self.sources.get(key)}) is not supported by "
                    "this agent",
                    f"use one of {', '.join(a or '(empty)' for a in allowed)}",
                )
        if self.flag("enable-bpf-masquerade"):
            raise ConfigError(
                f"enable-bpf-masquerade=true ({self.sources.get('enable-bpf-masquerade')}) is "
                "not supported by this agent: it masquerades with iptables",
                "set the Helm value bpf.masquerade=false",
            )
        parse_duration(self.get("identity-heartbeat-timeout"))
        for key in ("agent-health-port", "cluster-health-port", "cluster-id", "monitor-queue-size"):
            if not self.get(key).isdigit():
                raise ConfigError(f"{key}={self.get(key)!r} is not a number", f"set {key} to one")

    @property
    def enforcement(self) -> Enforcement:
        """The policy enforcement mode."""
        return Enforcement(self.get("enable-policy"))

    @property
    def cluster(self) -> str:
        """The cluster name (the io.cilium.k8s.policy.cluster label)."""
        return self.get("cluster-name") or "default"

    @property
    def label_patterns(self) -> list[str]:
        """The ``labels`` option's patterns."""
        from ciliumctl.validators.labels import split_config

        return split_config(self.get("labels"))

    @property
    def socket_path(self) -> Path:
        """Where the API socket is created."""
        return Path(self.get("socket-path") or DEFAULT_SOCKET)

    @property
    def metrics_port(self) -> int | None:
        """The Prometheus port from ``prometheus-serve-addr`` (None when disabled)."""
        addr = self.get("prometheus-serve-addr")
        port = addr.rpartition(":")[2]
        return int(port) if port.isdigit() else None
