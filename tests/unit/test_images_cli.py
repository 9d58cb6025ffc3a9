"""`cilium dev-cluster images`: listing as JSON, and bad input rejected before any build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def cilium(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200", CILIUMCTL_CACHE_DIR=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", "dev-cluster", "images", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_list_json_names_every_recipe(tmp_path: Path) -> None:
    out = cilium("list", "-o", "json", cache=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert {"pause", "client", "echo", "dns-test", "cluster-dns", "kube-proxy"} <= set(rows)
    assert rows["pause"]["base"] == "scratch" and rows["pause"]["built"] is None
    assert rows["client"]["buildArgs"] == ["world-ca"]
    assert "quay.io/cilium/alpine-curl:v1.10.0" in rows["client"]["aliases"]
    text = cilium("list", cache=tmp_path)
    assert "ciliumctl/echo" in text.stdout and "quay.io/cilium/json-mock:v1.3.8" in text.stdout


def test_bad_input_is_one_error_before_building(tmp_path: Path) -> None:
    unknown = cilium("build", "nginx", cache=tmp_path)
    assert unknown.returncode == 2 and "unknown image 'nginx'" in unknown.stderr
    bad_arg = cilium("build", "client", "--build-arg", "world-ca", cache=tmp_path)
    assert bad_arg.returncode == 2 and "NAME=PATH" in bad_arg.stderr
    missing = cilium(
        "build", "client", "--build-arg", f"world-ca={tmp_path}/no.crt", cache=tmp_path
    )
    assert missing.returncode == 2 and "cannot read CA file" in missing.stderr
    remote = cilium("push", "pause", "--registry", "registry.example.com", cache=tmp_path)
    assert remote.returncode == 2 and "not HOST:PORT on this machine" in remote.stderr
    assert not (tmp_path / "images" / "oci").exists()  # nothing was built
