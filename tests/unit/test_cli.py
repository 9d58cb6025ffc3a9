"""The `cilium` command as a user runs it: help, version, and every bad-input path."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def cilium(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    full_env.update({"NO_COLOR": "1", "COLUMNS": "200", "HOME": os.environ.get("HOME", "/")})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ciliumctl", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def kubeconfig(path: Path, server: str, context: str = "test") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": context,
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "secret-token-value"}}],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_help_lists_only_working_commands() -> None:
    result = cilium("--help")
    assert result.returncode == 0
    for word in (
        "version",
        "dev-cluster",
        "install",
        "upgrade",
        "uninstall",
        "status",
        "config",
        "hubble",
        "validate",
        "--context",
        "--namespace",
        "--kubeconfig",
        "CILIUM_NAMESPACE",
        "kube-system",
    ):
        assert word in result.stdout
    for placeholder in ("not implemented", "todo", "coming soon"):
        assert placeholder not in result.stdout.lower()


def test_dev_cluster_help_lists_subcommands() -> None:
    out = cilium("dev-cluster", "--help").stdout
    for sub in ("up", "down", "status", "kubeconfig", "env", "build"):
        assert sub in out


def test_version_client_text_and_json() -> None:
    text = cilium("version", "--client")
    assert text.returncode == 0
    assert "cilium image (default): v1.18.5" in text.stdout
    assert "running" not in text.stdout
    data = json.loads(cilium("version", "--client", "-o", "json").stdout)
    assert data["defaultCiliumVersion"] == "1.18.5"
    assert data["client"]["version"]
    assert "running" not in data


def test_unknown_context_is_one_clear_line(tmp_path: Path) -> None:
    cfg = kubeconfig(tmp_path / "kc", "https://127.0.0.1:1")
    result = cilium("--kubeconfig", str(cfg), "--context", "nope", "version")
    assert result.returncode == 1
    assert "context 'nope' not found" in result.stderr
    assert "test" in result.stderr  # the available contexts are listed
    assert "Traceback" not in result.stderr


def test_malformed_kubeconfig_names_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("clusters: [\n")
    result = cilium("--kubeconfig", str(bad), "version")
    assert result.returncode == 1
    assert str(bad) in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_kubeconfig_file(tmp_path: Path) -> None:
    result = cilium("--kubeconfig", str(tmp_path / "none"), "version")
    assert result.returncode == 1
    assert "does not exist" in result.stderr


def test_unreachable_server_names_url_without_traceback(tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{closed_port()}"
    cfg = kubeconfig(tmp_path / "kc", url)
    result = cilium("--kubeconfig", str(cfg), "version")
    assert result.returncode == 1
    assert url in result.stderr
    assert "Traceback" not in result.stderr
    assert "secret-token-value" not in result.stderr + result.stdout
    debug = cilium("--debug", "--kubeconfig", str(cfg), "version")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr


def test_namespace_from_environment(tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{closed_port()}"
    cfg = kubeconfig(tmp_path / "kc", url)
    result = cilium("--kubeconfig", str(cfg), "version", env={"CILIUM_NAMESPACE": "cilium"})
    assert result.returncode == 1  # unreachable, but the flag parsed


@pytest.mark.parametrize(
    "args",
    [
        ("--no-such-flag",),
        ("version", "-o", "xml"),
        ("dev-cluster", "up", "--nodes", "-1"),
        ("dev-cluster", "build", "kube-nonexistent"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    result = cilium(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


def test_dev_cluster_commands_on_missing_cluster(tmp_path: Path) -> None:
    for sub in ("kubeconfig", "status", "down"):
        result = cilium(
            "dev-cluster", sub, "--name", "ghost", "--state-dir", str(tmp_path / "ghost")
        )
        assert result.returncode == 1, sub
        assert "no dev cluster 'ghost'" in result.stderr


def test_dev_cluster_invalid_name(tmp_path: Path) -> None:
    result = cilium("dev-cluster", "status", "--name", "bad/name")
    assert result.returncode == 1
    assert "invalid dev cluster name" in result.stderr


def test_dev_cluster_env_lines(tmp_path: Path) -> None:
    result = cilium("dev-cluster", "env", "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("export PATH=")
    assert lines[1] == f"export KUBECONFIG={tmp_path / 's' / 'kubeconfig'}"
