"""Step timing for one operation (a CNI call, an endpoint's creation), for its log line."""

from __future__ import annotations

import time


class Steps:
    """Seconds spent in each step, each timed from the end of the previous one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.started = self._mark = time.monotonic()

    def done(self, step: str) -> None:
        """The step that just ended (a repeated step adds up)."""
        now = time.monotonic()
        self.seconds[step] = self.seconds.get(step, 0.0) + now - self._mark
        self._mark = now

    def fields(self) -> dict[str, str]:
        """``step=0.1234s`` for each step, then ``duration`` in all."""
        out = {step: f"{sec:.4f}s" for step, sec in self.seconds.items()}
        out["duration"] = f"{time.monotonic() - self.started:.4f}s"
        return out
