"""Dev cluster logic that needs no Kubernetes binaries: names, ports, failing components."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from ciliumctl.devcluster import DevCluster, DevClusterError
from ciliumctl.devcluster.cluster import free_port, log_tail, port_is_free


def test_invalid_name_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DevClusterError, match="invalid dev cluster name"):
        DevCluster("../escape", tmp_path)


def test_free_port_and_taken_port() -> None:
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert not port_is_free(port)


def test_log_tail_reads_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert log_tail(log, 3).splitlines() == ["line 97", "line 98", "line 99"]
    assert log_tail(tmp_path / "missing.log") == ""


def test_failing_component_reports_its_log_tail(tmp_path: Path) -> None:
    cluster = DevCluster("unit", tmp_path / "state")
    cluster.state_dir.mkdir(parents=True)
    script = "import sys; print('starting'); print('fatal: bad flag --x', flush=True); sys.exit(3)"

    def command(port: int) -> tuple[list[str], str]:
        return [sys.executable, "-c", script], f"http://127.0.0.1:{port}/healthz"

    with pytest.raises(DevClusterError) as exc:
        cluster._start("fake-apiserver", command, None, timeout=10)
    assert "fake-apiserver did not become healthy" in exc.value.message
    assert "fatal: bad flag --x" in exc.value.message
    assert str(cluster.log_dir / "fake-apiserver.log") in exc.value.message


def test_port_taken_moves_to_another_port(tmp_path: Path) -> None:
    cluster = DevCluster("unit", tmp_path / "state")
    cluster.state_dir.mkdir(parents=True)
    server = (
        "import http.server, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers()\n"
        "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n"
    )

    def command(port: int) -> tuple[list[str], str]:
        return [sys.executable, "-c", server, str(port)], f"http://127.0.0.1:{port}/"

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        comp = cluster._start("fake", command, taken, timeout=20)
    try:
        assert comp.port != taken
        assert cluster._probe(comp.health_url)
    finally:
        cluster._stop_pid(comp)


def test_down_without_cluster(tmp_path: Path) -> None:
    with pytest.raises(DevClusterError, match="no dev cluster"):
        DevCluster("ghost", tmp_path / "ghost").down()


def test_status_of_missing_cluster_is_empty(tmp_path: Path) -> None:
    status = DevCluster("ghost", tmp_path / "ghost").status()
    assert status.components == [] and not status.running
