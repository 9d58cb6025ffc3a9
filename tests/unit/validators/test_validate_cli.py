"""`cilium validate cnp` run as a user runs it: a subprocess of `python -m ciliumctl`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
POLICIES = Path("tests/data/policies")
GOLDEN = ROOT / "tests/data/policies/golden"


def cilium(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        input=stdin,
        timeout=60,
    )


def test_valid_file_exits_0() -> None:
    result = cilium("validate", "cnp", str(POLICIES / "valid/l7-http.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 warning(s)" in result.stdout


def test_invalid_file_exits_1_with_file_line_path_and_fix() -> None:
    path = POLICIES / "invalid/l7-udp.yaml"
    result = cilium("validate", "cnp", str(path))
    assert result.returncode == 1
    assert f"{path}:13 (document 0): error:" in result.stdout
    assert "spec.ingress[0].toPorts[0].ports[0]" in result.stdout
    assert "fix: set protocol: TCP" in result.stdout


def test_warnings_fail_only_with_warnings_as_errors() -> None:
    path = str(POLICIES / "invalid/fqdn-without-dns.yaml")
    assert cilium("validate", "cnp", path).returncode == 0
    assert cilium("validate", "cnp", "--warnings-as-errors", path).returncode == 1


def test_bad_yaml_reports_line_and_still_validates_other_documents() -> None:
    path = POLICIES / "invalid/bad-yaml-then-valid.yaml"
    data = json.loads(cilium("validate", "cnp", "-o", "json", str(path)).stdout)
    assert data["summary"] == {
        "documents": 2, "policies": 1, "errors": 1, "warnings": 0, "notes": 0
    }  # fmt: skip
    (finding,) = data["findings"]
    assert finding["rule"] == "yaml" and finding["document"] == 0 and finding["line"] == 10


def test_unknown_kind_is_skipped_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    result = cilium("validate", "cnp", str(path))
    assert result.returncode == 0
    assert "note:" in result.stdout and "skipped ConfigMap" in result.stdout


def test_missing_file_is_a_usage_error() -> None:
    result = cilium("validate", "cnp", "does/not/exist.yaml")
    assert result.returncode == 2
    assert "does/not/exist.yaml: no such file or directory" in result.stderr


def test_no_arguments_and_conflicting_sources_are_usage_errors() -> None:
    assert cilium("validate", "cnp").returncode == 2
    result = cilium("validate", "cnp", "--from-cluster", "x.yaml")
    assert result.returncode == 2 and "not both" in result.stderr
    result = cilium("validate", "cnp", "--target-version", "2.0", "x.yaml")
    assert result.returncode == 2 and "--target-version" in result.stderr


def test_stdin() -> None:
    text = (ROOT / POLICIES / "invalid/dns-ingress.yaml").read_text()
    result = cilium("validate", "cnp", "-o", "json", "-", stdin=text)
    assert result.returncode == 1
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["file"] == "<stdin>" and finding["rule"] == "dns-ingress"
    assert finding["line"] == 16


def test_directory_is_walked() -> None:
    result = cilium("validate", "cnp", "-o", "json", str(POLICIES / "valid"))
    data = json.loads(result.stdout)
    assert result.returncode == 0
    assert data["summary"]["errors"] == 0
    assert data["summary"]["policies"] >= 25


@pytest.mark.parametrize(
    "name",
    ["valid/l7-http.yaml", "invalid/fqdn-pattern-chars.yaml", "invalid/bad-yaml-then-valid.yaml"],
)
def test_golden_json(name: str) -> None:
    result = cilium("validate", "cnp", "-o", "json", str(POLICIES / name))
    golden = GOLDEN / (name.replace("/", "__").removesuffix(".yaml") + ".json")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text()
