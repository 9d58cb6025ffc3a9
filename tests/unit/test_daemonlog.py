"""The daemons log ``level=error`` in lower case, as upstream's (what check-log-errors reads)."""

from __future__ import annotations

import logging

from ciliumctl.daemonlog import FORMAT, LowerLevelFormatter


def test_levels_are_lower_case_and_the_record_is_untouched() -> None:
    fmt = LowerLevelFormatter(FORMAT)
    record = logging.LogRecord("cilium-agent.policy", logging.ERROR, __file__, 1, "boom", (), None)
    line = fmt.format(record)
    assert " level=error cilium-agent.policy: boom" in line and line.startswith("time=")
    assert record.levelname == "ERROR"  # other handlers still see Python's name
    warn = logging.LogRecord("x", logging.WARNING, __file__, 1, "w", (), None)
    assert " level=warning x: w" in fmt.format(warn)
