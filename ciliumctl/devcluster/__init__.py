"""The local cluster used by `make demo` and by the integration tests."""

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
