"""The local cluster used by `make demo` and by the integration tests.

Names are loaded lazily so that ``ciliumctl.devcluster.binaries`` (which install/upgrade use
to find helm) does not pull in the cluster code and its certificate libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ciliumctl.devcluster.cluster import (
        DEFAULT_NAME,
        ClusterStatus,
        ComponentStatus,
        DevCluster,
        DevClusterError,
        NodeStatus,
    )

__all__ = [
    "DEFAULT_NAME",
    "ClusterStatus",
    "ComponentStatus",
    "DevCluster",
    "DevClusterError",
    "NodeStatus",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ciliumctl.devcluster import cluster

        return getattr(cluster, name)
    raise AttributeError(f"module 'ciliumctl.devcluster' has no attribute {name!r}")
