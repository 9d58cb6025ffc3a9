"""One dev cluster with two real nodes (bridge CNI, kube-proxy, cluster DNS) for the module.

Real kubelet, containerd and runc in namespaces of their own, images built here and pulled
from the cluster's registry; needs root (CI runs these as root, where they must not skip).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client

REAL_NODES = 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory runs real nodes."""
    for item in items:
        if "tests/realnodes" in str(item.fspath):
            item.add_marker(pytest.mark.realnodes)


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A dev cluster with 2 real nodes and the bridge CNI, removed afterwards."""
    state = Path(os.environ.get("CILIUMCTL_TEST_STATE_DIR") or tmp_path_factory.mktemp("rn"))
    name = os.environ.get("CILIUMCTL_TEST_REAL_CLUSTER", "rn-it")  # e.g. one per engineer
    cluster = DevCluster(name, state_dir=state / name)
    try:
        cluster.up(0, real_nodes=REAL_NODES, cni="bridge", timeout=300)
        yield cluster
    finally:
        if cluster.exists():
            cluster.down()


@pytest.fixture(scope="session")
def real_client(real_cluster: DevCluster) -> Client:
    """The admin client of the real-node cluster."""
    return Client(str(real_cluster.kubeconfig_path), real_cluster.context)
