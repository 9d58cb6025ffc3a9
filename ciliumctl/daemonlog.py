"""Logging of the runtime daemons (agent, operator) in upstream's text shape.

Upstream's daemons write ``level=info`` / ``level=error`` in lower case, and tools match
that: cilium-cli's check-log-errors looks for ``level=error`` in the agents' logs. Python's
level names are upper case, so the daemons log through this formatter.
"""

from __future__ import annotations

import logging

FORMAT = "time=%(asctime)s level=%(levelname)s %(name)s: %(message)s"


class LowerLevelFormatter(logging.Formatter):
    """``level=error`` rather than ``level=ERROR``; the record itself is left as it was."""

    def format(self, record: logging.LogRecord) -> str:
        original = record.levelname
        record.levelname = original.lower()
        try:
            return super().format(record)
        finally:
            record.levelname = original


def setup(level: int = logging.INFO) -> None:
    """Root logging to stderr in upstream's shape (idempotent: an earlier handler is kept)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(LowerLevelFormatter(FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
