"""The exec frame demultiplexer behind Client.exec_stream (no cluster needed)."""

from __future__ import annotations

import json

from ciliumctl.k8s.client import _exit_code, pump_exec_frames

BINARY, CLOSE = 0x2, 0x8


def test_stdout_streams_in_order_stderr_is_bounded_and_status_is_kept() -> None:
    status = json.dumps(
        {
            "status": "Failure",
            "message": "command terminated with exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
        }
    )
    frames = [
        (BINARY, b"\x01" + b"\x1f\x8b\x00binary"),
        (BINARY, b"\x02" + b"e" * 10),
        (BINARY, b"\x01"),  # an empty stdout frame
        (BINARY, b"\x01" + b"\xff\xfe"),
        (BINARY, b"\x02" + b"f" * 10),
        (BINARY, b""),
        (BINARY, b"\x03" + status.encode()),
        (CLOSE, b""),
        (BINARY, b"\x01never"),  # after close: ignored
    ]
    seen: list[bytes] = []
    err, st = pump_exec_frames(frames, seen.append, stderr_limit=15)
    assert seen == [b"\x1f\x8b\x00binary", b"\xff\xfe"]
    assert err == b"e" * 10 + b"f" * 5
    assert _exit_code(st.decode()) == 3


def test_no_status_means_success() -> None:
    seen: list[bytes] = []
    err, st = pump_exec_frames([(BINARY, b"\x01ok")], seen.append)
    assert seen == [b"ok"] and err == b"" and st == b""
    assert _exit_code(None) == 0
