"""A second, short-lived dev cluster: restart from kept state, with its old port taken."""

from __future__ import annotations

import socket
from pathlib import Path

from ciliumctl.devcluster import DevCluster


def test_restart_from_kept_state_moves_off_a_taken_port(
    tmp_path: Path, dev_cluster: DevCluster
) -> None:
    # dev_cluster is requested only so this test runs after the shared cluster is up and
    # binaries are built; it uses a cluster of its own.
    cluster = DevCluster("restart", tmp_path / "restart")
    try:
        first = cluster.up(1, timeout=180)
        assert first.running and [n.name for n in first.nodes] == ["kwok-node-0"]
        old_port = next(c.port for c in cluster.components() if c.name == "kube-apiserver")
        cluster.client().apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "survivor", "namespace": "default"},
                "data": {"k": "v"},
            }
        )
        stopped = cluster.down(keep_state=True)
        assert stopped == [
            "kwok",
            "kube-scheduler",
            "kube-controller-manager",
            "kube-apiserver",
            "etcd",
        ]
        assert not cluster.status().running

        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", old_port))
            blocker.listen()
            second = cluster.up(1, timeout=180)
        new_port = next(c.port for c in cluster.components() if c.name == "kube-apiserver")
        assert second.running
        assert new_port != old_port
        assert second.server == f"https://127.0.0.1:{new_port}"
        kept = cluster.client().get("v1", "ConfigMap", "survivor", "default")
        assert kept["data"] == {"k": "v"}
    finally:
        if cluster.state_dir.exists():
            cluster.down()
    assert not cluster.state_dir.exists()
