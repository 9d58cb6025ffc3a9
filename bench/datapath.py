"""Benchmark of the eBPF datapath (root): prints one JSON object.

- TCP throughput and TCP request/response rate between two pods on one node over a veth,
  without BPF and with the endpoint programs and a 1,000-entry policy (goal: both ratios
  >= 0.9): on one connection while the programs are detached and re-attached every 0.5 s
  (``*_toggled``: both states see the same machine load), and in rounds of iperf3 (throughput)
  and a fresh request/response connection, interleaved; plus the programs' own cost per
  packet (BPF_PROG_TEST_RUN);
- atomic replacement of a 10,000-entry policy (goal <= 200 ms);
- compile + load, and attach, of each endpoint (the first compile includes importing bcc);
- ipcache insert rate for 100,000 prefixes.

Everything runs inside network namespaces this script creates (sealed: no uplink) on a bpffs
it mounts in a temporary directory; both are removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ciliumctl.datapath import Datapath, netlink
from ciliumctl.datapath.bpfsys import prog_test_run
from ciliumctl.datapath.model import (
    Direction,
    EndpointPolicy,
    EndpointSpec,
    IPCacheEntry,
    PolicyEntry,
    Protocol,
)

CLIENT, SERVER = "10.220.0.1", "10.220.0.2"
ID_CLIENT, ID_SERVER = 1000, 2000
RR_PORT, IPERF_PORT = 7000, 5201
RR_SECONDS, IPERF_SECONDS = 3.0, 3

RR_SERVER = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", %d)); s.listen(4); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(1)
        if not b: break
        c.sendall(b)
    c.close()
"""

RR_CLIENT = """
import socket, time
c = socket.create_connection((%r, %d)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
n = 0; end = time.monotonic() + %f
while time.monotonic() < end:
    c.sendall(b"x"); c.recv(1); n += 1
print(n / %f)
"""


TOGGLE_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(4); print("ready", flush=True)
c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rr = c.recv(1) == b"r"
while True:
    b = c.recv(1 if rr else 1 << 20)
    if not b: break
    if rr: c.sendall(b)
"""

TOGGLE_CLIENT = """
import socket, sys, time
mode, host, port, dur = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
c = socket.create_connection((host, port)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.sendall(b"r" if mode == "rr" else b"s"); buf = b"x" * 65536
print("go", flush=True)
end = time.monotonic() + dur; t0 = time.monotonic(); n = 0
while True:
    now = time.monotonic()
    if now >= end: break
    if mode == "rr":
        c.sendall(b"x"); c.recv(1); n += 1
    else:
        c.sendall(buf); n += len(buf)
    if now - t0 >= 0.05:
        print(t0, now, n, flush=True); t0 = now; n = 0
"""


def toggled(
    mode: str, client_ns: str, server_ns: str, dp: Datapath, specs, progs, seconds: float = 12.0
) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """One long-lived connection while the programs are detached and re-attached every 0.5 s:
    the rate in windows with BPF against windows without, so the machine's drifting load
    (it is shared) affects both alike. Returns medians of 50 ms samples and their ratio."""
    port = RR_PORT if mode == "rr" else IPERF_PORT  # the ports the policy allows
    srv = subprocess.Popen(
        ns_exec(server_ns, sys.executable, "-c", TOGGLE_SERVER, str(port)),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert srv.stdout is not None and srv.stdout.readline().strip() == "ready"
    cli = subprocess.Popen(
        ns_exec(
            client_ns, sys.executable, "-c", TOGGLE_CLIENT, mode, SERVER, str(port), str(seconds)
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert cli.stdout is not None and cli.stdout.readline().strip() == "go"
    windows: list[tuple[float, float, bool]] = []
    attached = True
    end = time.monotonic() + seconds - 0.5
    while time.monotonic() < end:
        start = time.monotonic()
        time.sleep(0.5)
        windows.append((start, time.monotonic(), attached))
        attached = not attached
        for spec, prog in zip(specs, progs, strict=True):
            if attached:
                dp.attach_endpoint(spec, prog)
            else:
                dp.detach_endpoint(spec)
    out, _ = cli.communicate(timeout=60)
    srv.kill()
    srv.wait()
    if not attached:
        for spec, prog in zip(specs, progs, strict=True):
            dp.attach_endpoint(spec, prog)
    rates: dict[bool, list[float]] = {True: [], False: []}
    for line in out.splitlines():
        a, b, n = (float(x) for x in line.split())
        for ws, we, state in windows:
            if ws <= a and b <= we:
                rates[state].append(n / (b - a))
    with_bpf, without = statistics.median(rates[True]), statistics.median(rates[False])
    scale = 8e-9 if mode == "stream" else 1.0
    return {
        "no_bpf": round(without * scale, 3),
        "bpf_1000_policy": round(with_bpf * scale, 3),
        "ratio": round(with_bpf / without, 3),
        "samples": len(rates[True]) + len(rates[False]),
    }


def ns_exec(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]


def tcp_throughput(client_ns: str, server_ns: str) -> float:
    """Gbit/s of one iperf3 TCP stream client -> server."""
    srv = subprocess.Popen(
        ns_exec(server_ns, "iperf3", "-s", "-1", "-p", str(IPERF_PORT)), stdout=subprocess.DEVNULL
    )
    try:
        time.sleep(0.5)
        out = subprocess.run(
            ns_exec(
                client_ns,
                "iperf3",
                "-c",
                SERVER,
                "-p",
                str(IPERF_PORT),
                "-t",
                str(IPERF_SECONDS),
                "-J",
            ),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        srv.kill()
        srv.wait()


def request_response(client_ns: str, server_ns: str) -> float:
    """1-byte TCP request/response transactions per second over one connection."""
    srv = subprocess.Popen(
        ns_exec(server_ns, sys.executable, "-c", RR_SERVER % RR_PORT),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert srv.stdout is not None and srv.stdout.readline().strip() == "ready"
        code = RR_CLIENT % (SERVER, RR_PORT, RR_SECONDS, RR_SECONDS)
        out = subprocess.run(
            ns_exec(client_ns, sys.executable, "-c", code),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        return float(out.strip())
    finally:
        srv.kill()
        srv.wait()


def tcp_frame(src: str, dst: str, sport: int, dport: int, flags: int) -> bytes:
    """An Ethernet/IPv4/TCP frame (checksums are not needed by the programs)."""
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        40,
        1,
        0x4000,
        64,
        6,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp


def program_cost_ns(dp: Datapath, spec: EndpointSpec) -> dict[str, int]:
    """ns per packet of the server's programs on an established flow (BPF_PROG_TEST_RUN)."""
    prog = dp.load_endpoint(spec)
    try:
        to_c, from_c = prog.fds["cil_to_container"], prog.fds["cil_from_container"]
        prog_test_run(to_c, tcp_frame(CLIENT, SERVER, 41000, IPERF_PORT, 0x02))  # SYN: new flow
        req = prog_test_run(to_c, tcp_frame(CLIENT, SERVER, 41000, IPERF_PORT, 0x10), 200000)
        rep = prog_test_run(from_c, tcp_frame(SERVER, CLIENT, IPERF_PORT, 41000, 0x10), 200000)
        assert req.retval == 0 and rep.retval == 0
        return {
            "to_container_established": req.duration_ns,
            "from_container_reply": rep.duration_ns,
        }
    finally:
        prog.close()


def policy_1000(client_identity: int) -> EndpointPolicy:
    filler = tuple(
        PolicyEntry(10000 + i, Direction.INGRESS, Protocol.TCP, 1024 + i, 1024 + i)
        for i in range(998)
    )
    allow = (
        PolicyEntry(client_identity, Direction.INGRESS, Protocol.TCP, IPERF_PORT, IPERF_PORT),
        PolicyEntry(client_identity, Direction.INGRESS, Protocol.TCP, RR_PORT, RR_PORT),
    )
    return EndpointPolicy(allow + filler, ingress_enforced=True)


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench/datapath.py needs root (bpffs, BPF syscall, netns)")
    prefix = "cdpb" + uuid.uuid4().hex[:6]
    names = [f"{prefix}-{r}" for r in ("node", "client", "server")]
    node_ns, client_ns, server_ns = names
    bpffs = tempfile.mkdtemp(prefix="ciliumctl-bench-bpffs-")
    subprocess.run(["mount", "-t", "bpf", "bpf", bpffs], check=True)
    result: dict[str, object] = {"bench": "datapath"}
    try:
        for n in names:
            netlink.create_netns(n)
        netlink.enable_forwarding(node_ns)
        specs = []
        for ep_id, ns, ip, ident in (
            (1, client_ns, CLIENT, ID_CLIENT),
            (2, server_ns, SERVER, ID_SERVER),
        ):
            pod_mac, host_mac = netlink.plumb_endpoint(f"lxc{ep_id}", ns, ip, None, node_ns)
            specs.append(EndpointSpec(ep_id, f"lxc{ep_id}", ident, ip, None, pod_mac, host_mac))
        root = os.path.join(bpffs, "node")
        os.makedirs(root)
        dp = Datapath(root, netns=node_ns, routing="native")
        for s in specs:
            dp.upsert_ipcache(IPCacheEntry(s.ipv4 or "", s.identity))

        # Compile + load, then attach, of each endpoint; the loaded programs are kept so the
        # rounds below detach and re-attach them without compiling again.
        progs, compile_s, attach_s = [], [], []
        for spec, pol in ((specs[0], EndpointPolicy()), (specs[1], policy_1000(ID_CLIENT))):
            t0 = time.perf_counter()
            progs.append(dp.load_endpoint(spec))
            compile_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            dp.create_endpoint(spec, pol, programs=progs[-1])
            attach_s.append(time.perf_counter() - t0)

        # The goal's measure: one connection each, programs toggled every 0.5 s.
        result["tcp_stream_toggled_gbps"] = toggled(
            "stream", client_ns, server_ns, dp, specs, progs
        )
        result["tcp_rr_toggled_per_s"] = toggled("rr", client_ns, server_ns, dp, specs, progs)

        base_tp, base_rr, bpf_tp, bpf_rr = [], [], [], []
        # iperf3 and a fresh connection per round, rounds interleaved (the machine is shared).
        for _ in range(3):
            for spec in specs:
                dp.detach_endpoint(spec)
            base_tp.append(tcp_throughput(client_ns, server_ns))
            base_rr.append(request_response(client_ns, server_ns))
            for spec, prog in zip(specs, progs, strict=True):
                dp.attach_endpoint(spec, prog)
            bpf_tp.append(tcp_throughput(client_ns, server_ns))
            bpf_rr.append(request_response(client_ns, server_ns))
        hits = [r for r in dp.dump_map("cilium_policy_00002") if r.get("packets")]
        for prog in progs:
            prog.close()

        med = statistics.median
        result["tcp_throughput_gbps"] = {
            "no_bpf": round(med(base_tp), 2),
            "bpf_1000_policy": round(med(bpf_tp), 2),
            "rounds": [[round(x, 2), round(y, 2)] for x, y in zip(base_tp, bpf_tp, strict=True)],
        }
        result["tcp_throughput_ratio"] = round(med(bpf_tp) / med(base_tp), 3)
        result["tcp_rr_per_s"] = {
            "no_bpf": round(med(base_rr)),
            "bpf_1000_policy": round(med(bpf_rr)),
            "rounds": [[round(x), round(y)] for x, y in zip(base_rr, bpf_rr, strict=True)],
        }
        result["tcp_rr_ratio"] = round(med(bpf_rr) / med(base_rr), 3)
        result["ratio_goal"] = 0.9
        result["program_ns_per_packet"] = program_cost_ns(dp, specs[1])
        result["policy_entries_matched_by_the_traffic"] = len(hits)
        result["endpoint_compile_load_s"] = [round(x, 2) for x in compile_s]
        result["endpoint_attach_s"] = [round(x, 3) for x in attach_s]

        big = EndpointPolicy(
            tuple(
                PolicyEntry(20000 + i, Direction.INGRESS, Protocol.TCP, 80, 80)
                for i in range(10000)
            ),
            ingress_enforced=True,
        )
        swaps = []
        for _ in range(5):
            t0 = time.perf_counter()
            dp.replace_policy(2, big)
            swaps.append(time.perf_counter() - t0)
        dp.replace_policy(2, policy_1000(ID_CLIENT))
        result["policy_replace_10000_ms"] = {
            "median": round(statistics.median(swaps) * 1000, 1),
            "max": round(max(swaps) * 1000, 1),
            "goal": 200,
        }

        entries = [
            IPCacheEntry(f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/32", 5000 + i)
            for i in range(100000)
        ]
        t0 = time.perf_counter()
        for e in entries[:20000]:
            dp.upsert_ipcache(e)
        one_by_one = 20000 / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        dp.upsert_ipcache_many(entries)
        dt = time.perf_counter() - t0
        result["ipcache_insert_one_by_one_per_s"] = round(one_by_one)
        result["ipcache_insert"] = {
            "prefixes": len(entries),
            "seconds": round(dt, 2),
            "per_s": round(len(entries) / dt),
        }
        dp.close()
    finally:
        for n in reversed(names):
            netlink.remove_netns(n)
        subprocess.run(["umount", "-l", bpffs], check=False)
        shutil.rmtree(bpffs, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
