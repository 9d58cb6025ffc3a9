"""A port-forward connection whose stream fails reports one line naming the pod."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from ciliumctl.k8s import portforward


def test_a_stream_that_fails_to_open_is_reported_with_the_pod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def reset(*_: Any) -> Any:
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(portforward, "open_stream", reset)
    local, peer = socket.socketpair()
    errors: list[str] = []
    portforward._forward_one(
        None,  # type: ignore[arg-type]
        local,
        "kube-system",
        "relay-0",
        4245,
        threading.Event(),
        errors.append,
    )
    assert errors == ["pod kube-system/relay-0 port 4245: connection reset by peer"]
    assert local.fileno() == -1  # the local connection was closed
    peer.close()
