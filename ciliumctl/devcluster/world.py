"""The "world" of a sealed network: the external addresses connectivity tests use.

The world namespace owns 1.1.1.1, 1.0.0.1 and their IPv6 counterparts and serves, on all of
them, HTTP on 80 and HTTPS on 443 (the project's echo server, with a certificate from the
machine-wide world CA that the client image trusts) and DNS on 53 (the project's DNS server)
answering ``one.one.one.one`` and ``k8s.io`` with those addresses. Processes run on the
host inside the world's network namespace; their pids are kept in ``cluster.json``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ciliumctl.devcluster import binaries, netns, network
from ciliumctl.devcluster.cluster import DevClusterError, log_tail
from ciliumctl.devcluster.realnodes import pid_alive, stop_pid

SERVICES = ("dns", "http")


def ca_dir() -> Path:
    """The machine-wide world CA (shared by every dev cluster, so images built with it are
    built once): ``<cache>/world-ca/ca.crt``."""
    return binaries.cache_dir() / "world-ca"


def ca_cert() -> Path:
    """The PEM file of the world CA (created on first use)."""
    from ciliumctl.devcluster import pki

    return pki.CertificateAuthority(ca_dir(), "ciliumctl-world-ca").cert_path


def server_cert() -> tuple[Path, Path]:
    """The world's HTTPS certificate and key (names and addresses of the world)."""
    from ciliumctl.devcluster import pki

    ca = pki.CertificateAuthority(ca_dir(), "ciliumctl-world-ca")
    pair = ca.issue(
        "world-server",
        network.WORLD_NAMES[0],
        server=True,
        dns_names=network.WORLD_NAMES,
        ip_addresses=(*network.WORLD_IPV4, *network.WORLD_IPV6),
    )
    return pair.cert, pair.key


def corefile() -> str:
    """The world's DNS configuration: its names, nothing forwarded."""
    hosts = "\n".join(
        f"        {ip} {name}"
        for name in network.WORLD_NAMES
        for ip in (*network.WORLD_IPV4, *network.WORLD_IPV6)
    )
    # bound per address: a wildcard UDP socket would answer from the link's address
    bind = " ".join((*network.WORLD_IPV4, *network.WORLD_IPV6))
    return f""". {{
    bind {bind}
    errors
    hosts {{
{hosts}
    }}
}}
"""


def available() -> bool:
    """True when the project's DNS and echo servers are present (the image work)."""
    import importlib.util

    return all(
        importlib.util.find_spec(f"ciliumctl.devcluster.{m}") is not None for m in ("dns", "echo")
    )


def _commands(directory: Path) -> dict[str, list[str]]:
    cert, key = server_cert()
    conf = directory / "Corefile"
    conf.write_text(corefile())
    py = [sys.executable, "-m"]
    return {
        "dns": [*py, "ciliumctl.devcluster.dns", "-conf", str(conf)],
        "http": [
            *py,
            "ciliumctl.devcluster.echo",
            "--address",
            "::",
            "--port",
            "80",
            "--tls-port",
            "443",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
    }


def ensure(
    addr: network.Addressing, directory: Path, log_dir: Path, recorded: dict[str, int]
) -> dict[str, int]:
    """Start the world's services that are not running; returns service -> pid."""
    if not available():
        return {}
    directory.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    pids = dict(recorded)
    for service, argv in _commands(directory).items():
        if pid_alive(pids.get(service, 0), "ciliumctl.devcluster"):
            continue
        log = log_dir / f"world-{service}.log"
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                ["nsenter", f"--net={netns.path(addr.world_ns)}", "--", *argv],
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pids[service] = proc.pid
    _wait_listening(addr, log_dir, pids)
    return pids


def _wait_listening(addr: network.Addressing, log_dir: Path, pids: dict[str, int]) -> None:
    deadline = time.monotonic() + 20
    want = {"dns": ":53 ", "http": ":443 "}
    while time.monotonic() < deadline:
        out = netns.nsexec(addr.world_ns, ["ss", "-Hltnu"])
        missing = [s for s, port in want.items() if port not in out + " "]
        if not missing:
            return
        for service in missing:
            if not pid_alive(pids.get(service, 0), "ciliumctl.devcluster"):
                raise DevClusterError(
                    f"the world's {service} server exited; last lines:\n"
                    f"{log_tail(log_dir / f'world-{service}.log')}",
                    "fix the cause shown above, then run `cilium dev-cluster up` again",
                )
        time.sleep(0.1)
    raise DevClusterError("the world's servers did not listen within 20s", f"see {log_dir}")


def stop(pids: dict[str, Any]) -> None:
    """Stop the world's services."""
    for pid in pids.values():
        stop_pid(int(pid), "ciliumctl.devcluster", grace=2.0)
