"""Where the chart comes from: the bundled one, --chart-directory with another (upstream-like)
chart, or --repository (a Helm HTTP repository or an OCI registry), with the real helm, a
real HTTP server and the real distribution registry on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciliumctl.devcluster import binaries
from ciliumctl.errors import CiliumctlError, UsageError
from ciliumctl.helm import Helm
from ciliumctl.install import install
from ciliumctl.versions import chart_dir
from tests.verify.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_LIKE = ROOT / "tests" / "data" / "upstream-like-chart" / "cilium"


@pytest.fixture(scope="module")
def helm_bin() -> Path:
    return binaries.ensure(["helm"])["helm"]


@pytest.fixture(scope="module")
def packages(helm_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``helm package`` of the bundled chart and of the upstream-like one (both 1.18.5)."""
    out = {}
    for name, chart in (("own", chart_dir()), ("upstream-like", UPSTREAM_LIKE)):
        dest = tmp_path_factory.mktemp(f"pkg-{name}")
        subprocess.run([str(helm_bin), "package", str(chart), "-d", str(dest)], check=True)
        out[name] = next(dest.glob("cilium-*.tgz"))
    return out


@pytest.fixture(scope="module")
def http_repo(
    helm_bin: Path, packages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A Helm HTTP repository (index.yaml + the upstream-like package) on 127.0.0.1."""
    root = tmp_path_factory.mktemp("repo")
    (root / packages["upstream-like"].name).write_bytes(packages["upstream-like"].read_bytes())
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        functools.partial(_QuietHandler, directory=str(root)),
    )
    url = f"http://127.0.0.1:{server.server_address[1]}"
    subprocess.run([str(helm_bin), "repo", "index", str(root), "--url", url], check=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def oci_repo(
    helm_bin: Path, packages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The real distribution registry on 127.0.0.1 with the bundled chart `helm push`ed."""
    registry = Registry(
        binaries.ensure(["registry"])["registry"], tmp_path_factory.mktemp("oci")
    ).start()
    try:
        repo = f"oci://{registry.host}/charts"
        subprocess.run(
            [str(helm_bin), "push", str(packages["own"]), repo, "--plain-http"],
            check=True,
            capture_output=True,
        )
        yield repo
    finally:
        registry.stop()


def test_own_chart_gets_cilium_version_others_do_not() -> None:
    assert install.is_own_chart(chart_dir())
    assert not install.is_own_chart(UPSTREAM_LIKE)
    values = {"ciliumVersion": "1.17.11", "imageRegistry": "r:5000", "debug": {"enabled": True}}
    assert install.for_chart(values, chart_dir(), "1.18.5")["ciliumVersion"] == "1.18.5"
    assert install.for_chart(values, UPSTREAM_LIKE, "1.18.5") == {"debug": {"enabled": True}}


def test_version_of_another_chart_is_its_own() -> None:
    assert install.target_version(chart_dir(), "1.17.11") == "1.17.11"
    assert install.target_version(UPSTREAM_LIKE, None) == "1.18.5"
    assert install.target_version(UPSTREAM_LIKE, "v1.18.5") == "1.18.5"
    with pytest.raises(UsageError, match=r"--version 1\.17\.11 does not match"):
        install.target_version(UPSTREAM_LIKE, "1.17.11")


def test_values_check_uses_the_target_charts_keys() -> None:
    """The upstream-like chart has no unmodelled list and no ciliumVersion: its own
    values.yaml decides what is known."""
    install.check_user_values({"debug": {"enabled": True}}, UPSTREAM_LIKE, "1.18.5")
    with pytest.raises(install.ValuesCheckError, match="unknown key ciliumVersion"):
        install.check_user_values({"ciliumVersion": "1.18.5"}, UPSTREAM_LIKE, "1.18.5")


def test_pull_from_a_helm_http_repository(helm_bin: Path, http_repo: str, tmp_path: Path) -> None:
    chart = install.fetch_chart(Helm(helm_bin), http_repo, "1.18.5", tmp_path)
    assert (chart / "values.schema.json").is_file()
    assert not install.is_own_chart(chart)
    assert install.target_version(chart, "1.18.5") == "1.18.5"
    with pytest.raises(CiliumctlError, match=r"1\.17\.12"):
        install.fetch_chart(Helm(helm_bin), http_repo, "1.17.12", tmp_path / "missing")


def test_pull_from_an_oci_registry(helm_bin: Path, oci_repo: str, tmp_path: Path) -> None:
    chart = install.fetch_chart(Helm(helm_bin), oci_repo, "1.18.5", tmp_path)
    assert install.is_own_chart(chart)
    assert (chart / "unmodelled-keys.txt").read_text() == (
        chart_dir() / "unmodelled-keys.txt"
    ).read_text()
    with pytest.raises(CiliumctlError, match=r"1\.18\.4"):
        install.fetch_chart(Helm(helm_bin), oci_repo, "1.18.4", tmp_path / "missing")


def test_repository_must_be_http_or_oci(helm_bin: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="neither an http"):
        install.fetch_chart(Helm(helm_bin), "ftp://example.invalid/charts", "1.18.5", tmp_path)
