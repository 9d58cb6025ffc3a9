"""Real builds of the dev cluster's images: digest stability, the content cache, a push to a
real registry, and the built servers running from their own root filesystems."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciliumctl.devcluster import images
from ciliumctl.devcluster.images import catalog
from ciliumctl.verify import oci
from tests.images.conftest import chroot, free_port, unpack
from tests.verify.registry import Registry, make_pki


def _layers(built: images.BuiltImage) -> list[str]:
    raw = (built.layout / "blobs" / built.digest.replace(":", "/")).read_bytes()
    return [layer["digest"] for layer in json.loads(raw)["layers"]]


@pytest.fixture
def variant() -> Iterator[list[str]]:
    """Names of test-only recipes to unregister afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        catalog.RECIPES.pop(name, None)


def _report(what: str, built: images.BuiltImage) -> None:
    sys.stderr.write(
        f"\n[images] {what}: {built.name} {built.digest} {built.size / 1e6:.1f} MB "
        f"{'cached' if built.cached else f'{built.seconds:.1f}s'}\n"
    )


def test_pause_is_cached_and_stable(variant: list[str]) -> None:
    first = images.build("pause")
    _report("pause", first)
    again = images.build("pause")
    assert again.cached and again.digest == first.digest
    rebuilt = images.build("pause", rebuild=True)
    assert not rebuilt.cached and rebuilt.digest == first.digest
    assert len(_layers(first)) == 1  # scratch: the binary only
    # a changed recipe is a different image
    changed = dataclasses.replace(images.get("pause"), name="pause-variant", env={"X": "1"})
    images.register(changed)
    variant.append(changed.name)
    other = images.build(changed.name)
    assert other.digest != first.digest


def test_pause_blocks_until_terminated(tmp_path: Path) -> None:
    built = images.build("pause")
    rootfs = unpack(built.layout, built.tag, tmp_path)
    out = subprocess.run([str(rootfs / "pause"), "-v"], capture_output=True, text=True)
    assert out.returncode == 0 and "pause" in out.stdout
    ldd = subprocess.run(["ldd", str(rootfs / "pause")], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr
    proc = subprocess.Popen([str(rootfs / "pause")])
    time.sleep(0.5)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(5) == 0


def test_debian_image_digest_is_reproducible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: list[str]
) -> None:
    """The same inputs give the same digest: a build in the shared cache and a cold build
    (mmdebstrap, wheel, layers, layout all from scratch) in an empty one."""
    shared = images.build("dns-test")
    _report("dns-test (shared cache)", shared)
    # read now: other checkouts share ~/.cache/ciliumctl and may prune old layouts
    shared_layers = _layers(shared)
    monkeypatch.setenv("CILIUMCTL_CACHE_DIR", str(tmp_path / "cold-cache"))
    cold = images.build("dns-test")
    _report("dns-test (cold)", cold)
    assert not cold.cached
    assert cold.layout != shared.layout
    assert cold.key == shared.key, "the inputs changed during the test (source edited?)"
    assert cold.digest == shared.digest, "same inputs, different digest"
    assert _layers(cold) == shared_layers
    assert cold.packages and cold.packages.get("python3")
    cached = images.build("dns-test")
    assert cached.cached and cached.digest == cold.digest
    # one changed setting: a new digest; the Debian base layer is reused, not rebuilt
    changed = dataclasses.replace(images.get("dns-test"), name="dns-variant", env={"A": "1"})
    images.register(changed)
    variant.append(changed.name)
    bases = sorted((tmp_path / "cold-cache/images/base").glob("*.tar"))
    stamps = [p.stat().st_mtime_ns for p in bases]
    other = images.build(changed.name)
    assert other.digest != cold.digest
    assert _layers(other)[0] == _layers(cold)[0]
    assert sorted((tmp_path / "cold-cache/images/base").glob("*.tar")) == bases
    assert [p.stat().st_mtime_ns for p in bases] == stamps  # mmdebstrap did not run again


def test_project_wheel_is_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ciliumctl.devcluster.images import builder

    wheels = []
    for name in ("one", "two"):
        monkeypatch.setenv("CILIUMCTL_CACHE_DIR", str(tmp_path / name))
        wheels.append(builder._project_wheel(lambda _: None))
    assert wheels[0] != wheels[1]
    assert wheels[0].read_bytes() == wheels[1].read_bytes()


def test_push_and_pull_by_digest(registry: Registry) -> None:
    client = oci.RegistryClient(insecure=True)
    for name in ("pause", "dns-test"):
        built = images.build(name)
        pinned = images.push(built, registry.host)
        assert pinned == f"{registry.host}/ciliumctl/{name}:{built.tag}@{built.digest}"
        ref = oci.Reference.parse(pinned)
        manifest = client.manifest(ref)  # fetched by digest and checked against it
        assert manifest.digest == built.digest
        assert (
            manifest.raw == (built.layout / "blobs" / built.digest.replace(":", "/")).read_bytes()
        )
        layer = manifest.layers[-1]
        blob = client.blob(ref, layer.digest)
        assert oci.digest_of(blob) == layer.digest
        assert client.resolve(ref.with_tag(built.tag)) == built.digest
        # upstream names resolve to the same image (what containerd's mirrors ask for)
        for upstream in images.aliases_for(images.get(name)):
            up = oci.Reference.parse(upstream)
            alias = oci.Reference(registry.host, up.repository, up.tag)
            assert client.resolve(alias) == built.digest
            assert client.blob(alias, layer.digest) == blob  # mounted, not uploaded again
    # pushing again is idempotent
    assert images.push(images.build("pause"), registry.host).endswith(images.build("pause").digest)


def _wait_port(port: int, proc: subprocess.Popen[bytes], udp: bool = False) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def test_built_echo_server_answers_json(tmp_path: Path) -> None:
    built = images.build("echo")
    _report("echo", built)
    rootfs = unpack(built.layout, built.tag, tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [
            "chroot",
            str(rootfs),
            "/usr/bin/python3",
            "-m",
            "ciliumctl.devcluster.echo",
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
        ],
    )
    try:
        _wait_port(port, proc)
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "--fail",
                "-X",
                "PUT",
                "-H",
                "X-Probe: 7",
                "--data",
                "body!",
                f"http://127.0.0.1:{port}/public?x=1",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        seen = json.loads(out.stdout)
        assert seen["method"] == "PUT" and seen["path"] == "/public"
        assert seen["query"] == {"x": "1"} and seen["body"] == "body!"
        assert seen["headers"]["x-probe"] == "7"
        assert seen["client"]["address"] == "127.0.0.1"
    finally:
        proc.terminate()
        proc.wait(10)


def test_built_dns_test_server(tmp_path: Path) -> None:
    built = images.build("dns-test")
    rootfs = unpack(built.layout, built.tag, tmp_path)
    port, ready = free_port(), free_port()
    (rootfs / "etc/coredns").mkdir(parents=True)
    (rootfs / "etc/coredns/Corefile").write_text(
        f".:{port} {{\n  bind 127.0.0.1\n  local\n  ready 127.0.0.1:{ready}\n"
        "  hosts {\n    10.0.0.7 echo.example\n    fd00::7 echo.example\n  }\n  log\n}\n"
    )
    proc = subprocess.Popen(
        [
            "chroot",
            str(rootfs),
            "/usr/bin/python3",
            "-m",
            "ciliumctl.devcluster.dns",
            "-conf",
            "/etc/coredns/Corefile",
        ]
    )
    try:
        _wait_port(port, proc)
        _wait_port(ready, proc)

        def dig(*args: str) -> str:
            return subprocess.run(
                ["dig", "@127.0.0.1", "-p", str(port), "+time=2", "+tries=1", *args],
                capture_output=True,
                text=True,
                check=True,
            ).stdout

        assert dig("+short", "echo.example", "A").split() == ["10.0.0.7"]
        assert dig("+short", "echo.example", "AAAA").split() == ["fd00::7"]
        assert dig("+short", "localhost", "A").split() == ["127.0.0.1"]
        assert "status: NXDOMAIN" in dig("missing.example")
        health = subprocess.run(
            ["curl", "-sS", "--fail", f"http://127.0.0.1:{ready}/ready"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert health.stdout == "OK"
    finally:
        proc.terminate()
        proc.wait(10)


def test_client_image_tools_and_world_ca(tmp_path: Path) -> None:
    """The client has the connectivity test's tools and trusts the CA given as build arg:
    curl inside it reaches an HTTPS server with a certificate from that CA, no --cacert."""
    pki = make_pki(tmp_path / "pki", "world")
    built = images.build("client", args={images.WORLD_CA: pki.ca_file})
    _report("client (+world CA)", built)
    plain = images.build("client")
    assert plain.digest != built.digest  # the CA is part of the image's content
    rootfs = unpack(built.layout, built.tag, tmp_path / "client")
    versions = subprocess.run(
        [
            "chroot",
            str(rootfs),
            "/usr/bin/ash",
            "-c",
            "curl --version; dig -v 2>&1; nslookup -version 2>&1; ip -V; ping -V; "
            "/usr/bin/pause -v",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for tool in ("curl", "DiG", "nslookup", "iproute2", "iputils", "pause"):
        assert tool in versions
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ciliumctl.devcluster.echo",
            "--address",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--tls-port",
            str(port),
            "--tls-cert",
            str(pki.cert_file),
            "--tls-key",
            str(pki.key_file),
        ],
    )
    try:
        _wait_port(port, server)
        out = subprocess.run(
            ["chroot", str(rootfs), "curl", "-sS", "--fail", f"https://127.0.0.1:{port}/tls"],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["server"]["tls"] is True
        untrusted = unpack(plain.layout, plain.tag, tmp_path / "plain")
        refused = chroot(untrusted, "curl", "-sS", f"https://127.0.0.1:{port}/tls")
        assert refused.returncode == 60, refused.stderr  # certificate problem
    finally:
        server.terminate()
        server.wait(10)


def test_cluster_dns_and_kube_proxy_images(tmp_path: Path) -> None:
    """cluster-dns carries the Kubernetes client the DNS server reads Services with and
    CoreDNS's command line; kube-proxy the pinned binary and the iptables/conntrack tools its
    iptables mode runs."""
    from ciliumctl.devcluster.binaries import KUBERNETES_VERSION
    from ciliumctl.devcluster.images.builder import CREATED

    dnsimg = images.build("cluster-dns")
    _report("cluster-dns", dnsimg)
    rootfs = unpack(dnsimg.layout, dnsimg.tag, tmp_path / "dns")
    probe = chroot(rootfs, "/usr/bin/python3", "-c", "import kubernetes, ciliumctl.k8s; print(1)")
    assert probe.returncode == 0 and probe.stdout.strip() == "1", probe.stderr
    blobs = dnsimg.layout / "blobs"
    manifest = json.loads((blobs / dnsimg.digest.replace(":", "/")).read_text())
    config = json.loads((blobs / manifest["config"]["digest"].replace(":", "/")).read_text())
    assert config["created"] == CREATED
    assert config["config"]["Entrypoint"] == ["/usr/bin/python3", "-m", "ciliumctl.devcluster.dns"]
    assert config["config"]["Cmd"] == ["-conf", "/etc/coredns/Corefile"]
    proxy = images.build("kube-proxy")
    _report("kube-proxy", proxy)
    rootfs = unpack(proxy.layout, proxy.tag, tmp_path / "proxy")
    out = chroot(
        rootfs,
        "/bin/sh",
        "-c",
        "/usr/local/bin/kube-proxy --version; iptables --version; conntrack --version",
    )
    assert out.returncode == 0, out.stderr
    assert KUBERNETES_VERSION in out.stdout and "iptables v1.8" in out.stdout
    assert "conntrack" in out.stdout + out.stderr
