"""The sealed test network of a dev cluster with real nodes.

Layout (all names derived from the cluster name, so several clusters run side by side)::

    host netns            router netns (ciliumctl-<c>-router)          node netns
    cc<key>  <--veth-->   host0   br0 (underlay) <--veth n<i>-->       eth0 (real-node-<i>)
    198.18.x.1/30         .2/30   100.64.s.1/24                        100.64.s.(10+i)
                                  world0 <--veth--> eth0 of the world netns
                                                    (1.1.1.1, 1.0.0.1, 2606:4700:4700::1111/1001)

The router has no default route, so anything that is not the underlay, the world or the host
link is unreachable. The host end DNATs exactly the API server and registry ports to
127.0.0.1 and drops every other packet from the router; the router masquerades what it sends
to the host (pod addresses overlap between clusters). The host reaches each cluster's
underlay (unique per cluster, like the host link) only on the kubelet ports, for
``kubectl exec``/``logs``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ciliumctl.devcluster import netns
from ciliumctl.devcluster.cluster import DevClusterError

#: host links come from 198.18.0.0/15 (RFC 2544, never routed), one /30 per cluster
HOST_LINK_POOL = ipaddress.IPv4Network("198.18.0.0/15")
#: underlays come from 100.64.0.0/10 (RFC 6598), one /24 per cluster
UNDERLAY_POOL = ipaddress.IPv4Network("100.64.0.0/10")
SLOTS = 16384
WORLD_LINK = ("172.30.255.1", "172.30.255.2")
WORLD_LINK6 = ("fd30::1", "fd30::2")
#: the external addresses the connectivity tests use, owned by the world namespace
WORLD_IPV4 = ("1.1.1.1", "1.0.0.1")
WORLD_IPV6 = ("2606:4700:4700::1111", "2606:4700:4700::1001")
WORLD_NAMES = ("one.one.one.one", "k8s.io")
KUBELET_PORTS = (10248, 10250)
SLOT_DIR = Path("/run/ciliumctl/slots")


def key_of(cluster: str) -> str:
    """A short stable hash of the cluster name, for host-side interface and table names."""
    return hashlib.sha256(cluster.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Addressing:
    """The addresses of one cluster's sealed network, derived from its slot."""

    cluster: str
    slot: int

    @property
    def key(self) -> str:
        return key_of(self.cluster)

    @property
    def host_if(self) -> str:
        """Host end of the host link (15-char interface name limit)."""
        return f"cc{self.key}"

    @property
    def nft_table(self) -> str:
        return f"ciliumctl_{self.key}"

    @property
    def router_ns(self) -> str:
        return f"ciliumctl-{self.cluster}-router"

    @property
    def world_ns(self) -> str:
        return f"ciliumctl-{self.cluster}-world"

    def node_ns(self, node: str) -> str:
        return f"ciliumctl-{self.cluster}-{node}"

    @property
    def host_ip(self) -> str:
        """The host's address on the host link: nodes reach the API server and registry here."""
        return str(HOST_LINK_POOL.network_address + 4 * self.slot + 1)

    @property
    def router_link_ip(self) -> str:
        return str(HOST_LINK_POOL.network_address + 4 * self.slot + 2)

    @property
    def gateway_mac(self) -> str:
        """The router bridge's own MAC address (locally administered, one per slot)."""
        return f"02:cc:00:00:{self.slot >> 8 & 0xFF:02x}:{self.slot & 0xFF:02x}"

    @property
    def underlay(self) -> ipaddress.IPv4Network:
        base = UNDERLAY_POOL.network_address + 256 * self.slot
        return ipaddress.IPv4Network(f"{base}/24")

    @property
    def underlay6(self) -> ipaddress.IPv6Network:
        return ipaddress.IPv6Network(f"fdcc:0:{self.slot:x}::/64")

    @property
    def gateway(self) -> str:
        return str(self.underlay.network_address + 1)

    @property
    def gateway6(self) -> str:
        return str(self.underlay6.network_address + 1)

    def node_ip(self, index: int) -> str:
        return str(self.underlay.network_address + 10 + index)

    def node_ip6(self, index: int) -> str:
        return str(self.underlay6.network_address + 10 + index)


@contextlib.contextmanager
def _slot_lock() -> Iterator[None]:
    SLOT_DIR.mkdir(parents=True, exist_ok=True)
    with open(SLOT_DIR.parent / "slots.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _host_addresses() -> set[str]:
    out = netns.ip("-j", "addr", "show")
    return {
        str(a.get("local"))
        for iface in json.loads(out or "[]")
        for a in iface.get("addr_info", [])
        if a.get("local")
    }


def _host_routes() -> list[ipaddress.IPv4Network]:
    out = netns.ip("-j", "-4", "route", "show", "table", "all")
    nets = []
    for route in json.loads(out or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", False))
    return nets


def _slot_taken(addr: Addressing, addresses: set[str], routes: list[ipaddress.IPv4Network]) -> str:
    """Why the slot cannot be used ('' when it is free on this machine)."""
    link = ipaddress.IPv4Network(f"{addr.host_ip}/30", strict=False)
    for ip in (addr.host_ip, addr.router_link_ip):
        if ip in addresses:
            return f"host link {link} (address {ip} is already configured on this machine)"
    for net in routes:
        if net.overlaps(addr.underlay) or net.overlaps(link):
            return f"underlay {addr.underlay} or host link {link} (route {net} exists)"
    return ""


def allocate(cluster: str, state_dir: Path, recorded: int | None = None) -> Addressing:
    """The cluster's slot: the recorded one (which must still be free) or the first free one,
    starting at a hash of the name, reserved machine-wide under ``/run/ciliumctl/slots``."""
    netns.require_root()
    with _slot_lock():
        addresses, routes = _host_addresses(), _host_routes()
        owners = {}
        for entry in SLOT_DIR.glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                owners[int(entry.stem)] = json.loads(entry.read_text())
        mine = {"cluster": cluster, "state_dir": str(state_dir)}
        for owner in owners.values():  # namespaces are named after the cluster
            other = owner.get("state_dir", "")
            if owner.get("cluster") == cluster and other != str(state_dir) and Path(other).exists():
                raise DevClusterError(
                    f"a dev cluster named {cluster!r} with real nodes already runs from {other}",
                    "give this one another --name (names are unique per machine)",
                )
        if recorded is not None:
            addr = Addressing(cluster, recorded)
            owner = owners.get(recorded)
            why = ""
            if owner is not None and owner != mine:
                why = f"slot {recorded} (held by dev cluster {owner.get('cluster')!r})"
            elif owner is None and not netns.link_exists(addr.host_if):
                why = _slot_taken(addr, addresses, routes)
            if why:
                raise DevClusterError(
                    f"the sealed network of dev cluster {cluster!r} cannot be set up again: "
                    f"{why} is taken",
                    "free it, or `cilium dev-cluster down` and `up` again to get a new one",
                )
            _write_slot(recorded, mine)
            return addr
        for name in list(owners):  # reservations of clusters whose state is gone
            if not Path(owners[name].get("state_dir", "/nonexistent")).exists():
                (SLOT_DIR / f"{name}.json").unlink(missing_ok=True)
                owners.pop(name)
        start = int(key_of(cluster), 16) % SLOTS
        for step in range(SLOTS):
            slot = (start + step) % SLOTS
            addr = Addressing(cluster, slot)
            if owners.get(slot) == mine:
                return addr
            if slot in owners or _slot_taken(addr, addresses, routes):
                continue
            _write_slot(slot, mine)
            return addr
    raise DevClusterError(
        f"no free host link in {HOST_LINK_POOL} / underlay in {UNDERLAY_POOL}",
        "bring down other dev clusters with real nodes",
    )


def _write_slot(slot: int, owner: dict[str, str]) -> None:
    (SLOT_DIR / f"{slot}.json").write_text(json.dumps(owner))


def release(addr: Addressing, state_dir: Path) -> None:
    """Give the slot back (only when this cluster holds it)."""
    with _slot_lock():
        entry = SLOT_DIR / f"{addr.slot}.json"
        with contextlib.suppress(OSError, ValueError):
            if json.loads(entry.read_text()) == {
                "cluster": addr.cluster,
                "state_dir": str(state_dir),
            }:
                entry.unlink()


@dataclass(frozen=True)
class Ports:
    """The two host services nodes may reach (on 127.0.0.1 of the host)."""

    apiserver: int
    registry: int


def _host_rules(addr: Addressing, ports: Ports) -> str:
    tcp = f"{{ {ports.apiserver}, {ports.registry} }}"
    kubelet = "{ " + ", ".join(str(p) for p in KUBELET_PORTS) + " }"
    h, t = addr.host_if, addr.nft_table
    return f"""
table inet {t}
delete table inet {t}
table inet {t} {{
  chain pre {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname "{h}" ip daddr {addr.host_ip} tcp dport {tcp} dnat ip to 127.0.0.1
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "{h}" ip daddr 127.0.0.1 tcp dport {tcp} ct status dnat accept
    iifname "{h}" ct state established,related accept
    iifname "{h}" drop
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname "{h}" drop
    oifname "{h}" drop
  }}
  chain output {{
    type filter hook output priority filter; policy accept;
    oifname "{h}" ct state established,related accept
    oifname "{h}" ip daddr {addr.underlay} tcp dport {kubelet} accept
    oifname "{h}" drop
  }}
}}
"""


def _router_rules(addr: Addressing, ports: Ports) -> str:
    tcp = f"{{ {ports.apiserver}, {ports.registry} }}"
    kubelet = "{ " + ", ".join(str(p) for p in KUBELET_PORTS) + " }"
    return f"""
table inet seal
delete table inet seal
table inet seal {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    oifname "host0" ip daddr {addr.host_ip} tcp dport {tcp} accept
    oifname "host0" drop
    iifname "host0" ip daddr {addr.underlay} tcp dport {kubelet} accept
    iifname "host0" drop
  }}
  chain input {{
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname != "host0" meta l4proto {{ icmp, ipv6-icmp }} accept
  }}
  chain post {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "host0" masquerade
  }}
}}
"""


@dataclass
class NetworkInfo:
    """What other code needs to know about a cluster's sealed network (kept in cluster.json)."""

    slot: int
    host_ip: str
    host_if: str
    router_ns: str
    world_ns: str
    underlay: str
    gateway: str
    world_ipv4: list[str]
    world_ipv6: list[str]

    @classmethod
    def of(cls, addr: Addressing) -> NetworkInfo:
        return cls(
            slot=addr.slot,
            host_ip=addr.host_ip,
            host_if=addr.host_if,
            router_ns=addr.router_ns,
            world_ns=addr.world_ns,
            underlay=str(addr.underlay),
            gateway=addr.gateway,
            world_ipv4=list(WORLD_IPV4),
            world_ipv6=list(WORLD_IPV6),
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _veth(name: str, peer: str, peer_ns: str, ns: str | None = None) -> None:
    netns.ip("link", "add", name, "type", "veth", "peer", "name", peer, "netns", peer_ns, ns=ns)


def _addr(ns: str | None, dev: str, cidr: str) -> None:
    extra = ["nodad"] if ":" in cidr else []
    netns.ip("addr", "replace", cidr, "dev", dev, *extra, ns=ns)


def present(addr: Addressing) -> bool:
    """True when the router, the world and the host link all exist."""
    return (
        netns.exists(addr.router_ns)
        and netns.exists(addr.world_ns)
        and netns.link_exists(addr.host_if)
    )


def create(addr: Addressing, ports: Ports) -> None:
    """Build the router, the world and the host link (from scratch), then load the rules."""
    teardown(addr, [])
    r, w = addr.router_ns, addr.world_ns
    netns.add(r)
    netns.add(w)
    netns.sysctl(r, "net.ipv4.ip_forward", "1")
    netns.sysctl(r, "net.ipv6.conf.all.forwarding", "1")
    # A bridge without an address of its own takes the lowest of its ports' and changes it
    # when a node with a lower one joins; the nodes that joined before then send to a MAC
    # nobody has until their ARP entry expires (seen: a kubelet's API connection stalled
    # for 45 s). A fixed, locally administered address per slot keeps the gateway's MAC.
    netns.ip("link", "add", "br0", "address", addr.gateway_mac, "type", "bridge", ns=r)
    _addr(r, "br0", f"{addr.gateway}/24")
    _addr(r, "br0", f"{addr.gateway6}/64")
    netns.ip("link", "set", "br0", "up", ns=r)
    # host link
    _veth(addr.host_if, "host0", r)
    netns.sysctl(None, f"net.ipv6.conf.{addr.host_if}.disable_ipv6", "1")
    netns.sysctl(None, f"net.ipv4.conf.{addr.host_if}.route_localnet", "1")
    netns.sysctl(r, "net.ipv6.conf.host0.disable_ipv6", "1")
    _addr(None, addr.host_if, f"{addr.host_ip}/30")
    _addr(r, "host0", f"{addr.router_link_ip}/30")
    netns.ip("link", "set", addr.host_if, "up")
    netns.ip("link", "set", "host0", "up", ns=r)
    netns.ip("route", "replace", str(addr.underlay), "via", addr.router_link_ip)
    # world
    _veth("world0", "eth0", w, ns=r)
    _addr(r, "world0", f"{WORLD_LINK[0]}/30")
    _addr(r, "world0", f"{WORLD_LINK6[0]}/64")
    _addr(w, "eth0", f"{WORLD_LINK[1]}/30")
    _addr(w, "eth0", f"{WORLD_LINK6[1]}/64")
    netns.ip("link", "set", "world0", "up", ns=r)
    netns.ip("link", "set", "eth0", "up", ns=w)
    for ip in WORLD_IPV4:
        _addr(w, "lo", f"{ip}/32")
        netns.ip("route", "replace", f"{ip}/32", "via", WORLD_LINK[1], ns=r)
    for ip in WORLD_IPV6:
        _addr(w, "lo", f"{ip}/128")
        netns.ip("-6", "route", "replace", f"{ip}/128", "via", WORLD_LINK6[1], ns=r)
    netns.ip("route", "replace", "default", "via", WORLD_LINK[0], ns=w)
    netns.ip("-6", "route", "replace", "default", "via", WORLD_LINK6[0], ns=w)
    apply_rules(addr, ports)


def apply_rules(addr: Addressing, ports: Ports) -> None:
    """(Re)load the host's and the router's rules for the current API server/registry ports."""
    netns.nft(None, _host_rules(addr, ports))
    netns.nft(addr.router_ns, _router_rules(addr, ports))


def add_node(addr: Addressing, node: str, index: int) -> str:
    """Create the node's network namespace on the underlay; returns its namespace name."""
    ns, r = addr.node_ns(node), addr.router_ns
    netns.add(ns)
    dev = f"n{index}"
    netns.ip("link", "del", dev, ns=r, check=False)
    _veth(dev, "eth0", ns, ns=r)
    netns.ip("link", "set", dev, "master", "br0", ns=r)
    netns.ip("link", "set", dev, "up", ns=r)
    _addr(ns, "eth0", f"{addr.node_ip(index)}/24")
    _addr(ns, "eth0", f"{addr.node_ip6(index)}/64")
    netns.ip("link", "set", "eth0", "up", ns=ns)
    netns.ip("route", "replace", "default", "via", addr.gateway, ns=ns)
    netns.ip("-6", "route", "replace", "default", "via", addr.gateway6, ns=ns)
    for key, value in (
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv6.conf.all.forwarding", "1"),
        ("net.bridge.bridge-nf-call-iptables", "1"),
        ("net.bridge.bridge-nf-call-ip6tables", "1"),
    ):
        netns.sysctl(ns, key, value)
    return ns


def route_pod_cidrs(
    addr: Addressing, nodes: dict[int, tuple[str, str]], *, between_nodes: bool = True
) -> None:
    """Routes to the nodes' podCIDRs (node index -> (node name, podCIDR)) on the router,
    which routes the world's and the host's replies back to pods (as a cloud network's
    route table does), and with ``between_nodes`` on every node too (the bridge CNI has no
    overlay; Cilium carries pod-to-pod traffic itself)."""
    for index, (_name, cidr) in nodes.items():
        if cidr:
            netns.ip("route", "replace", cidr, "via", addr.node_ip(index), ns=addr.router_ns)
    if not between_nodes:
        return
    for index, (name, _cidr) in nodes.items():
        for other, (_oname, ocidr) in nodes.items():
            if other != index and ocidr:
                netns.ip(
                    "route", "replace", ocidr, "via", addr.node_ip(other), ns=addr.node_ns(name)
                )


def teardown(addr: Addressing, nodes: list[str]) -> None:
    """Delete the node namespaces, the world, the router, the host link and the host rules."""
    for node in nodes:
        netns.delete(addr.node_ns(node))
    netns.delete(addr.world_ns)
    netns.delete(addr.router_ns)
    if netns.link_exists(addr.host_if):
        netns.ip("link", "del", addr.host_if, check=False)
    netns.run(["nft", "delete", "table", "inet", addr.nft_table], check=False)
