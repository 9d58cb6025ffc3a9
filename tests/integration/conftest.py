"""One dev cluster for the whole integration session: real etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok nodes. Never a mocked API."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciliumctl.devcluster import DevCluster
from ciliumctl.k8s import Client

NODES = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory needs the cluster."""
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def dev_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A 3-node dev cluster, up for the session and removed afterwards."""
    state = Path(os.environ.get("CILIUMCTL_TEST_STATE_DIR") or tmp_path_factory.mktemp("dev"))
    name = os.environ.get("CILIUMCTL_TEST_CLUSTER", "it")  # e.g. one per engineer
    cluster = DevCluster(name, state_dir=state / name)
    cluster.up(NODES, timeout=240)
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def client(dev_cluster: DevCluster) -> Client:
    """The admin client of the session's dev cluster."""
    return Client(str(dev_cluster.kubeconfig_path), dev_cluster.context)


@pytest.fixture
def namespace(client: Client, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    client.wait_ready([_ns_ref(name)], timeout=30)
    deadline = time.monotonic() + 30
    while client.get_or_none("v1", "ServiceAccount", "default", name) is None:
        assert time.monotonic() < deadline, "default ServiceAccount never appeared"
        time.sleep(0.2)
    yield name
    client.delete("v1", "Namespace", name)


def _ns_ref(name: str):  # type: ignore[no-untyped-def]
    from ciliumctl.k8s import ObjectRef

    return ObjectRef("v1", "Namespace", name)
