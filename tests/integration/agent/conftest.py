"""The runtime's own dev cluster (``ag-it``) with the CRDs the operator registers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client, ObjectRef
from ciliumctl.operator.crds import register_missing
from tests.datapath.conftest import bpffs  # noqa: F401 - the kernel tests' bpffs fixture


@pytest.fixture(scope="session")
def ag_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """Real etcd + kube-apiserver + controllers with 2 kwok nodes, removed afterwards."""
    state = Path(os.environ.get("CILIUMCTL_TEST_STATE_DIR") or tmp_path_factory.mktemp("ag"))
    cluster = DevCluster("ag-it", state_dir=state / "ag-it")
    cluster.up(2, timeout=240)
    try:
        client = cluster.client()
        names = register_missing(client)
        client.wait_ready(
            [ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", n) for n in names],
            timeout=60,
        )
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def ag_client(ag_cluster: DevCluster) -> Client:
    """A fresh admin client (one connection pool per test)."""
    return Client(str(ag_cluster.kubeconfig_path), ag_cluster.context)
