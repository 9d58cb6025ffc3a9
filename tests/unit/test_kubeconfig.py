"""Kubeconfig lookup and checks: missing, unreadable and malformed files, unknown contexts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from ciliumctl.k8s.errors import KubeconfigError
from ciliumctl.k8s.kubeconfig import inspect, kubeconfig_paths


def write_config(path: Path, contexts: dict[str, str], current: str | None = None) -> Path:
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": f"c-{n}", "cluster": {"server": url}} for n, url in contexts.items()],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": n, "context": {"cluster": f"c-{n}", "user": "u"}} for n in contexts],
    }
    if current:
        cfg["current-context"] = current
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="does not exist") as exc:
        kubeconfig_paths(str(tmp_path / "nope"))
    assert "--kubeconfig" in (exc.value.hint or "")


def test_env_list_skips_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write_config(tmp_path / "a", {"one": "https://a"}, "one")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), str(a)]))
    assert kubeconfig_paths(None) == [a]


def test_env_all_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(KubeconfigError, match="KUBECONFIG"):
        kubeconfig_paths(None)


def test_unknown_context_lists_known(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", {"one": "https://a", "two": "https://b"}, "one")
    with pytest.raises(KubeconfigError, match="context 'three' not found") as exc:
        inspect([cfg], "three")
    assert "one, two" in (exc.value.hint or "")


def test_current_and_explicit_context(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", {"one": "https://a", "two": "https://b"}, "one")
    assert inspect([cfg], None).server == "https://a"
    assert inspect([cfg], "two").server == "https://b"


def test_merge_first_file_wins(tmp_path: Path) -> None:
    a = write_config(tmp_path / "a", {"one": "https://first"}, "one")
    b = write_config(tmp_path / "b", {"one": "https://second", "two": "https://b"}, "two")
    info = inspect([a, b], None)
    assert (info.context, info.server) == ("one", "https://first")
    assert info.contexts == ["one", "two"]


def test_no_current_context(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", {"one": "https://a"})
    with pytest.raises(KubeconfigError, match="no current-context"):
        inspect([cfg], None)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("apiVersion: v1\nclusters:\n  - name: [unclosed\n")
    with pytest.raises(KubeconfigError) as exc:
        inspect([bad], None)
    assert str(bad) in exc.value.message
    assert "line" in exc.value.message


def test_not_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "list"
    bad.write_text("- a\n- b\n")
    with pytest.raises(KubeconfigError, match="not a kubeconfig"):
        inspect([bad], None)


def test_unreadable_directory_as_file(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="cannot read kubeconfig"):
        inspect([tmp_path], None)


def test_cluster_without_server(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.write_text(
        yaml.safe_dump(
            {
                "contexts": [{"name": "x", "context": {"cluster": "gone", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    with pytest.raises(KubeconfigError, match="no server URL"):
        inspect([cfg], None)
