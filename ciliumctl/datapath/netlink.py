"""Netlink through pyroute2: veth pairs, namespaces, addresses, routes, neighbours, clsact and
tc filters holding a program fd. No ``ip``/``tc`` subprocesses.

Every function takes ``netns``: the name of a network namespace (under /run/netns) to act in,
or None for the caller's own namespace.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

from ciliumctl.datapath.addressing import GATEWAY4 as GATEWAY4  # re-exported: a Plumber
from ciliumctl.datapath.addressing import GATEWAY6
from ciliumctl.datapath.errors import DatapathError

TC_INGRESS = "ffff:fff2"
TC_EGRESS = "ffff:fff3"
VXLAN_PORT = 8472  # Cilium's default tunnel port


_sessions = threading.local()


CLONE_NEWNET = 0x40000000


def netns_path(netns: str) -> str:
    """A namespace's file: a path as given, a name under /run/netns (as ``ip netns``)."""
    return netns if netns.startswith("/") else f"/run/netns/{netns}"


def _netlink_socket_in(netns: str) -> socket.socket:
    """A NETLINK_ROUTE socket inside ``netns``. A socket stays in the namespace it was made
    in, so a short-lived thread enters the namespace, makes it and ends (the rest of the
    process never leaves its own). pyroute2's NetNS forks a child process for this instead,
    and a fork of the agent cost each pod's CNI ADD tens to hundreds of ms under load."""
    import ctypes

    fd = os.open(netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
    made: dict[str, Any] = {}

    def enter() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            made["error"] = OSError(err, f"cannot enter {netns}: {os.strerror(err)}")
            return
        made["sock"] = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)

    try:
        worker = threading.Thread(target=enter, name="netns-socket")
        worker.start()
        worker.join()
    finally:
        os.close(fd)
    if "sock" not in made:
        raise made.get("error") or OSError(f"cannot make a netlink socket in {netns}")
    return made["sock"]  # type: ignore[no-any-return]


def _open(netns: str | None) -> Any:
    from pyroute2 import IPRoute

    if not netns:
        return IPRoute()
    sock = _netlink_socket_in(netns)
    try:
        ip = IPRoute(fileno=sock.fileno())
    except BaseException:
        sock.close()
        raise
    sock.detach()  # the IPRoute owns the descriptor now
    return ip


@contextlib.contextmanager
def ipr(netns: str | None = None) -> Iterator[Any]:
    """An IPRoute (or NetNS) socket: the :func:`session`'s for ``netns`` when this thread has
    one open, else a new one closed afterwards."""
    shared = getattr(_sessions, "sockets", {})
    if netns in shared:
        yield shared[netns]
        return
    sock = _open(netns)
    try:
        yield sock
    finally:
        sock.close()


@contextlib.contextmanager
def session(*namespaces: str | None) -> Iterator[None]:
    """Keep one socket per namespace open for this thread's calls inside the block.

    A socket into another namespace costs pyroute2 a fork, and each socket its own setup: a
    CNI ADD made ten of them, the agent's endpoint attach four.
    """
    shared: dict[str | None, Any] = getattr(_sessions, "sockets", {})
    opened = [ns for ns in dict.fromkeys(namespaces) if ns not in shared]
    _sessions.sockets = shared
    try:
        for ns in opened:
            shared[ns] = _open(ns)
        yield
    finally:
        for ns in opened:
            with contextlib.suppress(KeyError):
                shared.pop(ns).close()


def create_netns(name: str) -> None:
    from pyroute2 import netns as pnetns

    if name not in pnetns.listnetns():
        pnetns.create(name)


def remove_netns(name: str) -> None:
    from pyroute2 import netns as pnetns

    if name in pnetns.listnetns():
        pnetns.remove(name)


def ifindex(name: str, netns: str | None = None) -> int:
    with ipr(netns) as ip:
        found = ip.link_lookup(ifname=name)
    if not found:
        raise DatapathError(
            f"network interface {name} not found" + (f" in {netns}" if netns else "")
        )
    return int(found[0])


def default_route_device(netns: str | None = None) -> str | None:
    """The interface of the IPv4 default route (the node's external device), or None."""
    with ipr(netns) as ip:
        for route in ip.get_default_routes(family=2):
            oif = route.get_attr("RTA_OIF")
            if oif:
                links = ip.get_links(oif)
                if links:
                    return str(links[0].get_attr("IFLA_IFNAME"))
    return None


def link_mac(name: str, netns: str | None = None) -> str:
    with ipr(netns) as ip:
        link = ip.get_links(ifname=name)[0]
    return str(link.get_attr("IFLA_ADDRESS"))


def set_sysctl(key: str, value: str, netns: str | None = None) -> None:
    """Write /proc/sys/<key>, inside ``netns`` when given (entered and left by this thread)."""
    from pyroute2 import netns as pnetns

    path = "/proc/sys/" + key.replace(".", "/")
    if netns:
        pnetns.pushns(netns)
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except OSError as exc:
        raise DatapathError(f"setting sysctl {key}={value}: {exc.strerror}") from exc
    finally:
        if netns:
            pnetns.popns()


def create_veth(
    host_ifname: str,
    peer_netns: str,
    host_netns: str | None = None,
    peer_ifname: str = "eth0",
) -> None:
    """A veth pair with one end in ``host_netns`` and the other, ``peer_ifname``, made
    directly in ``peer_netns`` (one request: no temporary name, no move and rename, each of
    which takes the kernel's RTNL lock that every pod starting on the node contends for)."""
    with ipr(host_netns) as ip:
        ip.link(
            "add",
            ifname=host_ifname,
            kind="veth",
            peer={"ifname": peer_ifname, "net_ns_fd": netns_path(peer_netns)},
        )
        ip.link("set", index=ip.link_lookup(ifname=host_ifname)[0], state="up")
    with ipr(peer_netns) as ip:
        for name in (peer_ifname, "lo"):
            ip.link("set", index=ip.link_lookup(ifname=name)[0], state="up")


def delete_link(name: str, netns: str | None = None) -> None:
    """Delete a link (idempotent). In our own namespace a missing link is seen without
    netlink: runtimes repeat CNI DEL, and each repeat would otherwise import pyroute2."""
    if netns is None:
        try:
            socket.if_nametoindex(name)
        except OSError:
            return
    with ipr(netns) as ip:
        found = ip.link_lookup(ifname=name)
        if found:
            ip.link("del", index=found[0])


def add_address(ifname: str, cidr: str, netns: str | None = None) -> None:
    iface = ipaddress.ip_interface(cidr)
    with ipr(netns) as ip:
        idx = ip.link_lookup(ifname=ifname)[0]
        kw: dict[str, Any] = {}
        if iface.version == 6:
            kw["flags"] = 0x02  # IFA_F_NODAD: usable at once
        ip.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen, **kw)


def add_route(
    dst: str,
    netns: str | None = None,
    ifname: str | None = None,
    gateway: str | None = None,
    onlink: bool = False,
) -> None:
    with ipr(netns) as ip:
        kw: dict[str, Any] = {"dst": dst}
        if ifname:
            kw["oif"] = ip.link_lookup(ifname=ifname)[0]
        if gateway:
            kw["gateway"] = gateway
        if onlink:
            kw["flags"] = 4  # RTNH_F_ONLINK
        if ipaddress.ip_network(dst if dst != "default" else "0.0.0.0/0").version == 6 or (
            gateway and ipaddress.ip_address(gateway).version == 6
        ):
            kw["family"] = 10
        if dst == "default":
            kw["dst"] = "::/0" if kw.get("family") == 10 else "0.0.0.0/0"
        ip.route("replace", **kw)


def add_neighbour(ifname: str, address: str, mac: str, netns: str | None = None) -> None:
    """A permanent neighbour entry (no ARP/NDP needed for the endpoint's gateway)."""
    with ipr(netns) as ip:
        idx = ip.link_lookup(ifname=ifname)[0]
        family = 10 if ipaddress.ip_address(address).version == 6 else 2
        ip.neigh("replace", dst=address, lladdr=mac, ifindex=idx, state=0x80, family=family)


def ensure_clsact(ifname: str, netns: str | None = None) -> None:
    with ipr(netns) as ip:
        idx = ip.link_lookup(ifname=ifname)[0]
        try:
            ip.tc("add", "clsact", idx)
        except Exception as exc:  # NetlinkError: EEXIST when already there
            if getattr(exc, "code", None) != errno.EEXIST:
                raise DatapathError(
                    f"adding the clsact qdisc to {ifname}: {exc}",
                    "the kernel needs CONFIG_NET_SCH_INGRESS (clsact)",
                ) from exc


def attach_bpf(ifname: str, direction: str, fd: int, name: str, netns: str | None = None) -> None:
    """Attach (or atomically replace) the direct-action filter of ``direction`` on ``ifname``."""
    ensure_clsact(ifname, netns)
    parent = TC_INGRESS if direction == "ingress" else TC_EGRESS
    with ipr(netns) as ip:
        idx = ip.link_lookup(ifname=ifname)[0]
        try:
            ip.tc(
                "replace-filter",
                "bpf",
                idx,
                handle=1,
                fd=fd,
                name=name,
                parent=parent,
                prio=1,
                protocol=0x0003,  # ETH_P_ALL
                classid=1,
                direct_action=True,
            )
        except Exception as exc:
            raise DatapathError(f"attaching {name} to {ifname} ({direction}): {exc}") from exc


def detach_bpf(ifname: str, netns: str | None = None) -> None:
    """Remove the clsact qdisc (and with it both filters) of ``ifname``."""
    with ipr(netns) as ip:
        found = ip.link_lookup(ifname=ifname)
        if not found:
            return
        try:
            ip.tc("del", "clsact", found[0])
        except Exception as exc:
            if getattr(exc, "code", None) not in (errno.ENOENT, errno.EINVAL):
                raise


def attached_programs(ifname: str, netns: str | None = None) -> dict[str, str]:
    """direction -> program name of the bpf filters on ``ifname``."""
    out: dict[str, str] = {}
    with ipr(netns) as ip:
        idx = ip.link_lookup(ifname=ifname)[0]
        for direction, parent in (("ingress", TC_INGRESS), ("egress", TC_EGRESS)):
            try:
                filters = ip.get_filters(index=idx, parent=parent)
            except Exception:  # no clsact qdisc: nothing attached in this direction
                filters = []
            for f in filters:
                opts = f.get_attr("TCA_OPTIONS")
                if opts is not None and opts.get_attr("TCA_BPF_NAME"):
                    out[direction] = str(opts.get_attr("TCA_BPF_NAME"))
    return out


def create_vxlan(name: str = "cilium_vxlan", netns: str | None = None) -> int:
    """A collect-metadata (external) VXLAN device, as Cilium's tunnel mode uses."""
    with ipr(netns) as ip:
        if not ip.link_lookup(ifname=name):
            ip.link(
                "add",
                ifname=name,
                kind="vxlan",
                vxlan_collect_metadata=1,
                vxlan_port=VXLAN_PORT,
                vxlan_learning=0,
            )
        idx = ip.link_lookup(ifname=name)[0]
        ip.link("set", index=idx, state="up")
        return int(idx)


def plumb_endpoint(
    host_ifname: str,
    pod_netns: str,
    ipv4: str | None = None,
    ipv6: str | None = None,
    node_netns: str | None = None,
) -> tuple[str, str]:
    """Wire a pod the way Cilium's CNI does: a veth, /32 and /128 addresses, a default route
    via a link-local gateway with a static neighbour entry, host routes to the pod.

    Returns (pod MAC, host-side MAC) for :class:`~ciliumctl.datapath.model.EndpointSpec`.
    """
    with session(node_netns, pod_netns):
        return _plumb(host_ifname, pod_netns, ipv4, ipv6, node_netns)


def _plumb(
    host_ifname: str,
    pod_netns: str,
    ipv4: str | None,
    ipv6: str | None,
    node_netns: str | None,
) -> tuple[str, str]:
    create_veth(host_ifname, pod_netns, node_netns)
    host_mac = link_mac(host_ifname, node_netns)
    pod_mac = link_mac("eth0", pod_netns)
    for address, gw, plen in ((ipv4, GATEWAY4, 32), (ipv6, GATEWAY6, 128)):
        if not address:
            continue
        add_address("eth0", f"{address}/{plen}", pod_netns)
        if plen == 32:
            add_route(f"{gw}/32", pod_netns, ifname="eth0")
        add_neighbour("eth0", gw, host_mac, pod_netns)
        add_route("default", pod_netns, ifname="eth0", gateway=gw, onlink=True)
        add_route(f"{address}/{plen}", node_netns, ifname=host_ifname)
        add_neighbour(host_ifname, address, pod_mac, node_netns)
    return pod_mac, host_mac


def enable_forwarding(netns: str | None = None) -> None:
    """IPv4/IPv6 forwarding on, reverse-path filtering off: the node routes between pods."""
    for key, value in (
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv6.conf.all.forwarding", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.default.rp_filter", "0"),
    ):
        set_sysctl(key, value, netns)
