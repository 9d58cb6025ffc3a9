"""Binary lookup and the Go wrapper modules that build the dev cluster's tools."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ciliumctl.devcluster import binaries
from ciliumctl.errors import ToolMissingError

GOMOD = """module k8s.io/kubernetes

go 1.24.0

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/kubectl => ./staging/src/k8s.io/kubectl
\tgithub.com/other/mod => github.com/fork/mod v1.0.0
)
"""


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CILIUMCTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    return tmp_path / "cache"


def fake_binary(path: Path, output: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_staging_replaces_map_every_staging_module() -> None:
    lines = binaries.staging_replaces(GOMOD, "v1.34.4")
    assert lines == [
        "\tk8s.io/api => k8s.io/api v0.34.4",
        "\tk8s.io/client-go => k8s.io/client-go v0.34.4",
        "\tk8s.io/kubectl => k8s.io/kubectl v0.34.4",
    ]


def test_wrapper_module_requires_and_imports() -> None:
    recipe = binaries.RECIPES["kubernetes"]
    gomod, tools = binaries.wrapper_module(recipe, ["\tk8s.io/api => k8s.io/api v0.34.4"])
    assert f"require k8s.io/kubernetes {binaries.KUBERNETES_VERSION}" in gomod
    assert "replace (\n\tk8s.io/api => k8s.io/api v0.34.4\n)" in gomod
    assert tools.startswith("//go:build tools")
    for pkg in recipe.packages.values():
        assert f'_ "{pkg}"' in tools


def test_kubernetes_ldflags_carry_the_real_version() -> None:
    flags = " ".join(binaries.RECIPES["kubernetes"].ldflags)
    assert f"k8s.io/component-base/version.gitVersion={binaries.KUBERNETES_VERSION}" in flags
    assert "k8s.io/component-base/version.gitMinor=34" in flags


def test_every_binary_has_one_recipe() -> None:
    assert {
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
        "etcd",
        "kwok",
        "helm",
    } <= set(binaries.BINARIES)
    owners = [r.name for r in binaries.RECIPES.values() for _ in r.packages]
    assert len(owners) == len(binaries.BINARIES)  # no binary is built by two recipes


def test_path_binary_with_wrong_version_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_binary(tmp_path / "path" / "kubectl", "Client Version: v1.32.4")
    monkeypatch.setenv("PATH", f"{tmp_path / 'path'}{os.pathsep}{os.environ['PATH']}")
    # The first kubectl on PATH reports v1.32: rejected, and the (empty) cache has none.
    assert binaries.find("kubectl") is None


def test_path_binary_with_pinned_minor_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = fake_binary(tmp_path / "path" / "kube-apiserver", "Kubernetes v1.34.9")
    monkeypatch.setenv("PATH", f"{tmp_path / 'path'}{os.pathsep}{os.environ['PATH']}")
    assert binaries.find("kube-apiserver") == exe


def test_kubebuilder_assets_are_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = fake_binary(tmp_path / "assets" / "etcd", "etcd Version: 3.5.21")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path / "assets"))
    monkeypatch.setenv("PATH", "/nonexistent")
    assert binaries.find("etcd") == exe


def test_cache_needs_manifest_version(
    isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    exe = fake_binary(isolated_cache / "bin" / "kwok", "whatever")
    assert binaries.find("kwok") is None
    build_id = binaries.RECIPES["kwok"].build_id
    (isolated_cache / "bin" / "versions.json").write_text(json.dumps({"kwok": build_id}))
    assert binaries.find("kwok") == exe
    # Another version, or the same version built with other flags, is rebuilt.
    for stale in ("v0.0.1", binaries.KWOK_VERSION):
        (isolated_cache / "bin" / "versions.json").write_text(json.dumps({"kwok": stale}))
        assert binaries.find("kwok") is None


def test_build_id_tracks_version_and_flags() -> None:
    helm = binaries.RECIPES["helm"]
    assert helm.build_id.startswith(binaries.HELM_VERSION + "+")
    assert "k8sVersionMinor=34" in " ".join(helm.ldflags)
    other = binaries.Recipe(**{**helm.__dict__, "ldflags": ()})
    assert other.build_id != helm.build_id


def test_missing_go_names_binary_and_both_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolMissingError) as exc:
        binaries.ensure(["helm"])
    assert "helm" in exc.value.message and "`go`" in exc.value.message
    hint = exc.value.hint or ""
    assert "install Go" in hint and "PATH" in hint and "KUBEBUILDER_ASSETS" in hint


def test_missing_lists_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert binaries.missing(["helm", "etcd"]) == ["helm", "etcd"]


def test_multi_binary_recipes_name_binaries_after_their_package() -> None:
    for recipe in binaries.RECIPES.values():
        if len(recipe.packages) > 1:
            for name, package in recipe.packages.items():
                assert package.rsplit("/", 1)[-1] == name
