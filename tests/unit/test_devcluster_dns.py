"""The DNS server as real processes on 127.0.0.1, queried with dig; its Corefile parser;
the cluster-name table built from Services and EndpointSlices."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ciliumctl.devcluster import dns


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (retried: other tests take ports too)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no port free for both UDP and TCP on 127.0.0.1")


class Proc:
    def __init__(self, corefile: str, tmp: Path, name: str) -> None:
        path = tmp / f"{name}.Corefile"
        path.write_text(corefile)
        self.log = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ciliumctl.devcluster.dns", "-conf", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "w"),  # noqa: SIM115
        )

    def wait(self, port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"dns server not listening on {port}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def dig(port: int, *args: str) -> str:
    return subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), "+time=2", "+tries=1", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=15,
    ).stdout


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[int, int, int]]:
    """An upstream (the 'world' resolver) and a server that forwards to it."""
    upstream, front, ready = _free_port(), _free_port(), _free_port()
    up = Proc(
        f""".:{upstream} {{
    bind 127.0.0.1
    hosts {{
        1.1.1.1 one.one.one.one
        1.0.0.1 one.one.one.one
        2606:4700:4700::1111 one.one.one.one
        ttl 60
    }}
}}
""",
        tmp_path,
        "upstream",
    )
    fr = Proc(
        f"""# a cluster zone served here, everything else forwarded
cluster.local:{front} {{
    bind 127.0.0.1
    hosts {{
        10.96.0.10 kube-dns.kube-system.svc.cluster.local
        fd00:10:96::a kube-dns.kube-system.svc.cluster.local
    }}
}}
.:{front} {{
    bind 127.0.0.1
    errors
    log
    local
    ready 127.0.0.1:{ready}
    forward . 127.0.0.1:{upstream}
    cache 30
}}
""",
        tmp_path,
        "front",
    )
    try:
        up.wait(upstream)
        fr.wait(front)
        yield upstream, front, ready
    finally:
        fr.stop()
        up.stop()


def test_answers_configured_names_and_nxdomain(servers: tuple[int, int, int]) -> None:
    _, front, _ = servers
    assert dig(front, "+short", "kube-dns.kube-system.svc.cluster.local", "A").split() == [
        "10.96.0.10"
    ]
    assert dig(front, "+short", "kube-dns.kube-system.svc.cluster.local", "AAAA").split() == [
        "fd00:10:96::a"
    ]
    out = dig(front, "nope.kube-system.svc.cluster.local", "A")
    assert "status: NXDOMAIN" in out and "flags: qr aa" in out
    # a name that exists has NODATA (NOERROR, no answer) for a type it lacks
    nodata = dig(front, "kube-dns.kube-system.svc.cluster.local", "TXT")
    assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata
    # reverse names of hosts entries (here from the upstream's hosts, forwarded)
    assert dig(front, "+short", "-x", "1.1.1.1").split() == ["one.one.one.one."]
    assert dig(front, "+short", "localhost", "AAAA").split() == ["::1"]


def test_forwards_the_rest_over_udp_and_tcp(servers: tuple[int, int, int]) -> None:
    _, front, ready = servers
    assert sorted(dig(front, "+short", "one.one.one.one", "A").split()) == ["1.0.0.1", "1.1.1.1"]
    assert dig(front, "+tcp", "+short", "one.one.one.one", "AAAA").split() == [
        "2606:4700:4700::1111"
    ]
    # NXDOMAIN from the upstream is passed through
    assert "status: NXDOMAIN" in dig(front, "k8s.invalid", "A")
    # cached: a second answer comes back with a TTL no greater than the first
    assert dig(front, "+short", "one.one.one.one", "A")
    probe = subprocess.run(
        ["curl", "-sS", f"http://127.0.0.1:{ready}/ready"], capture_output=True, text=True
    )
    assert probe.stdout == "OK"


def test_forward_to_dead_upstream_is_servfail(tmp_path: Path) -> None:
    dead, front = _free_port(), _free_port()
    proc = Proc(f".:{front} {{\n bind 127.0.0.1\n forward . 127.0.0.1:{dead}\n}}\n", tmp_path, "x")
    try:
        proc.wait(front)
        assert "status: SERVFAIL" in dig(front, "anything.example", "A")
    finally:
        proc.stop()


def test_without_forward_unknown_names_are_nxdomain(tmp_path: Path) -> None:
    port = _free_port()
    proc = Proc(
        f".:{port} {{\n bind 127.0.0.1\n hosts {{\n  1.2.3.4 a.test\n }}\n}}\n", tmp_path, "y"
    )
    try:
        proc.wait(port)
        assert dig(port, "+short", "A.TEST", "A").split() == ["1.2.3.4"]  # case-insensitive
        assert "status: NXDOMAIN" in dig(port, "b.test", "A")
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("corefile", "message"),
    [
        (".:53 {\n  prometheus :9153\n}\n", "plugin 'prometheus' is not supported"),
        (".:53 {\n  forward 8.8.8.8\n}\n", "forward . ADDRESS"),
        (".:53 {\n  forward . not-an-ip\n}\n", "not an IP"),
        (".:53 {\n  hosts {\n    nope a.test\n  }\n}\n", "not an IP address"),
        (".:53 {\n  kubernetes cluster.local {\n    pods verified\n  }\n}\n", "pods 'verified'"),
        (".:53 {\n  kubernetes cluster.local {\n    endpoint x\n  }\n}\n", "'endpoint'"),
        (".:53 {\n  bind eth0\n}\n", "not an IP address"),
        (".:53 {\n  log\n", "not closed"),
        ("{\n}\n", "without a zone"),
    ],
)
def test_corefile_errors_name_the_line(corefile: str, message: str) -> None:
    with pytest.raises(dns.DnsConfigError, match=message) as info:
        dns.parse_corefile(corefile, "Corefile")
    assert "Corefile" in str(info.value)


def test_cilium_cli_dns_test_corefile_parses() -> None:
    # the ConfigMap cilium-cli's connectivity test mounts into its dns-test-server container
    blocks = dns.parse_corefile(". {\n    local\n    ready\n    log\n}\n")
    assert blocks[0].port == 53 and blocks[0].ready == ":8181" and blocks[0].log


def test_cluster_names_from_services_and_slices() -> None:
    services = [
        {
            "metadata": {"name": "echo", "namespace": "t"},
            "spec": {
                "clusterIP": "10.96.1.2",
                "clusterIPs": ["10.96.1.2", "fd00::1:2"],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            },
        },
        {
            "metadata": {"name": "db", "namespace": "t"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]},
        },
        {
            "metadata": {"name": "ext", "namespace": "t"},
            "spec": {"type": "ExternalName", "externalName": "one.one.one.one"},
        },
    ]
    slices = [
        {
            "metadata": {"namespace": "t", "labels": {"kubernetes.io/service-name": "db"}},
            "endpoints": [
                {"addresses": ["10.0.1.5"], "hostname": "db-0", "conditions": {"ready": True}},
                {"addresses": ["10.0.2.6"], "conditions": {"ready": False}},
            ],
        }
    ]
    names = dns.cluster_names(services, slices, "cluster.local.", 5)

    def ask(name: str, qtype: int) -> list[bytes]:
        ans = names.answer(dns.Question(name, qtype), "cluster.local.")
        assert ans is not None, name
        return [r.rdata for r in ans.records]

    import ipaddress

    assert ask("echo.t.svc.cluster.local.", dns.A) == [ipaddress.ip_address("10.96.1.2").packed]
    assert ask("echo.t.svc.cluster.local.", dns.AAAA) == [ipaddress.ip_address("fd00::1:2").packed]
    assert len(ask("_http._tcp.echo.t.svc.cluster.local.", dns.SRV)) == 1
    # headless: ready endpoints only, and the pod's own name
    assert ask("db.t.svc.cluster.local.", dns.A) == [ipaddress.ip_address("10.0.1.5").packed]
    assert ask("db-0.db.t.svc.cluster.local.", dns.A) == [ipaddress.ip_address("10.0.1.5").packed]
    assert ask("ext.t.svc.cluster.local.", dns.A) == [dns.encode_name("one.one.one.one.")]
    assert ask("2.1.96.10.in-addr.arpa.", dns.PTR) == [dns.encode_name("echo.t.svc.cluster.local.")]
    # the namespace and svc levels exist (NODATA), unknown services do not
    assert ask("t.svc.cluster.local.", dns.A) == []
    assert names.answer(dns.Question("nope.t.svc.cluster.local.", dns.A), "x.") is None


def test_wire_roundtrip_and_truncation() -> None:
    query = dns.Message(0x1234, 0x0100, dns.Question("a.test.", dns.A), b"")
    recs = [dns.rr_a("a.test.", f"10.0.{i // 250}.{i % 250}", 5) for i in range(60)]
    full = dns.build_response(query, dns.NOERROR, recs)
    assert len(full) > dns.MAX_UDP
    small = dns.build_response(query, dns.NOERROR, recs, max_size=dns.MAX_UDP)
    assert small[2] & 0x02  # TC set: the client retries over TCP
    parsed = dns.parse_query(full)
    assert parsed.id == 0x1234 and parsed.question == dns.Question("a.test.", dns.A)
    assert dns.min_ttl(full) == 5


def test_fallthrough_zones_pass_only_their_names(tmp_path: Path) -> None:
    upstream, port = _free_port(), _free_port()
    up = Proc(
        f".:{upstream} {{\n bind 127.0.0.1\n hosts {{\n  10.9.9.9 late.b.test\n"
        f"  10.8.8.8 late.a.test\n }}\n}}\n",
        tmp_path,
        "ft-up",
    )
    front = Proc(
        f""".:{port} {{
    bind 127.0.0.1
    hosts a.test b.test {{
        10.0.0.1 x.a.test
        fallthrough b.test
    }}
    forward . 127.0.0.1:{upstream}
}}
""",
        tmp_path,
        "ft",
    )
    try:
        up.wait(upstream)
        front.wait(port)
        assert dig(port, "+short", "x.a.test").split() == ["10.0.0.1"]
        assert dig(port, "+short", "late.b.test").split() == ["10.9.9.9"]  # fell through
        assert "status: NXDOMAIN" in dig(port, "late.a.test")  # a.test does not
    finally:
        front.stop()
        up.stop()
