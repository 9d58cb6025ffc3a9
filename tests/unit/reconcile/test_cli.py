"""`cilium reconcile` commands as a user runs them, where no cluster is needed: exit codes
for bad input (2 for diff, as kubectl diff) and the export output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ciliumctl import yamlio

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "gitops"


def cilium(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200", KUBECONFIG="/nonexistent/kubeconfig")
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_diff_errors_exit_2_and_name_the_file(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)
    (tmp_path / "cilium.yaml").write_text("version: 1.18.5\nvalues:\n  hubble:\n    enabeld: x\n")
    result = cilium("reconcile", "diff", "--source", str(tmp_path))
    assert result.returncode == 2
    assert f"{tmp_path / 'cilium.yaml'}: values.hubble.enabeld:" in result.stderr
    assert "hubble.enabled" in result.stderr and "Traceback" not in result.stderr
    missing = cilium("reconcile", "diff", "--source", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "not a directory" in missing.stderr


def test_apply_refuses_bad_input(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)
    cnc = tmp_path / "nodeconfigs" / "large-nodes.yaml"
    cnc.write_text(cnc.read_text().replace('"0.005"', "0.005"))
    result = cilium("reconcile", "apply", "--source", str(tmp_path))
    assert result.returncode == 1
    assert f"{cnc}:13: spec.defaults.bpf-map-dynamic-size-ratio: must be a string" in result.stderr
    usage = cilium("reconcile", "apply", "--source", str(EXAMPLE), "--prune=maybe")
    assert usage.returncode == 2 and "--prune=false" in usage.stderr


def test_export_argocd_and_flux() -> None:
    argo = cilium(
        "reconcile",
        "export",
        "argocd",
        "--source",
        str(EXAMPLE),
        "--repo-url",
        "https://git.example/fleet.git",
        "--revision",
        "main",
    )
    assert argo.returncode == 0, argo.stderr
    app, cm = yamlio.load_all(argo.stdout)
    assert app["kind"] == "Application" and app["spec"]["sources"][1]["path"] == "examples/gitops"
    assert "CiliumIdentity" in cm["data"]["resource.exclusions"]
    flux = cilium("reconcile", "export", "flux", "--source", str(EXAMPLE), "--repo-url", "x")
    assert flux.returncode == 0, flux.stderr
    assert [d["kind"] for d in yamlio.load_all(flux.stdout)][:2] == [
        "HelmRepository",
        "HelmRelease",
    ]
    bad = cilium("reconcile", "export", "spinnaker", "--source", str(EXAMPLE))
    assert bad.returncode == 2 and "argocd or flux" in bad.stderr
