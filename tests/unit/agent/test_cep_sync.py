"""CiliumEndpoints are written by the agent's sync thread: a CNI ADD does not wait for the API
server, the latest state of an endpoint wins, a refused write is retried, and an endpoint
deleted before its turn is not written back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ciliumctl.agent import daemon
from ciliumctl.agent.config import AgentConfig
from ciliumctl.agent.daemon import Agent
from tests.unit.agent.fakes import MemoryIdentityStore, RecordingDatapath


class SlowClient:
    """Records each CiliumEndpoint apply; holds them until released; can refuse some."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.applied: list[tuple[str, str]] = []
        self.refuse = 0

    def apply(self, obj: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        self.release.wait(10)
        if self.refuse:
            self.refuse -= 1
            raise RuntimeError("the server is currently unable to handle the request")
        self.applied.append((obj["metadata"]["name"], obj["status"]["state"]))
        return obj


def _pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "prod", "uid": name, "labels": {"app": name}}}


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[Agent, SlowClient]]:
    config = AgentConfig.load(None, {"ipam": "cluster-pool", "state-dir": str(tmp_path)})
    client = SlowClient()
    a = Agent(config, RecordingDatapath(), client, "node-a")
    a.allocator._client = MemoryIdentityStore()
    try:
        yield a, client
    finally:
        client.release.set()
        a.stop()


def test_add_returns_before_the_api_server_answers(agent: tuple[Agent, SlowClient]) -> None:
    a, client = agent
    ep = a.endpoints.add(_pod("web"), {}, ifname="lxc1", ipv4="10.0.1.7")
    assert ep.state == "ready" and client.applied == []  # the write is still held
    client.release.set()
    assert a.flush_ceps(10)
    assert client.applied == [("web", "ready")]
    status = a.controller(f"sync-to-k8s-ciliumendpoint ({ep.id})").to_api()["status"]
    assert status["success-count"] == 1 and status["failure-count"] == 0


def test_deleted_before_its_turn_is_not_written(agent: tuple[Agent, SlowClient]) -> None:
    a, client = agent
    first = a.endpoints.add(_pod("first"), {}, ifname="lxc1", ipv4="10.0.1.7")
    gone = a.endpoints.add(_pod("gone"), {}, ifname="lxc2", ipv4="10.0.1.8")
    a.remove_endpoint(gone.id)
    client.release.set()
    assert a.flush_ceps(10)
    assert [name for name, _ in client.applied] == [first.pod_name]


def test_a_refused_write_is_retried(
    agent: tuple[Agent, SlowClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon, "CEP_RETRY_S", 0.05)
    a, client = agent
    client.refuse = 1
    client.release.set()
    ep = a.endpoints.add(_pod("web"), {}, ifname="lxc1", ipv4="10.0.1.7")
    assert a.flush_ceps(10)
    assert client.applied == [("web", "ready")]
    status = a.controller(f"sync-to-k8s-ciliumendpoint ({ep.id})").to_api()["status"]
    assert status["consecutive-failure-count"] == 0 and status["failure-count"] == 1
