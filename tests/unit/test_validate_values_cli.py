"""`cilium validate values` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def cilium(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_valid_values_exit_0(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("debug:\n  enabled: true\nhubble:\n  relay:\n    enabled: true\n")
    result = cilium("validate", "values", "-f", str(good), "--to-version", "1.18.5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid for Cilium 1.18.5" in result.stdout


def test_removed_unknown_deprecated_and_changed_defaults(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "enableCiliumEndpointSlice: true\nhubble:\n  enabeld: true\n"
        "  export:\n    fileMaxSizeMb: 5\nipam:\n  mode: eni\n"
    )
    result = cilium(
        "validate",
        "values",
        "-f",
        str(values),
        "--from-version",
        "1.17.9",
        "--to-version",
        "1.18.5",
        "-o",
        "json",
    )
    assert result.returncode == 1
    findings = {f["key"]: f for f in json.loads(result.stdout)["findings"]}
    assert findings["enableCiliumEndpointSlice"]["severity"] == "error"
    assert "ciliumEndpointSlice.enabled" in findings["enableCiliumEndpointSlice"]["fix"]
    assert findings["hubble.enabeld"]["fix"] == "did you mean hubble.enabled?"
    assert findings["hubble.export.fileMaxSizeMb"]["severity"] == "warning"
    assert findings["enableIPv4Masquerade"]["severity"] == "info"
    assert "from true to false" in findings["enableIPv4Masquerade"]["message"]


def test_warnings_as_errors_and_set_flags() -> None:
    ok = cilium("validate", "values", "--set", "sessionAffinity=true")
    assert ok.returncode == 0 and "deprecated" in ok.stdout
    strict = cilium("validate", "values", "--set", "sessionAffinity=true", "--warnings-as-errors")
    assert strict.returncode == 1


def test_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    result = cilium("validate", "values", "-f", str(bad))
    assert result.returncode == 2 and str(bad) in result.stderr
    version = cilium("validate", "values", "--to-version", "2.0.0")
    assert version.returncode == 2 and "supported versions" in version.stderr
