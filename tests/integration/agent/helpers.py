"""Helpers shared by the runtime's integration tests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class HeldConnection:
    """A netprobe ``hold`` process: one TCP connection kept open, one line echoed per call."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.connected = self.proc.stdout.readline().strip() == "connected"

    def echo(self, message: str) -> str:
        """Send a line over the held connection; the reply."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(message + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        """End the process."""
        self.proc.kill()
        self.proc.wait(5)
