"""The wheel ships the Helm chart as package data where versions.chart_dir() finds it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_chart_and_console_script(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("ciliumctl-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "cilium = ciliumctl.cli.app:main" in zf.read(entry_points).decode()
    assert "ciliumctl/_charts/cilium/Chart.yaml" in names
    assert "ciliumctl/_charts/cilium/values.yaml" in names
    assert "ciliumctl/versions.py" in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
