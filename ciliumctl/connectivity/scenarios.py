"""Scenarios: turn a test's scenario names into actions over the deployed topology.

Action names and commands are cilium-cli's: ``curl-ipv4-0`` running ``curl --silent --fail
--show-error --connect-timeout 2 --max-time 10 -4 -w ... --output /dev/null URL`` in the
client pod, ``ping-ipv4-0`` running ``ping -c 1 -W 2 ADDR``, and so on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ciliumctl.connectivity import catalog, deploy
from ciliumctl.connectivity import model as m
from ciliumctl.connectivity.params import Params

CURL_WRITE_OUT = "%{local_ip}:%{local_port} -> %{remote_ip}:%{remote_port} = %{response_code}\n"


@dataclass
class Node:
    """A node the test pods run on, with its InternalIP per family."""

    name: str
    addresses: dict[m.Family, str]


@dataclass
class Topology:
    """The deployed peers of one test namespace."""

    namespace: str
    clients: list[m.Peer]
    echoes: list[m.Peer]
    host_netns: list[m.Peer]
    non_cilium_host_netns: list[m.Peer]
    services: list[m.Peer]  # echo Services by DNS name, port 8080
    node_ports: dict[str, int]  # echo Service name -> nodePort
    nodes: list[Node]
    families: list[m.Family]
    agents: list[m.Peer] = field(default_factory=list)


@dataclass(frozen=True)
class Skip:
    """A scenario that cannot run here, and why."""

    scenario: str
    reason: str


def curl_command(
    params: Params, dst: m.Peer, family: m.Family, extra: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """cilium-cli's curl command line for ``dst`` over ``family``."""
    cmd = ["curl", "--silent", "--fail", "--show-error"]
    if params.connect_timeout > 0:
        cmd += ["--connect-timeout", _num(params.connect_timeout)]
    if params.request_timeout > 0:
        cmd += ["--max-time", _num(params.request_timeout)]
    if family is m.Family.IPV4:
        cmd.append("-4")
    elif family is m.Family.IPV6:
        cmd.append("-6")
    host = dst.address(family)
    if host.endswith("."):
        cmd += ["-H", f"Host: {host.rstrip('.')}"]
    cmd += ["-w", CURL_WRITE_OUT, "--output", "/dev/null", *extra]
    hostport = f"[{host}]:{dst.port}" if ":" in host else f"{host}:{dst.port}"
    cmd.append(f"{dst.scheme}://{hostport}{dst.path}")
    return tuple(cmd)


def ping_command(params: Params, dst: m.Peer, family: m.Family) -> tuple[str, ...]:
    """cilium-cli's ping command line."""
    cmd = ["ping", "-c", "1"]
    if family is m.Family.IPV6:
        cmd.append("-6")
    if params.connect_timeout > 0:
        cmd += ["-W", _num(params.connect_timeout)]
    cmd.append(dst.address(family))
    return tuple(cmd)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _matches(peer: m.Peer, labels: Mapping[str, str]) -> bool:
    return all(peer.labels.get(k) == v for k, v in labels.items())


def _retry(params: Params, expect: m.Expectation) -> tuple[str, ...]:
    """Retries for external targets, never for an action expected to be dropped."""
    if not expect.success or params.retry <= 0:
        return ()
    return (
        "--retry",
        str(params.retry),
        "--retry-all-errors",
        "--retry-delay",
        _num(params.retry_delay),
    )


def _endpoint(name: str, url_host: str, port: int, scheme: str, path: str = "") -> m.Peer:
    return m.Peer(
        name=name,
        kind="external",
        addresses={m.Family.ANY: url_host},
        port=port,
        scheme=scheme,
        path=path,
    )


class Builder:
    """Builds the actions of one test over a topology."""

    def __init__(self, spec: catalog.TestSpec, topo: Topology, params: Params, host_port: bool):
        self.spec = spec
        self.topo = topo
        self.params = params
        self.ext = params.external()
        self.host_port = host_port
        self.actions: list[m.Action] = []
        self.skipped: list[Skip] = []

    def _add(
        self,
        scenario: str,
        name: str,
        src: m.Peer,
        dst: m.Peer,
        family: m.Family,
        command: Callable[[m.Expectation], tuple[str, ...]],
    ) -> None:
        expect = self.spec.expectation(src, dst, family, self.ext)
        self.actions.append(
            m.Action(self.spec.name, scenario, name, src, dst, family, command(expect), expect)
        )

    def _curl(
        self, scenario: str, name: str, src: m.Peer, dst: m.Peer, fam: m.Family, retry: bool
    ) -> None:
        def cmd(expect: m.Expectation) -> tuple[str, ...]:
            extra = _retry(self.params, expect) if retry else ()
            return curl_command(self.params, dst, fam, extra)

        self._add(scenario, name, src, dst, fam, cmd)

    def _ping(self, scenario: str, name: str, src: m.Peer, dst: m.Peer, fam: m.Family) -> None:
        def cmd(_expect: m.Expectation) -> tuple[str, ...]:
            return ping_command(self.params, dst, fam)

        self._add(scenario, name, src, dst, fam, cmd)

    def build(self, ref: catalog.ScenarioRef) -> None:
        """Append the actions of scenario ``ref``."""
        method = getattr(self, "_" + ref.name.replace("-", "_"), None)
        if method is None:
            self.skipped.append(Skip(ref.name, "scenario is not implemented in ciliumctl"))
            return
        method(ref)

    # ------------------------------------------------------------------ scenarios
    def _pod_to_pod(self, ref: catalog.ScenarioRef) -> None:
        i = 0
        for client in self.topo.clients:
            if not _matches(client, ref.src):
                continue
            for echo in self.topo.echoes:
                if not _matches(echo, ref.dst):
                    continue
                for fam in self.topo.families:
                    self._curl(ref.name, f"curl-{fam}-{i}", client, echo, fam, False)
                i += 1

    def _pod_to_pod_with_endpoints(self, ref: catalog.ScenarioRef) -> None:
        i = 0
        for client in self.topo.clients:
            for echo in self.topo.echoes:
                for fam in self.topo.families:
                    for path in ("/public", "/private"):
                        dst = m.Peer(
                            echo.name,
                            "pod",
                            echo.addresses,
                            echo.port,
                            echo.scheme,
                            path,
                            echo.labels,
                            echo.node,
                            echo.pod,
                        )
                        self._curl(
                            ref.name,
                            f"curl-{fam}-{i}{path.replace('/', '-')}",
                            client,
                            dst,
                            fam,
                            False,
                        )
                i += 1

    def _client_to_client(self, ref: catalog.ScenarioRef) -> None:
        i = 0
        for src in self.topo.clients:
            for dst in self.topo.clients:
                if src.pod == dst.pod:
                    continue
                for fam in self.topo.families:
                    self._ping(ref.name, f"ping-{fam}-{i}", src, dst, fam)
                i += 1

    def _pod_to_service(self, ref: catalog.ScenarioRef) -> None:
        i = 0
        for client in self.topo.clients:
            for svc in self.topo.services:
                for fam in self.topo.families:
                    self._curl(ref.name, f"curl-{fam}-{i}", client, svc, fam, False)
                i += 1

    def _pod_to_hostport(self, ref: catalog.ScenarioRef) -> None:
        if not self.host_port:
            self.skipped.append(Skip(ref.name, "requires feature host-port"))
            return
        i = 0
        for client in self.topo.clients:
            for echo in self.topo.echoes:
                node = self._node(echo.node)
                if node is None:
                    continue
                for fam in self.topo.families:
                    if fam not in node.addresses:
                        continue
                    dst = m.Peer(
                        f"{echo.name}:hostport",
                        "node",
                        {fam: node.addresses[fam]},
                        deploy.ECHO_HOST_PORT,
                        "http",
                        labels=echo.labels,
                        node=node.name,
                    )
                    self._curl(ref.name, f"curl-{fam}-{i}", client, dst, fam, False)
                i += 1

    def _pod_to_world(self, ref: catalog.ScenarioRef) -> None:
        target = self.params.external_target
        http = _endpoint(f"{target}-http", target, 80, "http")
        https = _endpoint(f"{target}-https", target, 443, "https")
        index = _endpoint(f"{target}-https-index", target, 443, "https", "/index.html")
        for i, client in enumerate(self.topo.clients):
            for fam in self.topo.families:
                if fam is m.Family.IPV6 and not self.params.external_target_ipv6_capable:
                    continue
                self._curl(ref.name, f"http-to-{target}-{fam}-{i}", client, http, fam, True)
                self._curl(ref.name, f"https-to-{target}-{fam}-{i}", client, https, fam, True)
                self._curl(ref.name, f"https-to-{target}-index-{fam}-{i}", client, index, fam, True)

    def _pod_to_host(self, ref: catalog.ScenarioRef) -> None:
        for client in self.topo.clients:
            for fam in self.topo.families:
                seen: set[str] = set()
                for node in self.topo.nodes:
                    addr = node.addresses.get(fam)
                    if not addr or addr in seen:
                        continue
                    seen.add(addr)
                    dst = m.Peer(node.name, "node", {fam: addr}, node=node.name)
                    self._ping(ref.name, f"ping-{fam}-internal-ip", client, dst, fam)

    def _host_to_pod(self, ref: catalog.ScenarioRef) -> None:
        i = 0
        for src in self.topo.host_netns:
            for echo in self.topo.echoes:
                for fam in self.topo.families:
                    self._curl(ref.name, f"curl-{fam}-{i}", src, echo, fam, False)
                i += 1

    def _pod_to_cidr(self, ref: catalog.ScenarioRef) -> None:
        ips: list[tuple[str, m.Family]] = []
        if m.Family.IPV4 in self.topo.families:
            ips += [(self.params.external_ip, m.Family.IPV4)]
            ips += [(self.params.external_other_ip, m.Family.IPV4)]
        if m.Family.IPV6 in self.topo.families and self.params.external_target_ipv6_capable:
            ips += [(self.params.external_ipv6, m.Family.IPV6)]
            ips += [(self.params.external_other_ipv6, m.Family.IPV6)]
        for ip, fam in ips:
            name = "external-" + ip.replace(".", "").replace(":", "")
            dst = m.Peer(name, "external", {fam: ip}, 443, "https")
            for i, client in enumerate(self.topo.clients):
                self._curl(ref.name, f"{name}-{i}", client, dst, fam, True)

    def _node_ports(self, ref: catalog.ScenarioRef, local: bool) -> None:
        i = 0
        for client in self.topo.clients:
            for svc in self.topo.services:
                port = self.topo.node_ports.get(svc.labels.get("name", ""))
                if not port:
                    continue
                for node in self.topo.nodes:
                    if (node.name == client.node) != local:
                        continue
                    for fam in self.topo.families:
                        addr = node.addresses.get(fam)
                        if not addr:
                            continue
                        dst = m.Peer(
                            f"{svc.name}:{node.name}",
                            "node",
                            {fam: addr},
                            port,
                            "http",
                            labels=svc.labels,
                            node=node.name,
                        )
                        self._curl(ref.name, f"curl-{i}", client, dst, fam, False)
                    i += 1

    def _pod_to_remote_nodeport(self, ref: catalog.ScenarioRef) -> None:
        if not self.topo.node_ports:
            self.skipped.append(Skip(ref.name, "echo Services are not of type NodePort"))
            return
        self._node_ports(ref, local=False)

    def _pod_to_local_nodeport(self, ref: catalog.ScenarioRef) -> None:
        if not self.topo.node_ports:
            self.skipped.append(Skip(ref.name, "echo Services are not of type NodePort"))
            return
        self._node_ports(ref, local=True)

    def _from_cidr_to_pod(self, ref: catalog.ScenarioRef) -> None:
        i = 0
        for src in self.topo.non_cilium_host_netns:
            for echo in self.topo.echoes:
                for fam in self.topo.families:
                    self._curl(ref.name, f"curl-{fam}-{i}", src, echo, fam, False)
                i += 1

    def _agent_check(self, ref: catalog.ScenarioRef, command: tuple[str, ...]) -> None:
        for agent in self.topo.agents:
            self.actions.append(
                m.Action(
                    self.spec.name,
                    ref.name,
                    agent.node or agent.pod,
                    agent,
                    m.Peer("", "none"),
                    m.Family.ANY,
                    command,
                    m.Expectation(),
                    check=ref.name,
                )
            )

    def _cilium_health(self, ref: catalog.ScenarioRef) -> None:
        self._agent_check(ref, ("cilium-health", "status", "--probe", "-o", "json"))

    def _no_unexpected_packet_drops(self, ref: catalog.ScenarioRef) -> None:
        self._agent_check(ref, ("cilium-dbg", "metrics", "list", "-o", "json"))

    def _no_errors_in_logs(self, ref: catalog.ScenarioRef) -> None:
        self._agent_check(ref, ())

    def _node(self, name: str) -> Node | None:
        return next((n for n in self.topo.nodes if n.name == name), None)


def build_actions(
    spec: catalog.TestSpec,
    topo: Topology,
    params: Params,
    *,
    host_port: bool,
    scenario_selected: Callable[[str], bool],
) -> tuple[list[m.Action], list[Skip]]:
    """All actions of ``spec`` over ``topo``, and the scenarios skipped (with reasons)."""
    builder = Builder(spec, topo, params, host_port)
    for ref in spec.scenarios:
        if not scenario_selected(ref.name):
            builder.skipped.append(Skip(ref.name, "skipped by user"))
            continue
        builder.build(ref)
    return builder.actions, builder.skipped
