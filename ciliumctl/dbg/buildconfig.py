"""``cilium-dbg build-config``: the agent's configuration directory, by the nodeconfig engine.

The same engine computes ``cilium config node effective``, so what that command prints for a
node is what the node's agent runs with. Files are written to a fresh directory and swapped
in, so a half-written configuration is never read.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ciliumctl.errors import UsageError
from ciliumctl.nodeconfig.cluster import list_cncs, node_info, read_configmaps, served_versions
from ciliumctl.nodeconfig.engine import Effective, Engine, Inputs, default_sources, parse_sources

DEFAULT_DEST = "/tmp/cilium/config-map"  # noqa: S108 - the directory the chart mounts


@dataclass(frozen=True)
class BuildConfigOptions:
    """build-config's flags and environment."""

    node: str
    namespace: str
    sources: tuple[str, ...] = ()
    allow_keys: tuple[str, ...] = ()
    deny_keys: tuple[str, ...] = ()
    dest: Path = Path(DEFAULT_DEST)


def compute(client: Any, options: BuildConfigOptions) -> Effective:
    """The node's effective configuration from the cluster's sources."""
    if not options.node:
        raise UsageError(
            "no node name: set K8S_NODE_NAME (the chart sets it from spec.nodeName)",
            "export K8S_NODE_NAME=<node> or pass --node-name",
        )
    sources = (
        parse_sources(options.sources, options.namespace)
        if options.sources
        else default_sources(options.namespace)
    )
    configmaps, _ = read_configmaps(client, sources)
    cncs = list_cncs(client) if served_versions(client) else []
    node = client.get("v1", "Node", options.node)
    inputs = Inputs(
        namespace=options.namespace,
        configmaps=configmaps,
        cncs=cncs,
        sources=sources,
        allow_keys=[k for v in options.allow_keys for k in v.split(",") if k],
        deny_keys=[k for v in options.deny_keys for k in v.split(",") if k],
    )
    return Engine(inputs).resolve(node_info(node))


def write(effective: Effective, dest: Path) -> list[str]:
    """Replace ``dest`` with one file per key; the keys written."""
    dest = dest.absolute()
    staging = dest.with_name(dest.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    values = effective.plain()
    for key, value in values.items():
        (staging / key).write_text(value)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.rename(dest, old)
    os.rename(staging, dest)
    shutil.rmtree(old, ignore_errors=True)
    return sorted(values)
