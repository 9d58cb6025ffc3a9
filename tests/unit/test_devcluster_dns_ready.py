"""``ready :PORT`` without an address (cilium-cli's dns-test Corefile, the cluster DNS's):
the HTTP endpoint binds every address, IPv6 included, instead of failing at start-up."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.unit.test_devcluster_dns import Proc, _free_port


def test_ready_on_all_addresses(tmp_path: Path) -> None:
    port, ready = _free_port(), _free_port()
    proc = Proc(
        f".:{port} {{\n    bind 127.0.0.1\n    local\n    ready :{ready}\n}}\n", tmp_path, "any"
    )
    try:
        proc.wait(port)
        out = subprocess.run(
            ["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{ready}/ready"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert out.returncode == 0, out.stderr
    finally:
        proc.stop()
