"""A tiny traffic tool run inside test network namespaces (``ip netns exec NS python ...``).

serve tcp|udp PORT     echo server; prints "got <proto> <peer-ip> <payload>" per message
tcp HOST PORT MSG      connect, send MSG, print the reply; exit 1 on failure (1 s timeout)
udp HOST PORT MSG      send MSG, print the reply; exit 1 when none arrives within 1 s
ping HOST              one ICMP/ICMPv6 echo (raw socket); exit 1 when no reply within 1 s
stream HOST PORT N     send N numbered UDP datagrams, 2 ms apart (no replies awaited)
hold HOST PORT         keep one TCP connection: echo a line from stdin, print the reply
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time


def family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def serve(proto: str, port: int) -> None:
    fam = socket.AF_INET6
    if proto == "tcp":
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))
        s.listen(64)
        print("ready", flush=True)
        while True:
            c, peer = s.accept()
            c.settimeout(30)
            with c:
                buf = b""
                while True:
                    try:
                        data = c.recv(4096)
                    except OSError:
                        break
                    if not data:
                        break
                    buf += data
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        print(
                            f"got tcp {peer[0].removeprefix('::ffff:')} {line.decode()}", flush=True
                        )
                        c.sendall(b"ok " + line + b"\n")
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(4096)
        print(f"got udp {peer[0].removeprefix('::ffff:')} {data.decode()}", flush=True)
        s.sendto(b"ok " + data, peer)


def tcp(host: str, port: int, msg: str) -> int:
    try:
        with socket.create_connection((host, port), timeout=1) as c:
            c.sendall(msg.encode() + b"\n")
            print(c.recv(4096).decode().strip())
        return 0
    except OSError as exc:
        print(f"fail {exc}")
        return 1


def udp(host: str, port: int, msg: str) -> int:
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.settimeout(1)
    s.sendto(msg.encode(), (host, port))
    try:
        print(s.recv(4096).decode())
        return 0
    except OSError as exc:
        print(f"fail {exc}")
        return 1


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ping(host: str) -> int:
    v6 = ":" in host
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    s = socket.socket(family(host), socket.SOCK_RAW, proto)
    s.settimeout(1)
    ident = os.getpid() & 0xFFFF
    req_type, rep_type = (128, 129) if v6 else (8, 0)
    pkt = struct.pack("!BBHHH", req_type, 0, 0, ident, 1) + b"probe"
    if not v6:  # the kernel fills in the ICMPv6 checksum
        pkt = pkt[:2] + struct.pack("!H", _csum(pkt)) + pkt[4:]
    s.sendto(pkt, (host, 0))
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        try:
            data = s.recv(4096)
        except OSError:
            break
        icmp = data if v6 else data[(data[0] & 0xF) * 4 :]
        if icmp[0] == rep_type and struct.unpack("!H", icmp[4:6])[0] == ident:
            print("reply")
            return 0
    print("fail no reply")
    return 1


def stream(host: str, port: int, count: int) -> int:
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    for i in range(count):
        s.sendto(f"seq {i}".encode(), (host, port))
        time.sleep(0.002)
    return 0


def hold(host: str, port: int) -> int:
    with socket.create_connection((host, port), timeout=5) as c:
        print("connected", flush=True)
        f = c.makefile("rb")
        for line in sys.stdin:
            c.sendall(line.encode())
            print(f.readline().decode().strip(), flush=True)
    return 0


def main() -> int:
    cmd, *args = sys.argv[1:]
    if cmd == "serve":
        serve(args[0], int(args[1]))
        return 0
    if cmd == "tcp":
        return tcp(args[0], int(args[1]), args[2])
    if cmd == "udp":
        return udp(args[0], int(args[1]), args[2])
    if cmd == "ping":
        return ping(args[0])
    if cmd == "stream":
        return stream(args[0], int(args[1]), int(args[2]))
    if cmd == "hold":
        return hold(args[0], int(args[1]))
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main())
