"""The connectivity run: preflight, deploy and wait, discover the topology, then each selected
test: apply its policies, run its actions in parallel, validate flows, explain failures and
remove its policies. Domain code: it reports through a ``log`` callback, never prints."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ciliumctl.connectivity import catalog, deploy, flows, policies, scenarios
from ciliumctl.connectivity import model as m
from ciliumctl.connectivity.features import Features, detect, host_port
from ciliumctl.connectivity.params import FLOW_VALIDATION_MODES, Params
from ciliumctl.connectivity.selection import Selection, parse
from ciliumctl.errors import CiliumctlError, UsageError
from ciliumctl.k8s.readiness import compute
from ciliumctl.nodeconfig.selectors import compile_selector

Obj = dict[str, Any]
Log = Callable[[str], None]
POLICY_KINDS = (
    ("cilium.io/v2", "CiliumNetworkPolicy"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)
CCNP = ("cilium.io/v2", "CiliumClusterwideNetworkPolicy")
SA_LABEL = "io.cilium.k8s.policy.serviceaccount"
INFO = "\u2139\ufe0f "  # cilium-cli's information sign
NS_LABEL = "io.kubernetes.pod.namespace"


class RunClient(deploy.DeployClient, flows.StreamClient, Protocol):
    """The Kubernetes client the run needs (the real :class:`ciliumctl.k8s.Client`)."""

    def exec(
        self,
        namespace: str,
        pod: str,
        command: list[str],
        container: str | None = None,
        *,
        stdin: bytes | None = None,
        timeout: float = 60.0,
    ) -> Any: ...

    def pod_logs(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        *,
        since_time: Any = None,
        limit_bytes: int | None = None,
        previous: bool = False,
        timestamps: bool = False,
        timeout: float | None = None,
    ) -> bytes: ...


class ConnectivityError(CiliumctlError):
    """The run could not be carried out (as opposed to tests that failed)."""


@dataclass
class TestResult:
    """One test's outcome."""

    name: str
    index: int
    skipped: str = ""  # the skip reason
    outcomes: list[m.ActionOutcome] = field(default_factory=list)
    skipped_scenarios: list[scenarios.Skip] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # failures outside actions
    start: float = 0.0
    end: float = 0.0
    lines: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when an action or the test's setup failed."""
        return bool(self.errors) or any(not o.passed for o in self.outcomes)

    @property
    def seconds(self) -> float:
        """Wall time of the test."""
        return max(0.0, self.end - self.start)


@dataclass
class NamespaceRun:
    """The tests of one test namespace."""

    namespace: str
    tests: list[TestResult] = field(default_factory=list)


@dataclass
class RunResult:
    """Everything the report needs."""

    runs: list[NamespaceRun]
    phases: dict[str, float]
    features: Features | None
    sysdumps: list[str] = field(default_factory=list)
    timed_out: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when any test failed."""
        return self.timed_out or any(t.failed for r in self.runs for t in r.tests)


def validate_params(params: Params) -> Selection:
    """Reject bad flags before anything changes in the cluster."""
    if params.flow_validation not in FLOW_VALIDATION_MODES:
        raise UsageError(
            f"invalid --flow-validation {params.flow_validation!r}",
            "use one of " + ", ".join(FLOW_VALIDATION_MODES),
        )
    if params.test_concurrency < 1:
        raise UsageError(f"invalid --test-concurrency {params.test_concurrency}", "use 1 or more")
    for fam in params.ip_families:
        if fam not in ("ipv4", "ipv6"):
            raise UsageError(f"invalid --ip-families value {fam!r}", "use ipv4 and/or ipv6")
    if params.timeout < 0:
        raise UsageError(f"invalid --timeout {params.timeout}", "use 0 (no limit) or more")
    if params.parallel_actions < 1:
        raise UsageError(f"invalid --parallel-actions {params.parallel_actions}", "use 1 or more")
    selection = parse(params.tests)
    names = [f"{t.name}/{s.name}" for t in catalog.IMPLEMENTED for s in t.scenarios]
    names += [f"{n}/" for n in catalog.NOT_IMPLEMENTED]
    unknown = selection.matches_nothing(names)
    if unknown:
        raise UsageError(
            f"--test {', '.join(unknown)} matches no test",
            "entries are searched in 'test/scenario' names, as cilium-cli does ('^name/' "
            "selects one test); see `cilium connectivity test --list-tests`",
        )
    return selection


def plan(selection: Selection) -> list[tuple[str, catalog.TestSpec | None]]:
    """The selected tests in cilium-cli's order (unimplemented ones with ``None``)."""
    spec_by_name = catalog.by_name()
    ordered = [t.name for t in catalog.IMPLEMENTED if t.stage == "concurrent"]
    ordered += list(catalog.NOT_IMPLEMENTED)
    ordered += [t.name for t in catalog.IMPLEMENTED if t.stage == "final"]
    return [
        (n, spec_by_name.get(n))
        for n in ordered
        if selection.test_selected(n, _scenarios(spec_by_name.get(n)))
    ]


def _scenarios(spec: catalog.TestSpec | None) -> tuple[str, ...]:
    """A test's scenario names; ``("",)`` (the name alone) for one not implemented here."""
    return tuple(s.name for s in spec.scenarios) if spec is not None else ("",)


class Runner:
    """One `cilium connectivity test` run."""

    def __init__(
        self,
        client: RunClient,
        params: Params,
        *,
        log: Log,
        context: str = "",
        collect_sysdump: Callable[[], str] | None = None,
    ) -> None:
        self.client = client
        self.params = params
        self.log = log
        self.context = context or "cluster"
        self.collect_sysdump = collect_sysdump
        self.selection = validate_params(params)
        self.deadline = time.monotonic() + params.timeout if params.timeout else None
        #: agents' log lines before this are not the run's (cilium-cli's check-log-errors
        #: reads the logs since its start too); set when the run starts
        self.started_at: datetime | None = None
        self.phases: dict[str, float] = {}
        self.monitor: flows.MonitorCollector | None = None
        self.features: Features | None = None
        self.policy_objs = policies.build_policies(
            policies.PolicyParams(params.external_cidr, params.external_other_ip)
        )
        self._sysdump_lock = threading.Lock()
        self.sysdumps: list[str] = []
        self.notes: list[str] = []

    # --------------------------------------------------------------- helpers
    def _debug(self, text: str) -> None:
        if self.params.debug:
            self.log(f"🐛 {text}")

    def _info(self, text: str) -> None:
        if self.params.verbose or self.params.debug:
            self.log(f"{INFO} {text}")

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    def _out_of_time(self) -> bool:
        left = self._remaining()
        return left is not None and left <= 0

    # --------------------------------------------------------------- cluster facts
    def _agents(self) -> tuple[list[Obj], int]:
        pods = self.client.list(
            "v1", "Pod", self.params.cilium_namespace, label_selector=self.params.agent_selector
        )
        ready = 0
        for pod in pods:
            conds = (pod.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                ready += 1
        return pods, ready

    def _eligible_nodes(self) -> list[Obj]:
        nodes = self.client.list("v1", "Node")
        selector = compile_selector({"matchLabels": self.params.node_selector}, "--node-selector")
        out = []
        for node in nodes:
            labels = node["metadata"].get("labels") or {}
            taints = (node.get("spec") or {}).get("taints") or []
            if any(t.get("effect") in ("NoSchedule", "NoExecute") for t in taints):
                continue
            if (node.get("spec") or {}).get("unschedulable"):
                continue
            if labels.get(deploy.NO_SCHEDULE_LABEL) == "true":
                continue
            if selector.matches(labels):
                out.append(node)
        return out

    # --------------------------------------------------------------- main
    def run(self) -> RunResult:
        """Carry out the run and return its results (raising only when it cannot run)."""
        params = self.params
        started = time.monotonic()
        self.started_at = datetime.now(UTC)
        if params.cleanup_only:
            deploy.cleanup(self.client, params, self.log, self.context)
            return RunResult([], {"cleanup": time.monotonic() - started}, None)
        config_map = self.client.get_or_none(
            "v1", "ConfigMap", "cilium-config", params.cilium_namespace
        )
        config = (config_map or {}).get("data")
        agents, ready = self._agents()
        all_nodes = self.client.list("v1", "Node")
        eligible = self._eligible_nodes()
        non_cilium = [
            n
            for n in all_nodes
            if (n["metadata"].get("labels") or {}).get(deploy.NO_SCHEDULE_LABEL) == "true"
        ]
        if not eligible:
            raise ConnectivityError(
                "no schedulable node for the test pods"
                + (
                    f" matching --node-selector {params.node_selector}"
                    if params.node_selector
                    else ""
                ),
                "check the nodes' taints and labels, or change --node-selector",
            )
        if not params.single_node and len(eligible) < 2:
            raise ConnectivityError(
                f"only one schedulable node ({eligible[0]['metadata']['name']}): "
                "echo-other-node and client3 need a second one",
                "pass --single-node to run the tests that fit on one node",
            )
        if params.flow_validation == "strict" and not agents:
            raise UsageError(
                "--flow-validation strict needs Cilium agent pods to read flows from, "
                f"found none with {params.agent_selector} in {params.cilium_namespace}",
                "install Cilium, or use --flow-validation warning|disabled",
            )
        self.phases["preflight"] = time.monotonic() - started

        t0 = time.monotonic()
        report = deploy.deploy(
            self.client,
            params,
            non_cilium_nodes=bool(non_cilium),
            log=self.log,
            context=self.context,
            host_port=host_port(config).enabled,
        )
        self.phases["deploy"] = time.monotonic() - t0
        self._debug(f"created {len(report.created)} objects, kept {len(report.kept)}")

        t0 = time.monotonic()
        for namespace in params.namespaces():
            self._wait_ready(namespace, bool(non_cilium))
        self.phases["wait"] = time.monotonic() - t0

        topos = {ns: self._topology(ns, agents) for ns in params.namespaces()}
        t0 = time.monotonic()
        for topo in topos.values():
            self._wait_network(topo)
        self.phases["wait"] += time.monotonic() - t0
        families: set[str] = set()
        for topo in topos.values():
            families.update(str(f) for f in topo.families)
        self.features = detect(
            config=config,
            agents_ready=ready,
            agents_total=len(agents),
            cilium_namespace=params.cilium_namespace,
            nodes=all_nodes,
            pod_ip_families=families,
        )
        for name, feat in sorted(self.features.values.items()):
            self._debug(
                f"feature {name}: {'enabled' if feat.enabled else 'disabled'} ({feat.detail})"
            )

        if params.flow_validation != "disabled":
            agent_peers = next(iter(topos.values())).agents
            if agent_peers:
                self.monitor = flows.MonitorCollector(
                    self.client, agent_peers, self._remaining() or 24 * 3600.0
                )
                self.monitor.start()
            else:
                self.notes.append(
                    "flow validation unavailable: no Cilium agent pods "
                    f"({params.agent_selector}) in {params.cilium_namespace}; "
                    "results rest on the commands' exit codes alone"
                )
                self.log(f"⚠️  {self.notes[-1]}")

        t0 = time.monotonic()
        runs = self._run_tests(topos)
        self.phases["tests"] = time.monotonic() - t0
        if self.monitor is not None:
            self.monitor.stop()
            self.notes.extend(self.monitor.errors)
        self.phases["total"] = time.monotonic() - started
        timed_out = any("--timeout" in e for r in runs for t in r.tests for e in t.errors)
        return RunResult(runs, self.phases, self.features, self.sysdumps, timed_out, self.notes)

    # --------------------------------------------------------------- readiness
    def _wait_ready(self, namespace: str, non_cilium: bool) -> None:
        """Wait for every workload; the wait ends as soon as each one is ready."""
        workloads = deploy.workload_refs(namespace, self.params, non_cilium_nodes=non_cilium)
        limit = self.params.wait_timeout
        left = self._remaining()
        if left is not None:
            limit = min(limit, max(left, 0.0))
        deadline = time.monotonic() + limit
        announced: set[str] = set()
        pending = list(workloads)
        while pending:
            still = []
            for w in pending:
                meta = w["metadata"]
                obj = self.client.get_or_none(w["apiVersion"], w["kind"], meta["name"], namespace)
                result = compute(obj)
                if result.ready:
                    continue
                key = f"{w['kind'].lower()} {namespace}/{meta['name']}"
                if key not in announced:
                    announced.add(key)
                    self.log(f"⌛ [{self.context}] Waiting for {key} to become ready...")
                still.append(w)
            pending = still
            if not pending:
                return
            if time.monotonic() >= deadline:
                why = "; ".join(
                    f"{w['kind'].lower()} {w['metadata']['name']}: "
                    + deploy.pending_reason(self.client, namespace, w)
                    for w in pending
                )
                raise ConnectivityError(
                    f"test workloads in {namespace} not ready after {limit:.0f}s: {why}",
                    "fix the cause above (image, scheduling, CNI) and re-run; "
                    "--force-deploy recreates the workloads",
                )
            time.sleep(0.2)

    def _wait_network(self, topo: scenarios.Topology) -> None:
        """Wait until every client resolves and reaches the echo Services (DNS, endpoints,
        NodePorts), in parallel, each wait ending when its check first succeeds."""
        checks: list[tuple[str, m.Peer, list[str]]] = []
        for client in topo.clients:
            for svc in topo.services:
                name = svc.address(m.Family.ANY)
                checks.append(
                    (
                        f"pod {client.pod} to resolve and reach Service {svc.name}",
                        client,
                        [
                            "curl",
                            "--silent",
                            "--max-time",
                            "2",
                            "--output",
                            "/dev/null",
                            f"http://{name}:{svc.port}",
                        ],
                    )
                )
        for svc in topo.services:
            port = topo.node_ports.get(svc.labels.get("name", ""))
            if not port or not topo.clients:
                continue
            for node in topo.nodes:
                for addr in node.addresses.values():
                    where = f"[{addr}]" if ":" in addr else addr
                    checks.append(
                        (
                            f"NodePort {where}:{port} ({svc.name}) to become ready",
                            topo.clients[0],
                            [
                                "curl",
                                "--silent",
                                "--max-time",
                                "2",
                                "--output",
                                "/dev/null",
                                f"http://{where}:{port}",
                            ],
                        )
                    )
        limit = min(60.0, self._remaining() or 60.0)

        def wait(check: tuple[str, m.Peer, list[str]]) -> str:
            what, src, cmd = check
            ns, _, pod = src.pod.partition("/")
            deadline = time.monotonic() + limit
            announced = False
            last = ""
            while True:
                try:
                    res = self.client.exec(ns, pod, cmd, timeout=10)
                    if res.exit_code == 0:
                        return ""
                    last = f"exit {res.exit_code}"
                except CiliumctlError as exc:
                    last = str(exc)
                if not announced:
                    announced = True
                    self.log(f"⌛ [{self.context}] Waiting for {what}...")
                if time.monotonic() >= deadline:
                    return f"{what}: not after {limit:.0f}s ({last})"
                time.sleep(0.2)

        with ThreadPoolExecutor(max_workers=self.params.parallel_actions) as pool:
            problems = [p for p in pool.map(wait, checks) if p]
        for problem in problems:
            # the tests will report the failing paths; the wait only says why it gave up
            self.log(f"⚠️  gave up waiting for {problem}")

    # --------------------------------------------------------------- topology
    def _topology(self, namespace: str, agents: list[Obj]) -> scenarios.Topology:
        pods = self.client.list("v1", "Pod", namespace)
        wanted = {m.Family(f) for f in self.params.ip_families}

        def peer(pod: Obj, kind: str) -> m.Peer:
            meta = pod["metadata"]
            status = pod.get("status") or {}
            addrs: dict[m.Family, str] = {}
            for entry in status.get("podIPs") or [{"ip": status.get("podIP")}]:
                ip = entry.get("ip")
                if not ip:
                    continue
                fam = m.Family.IPV6 if ":" in ip else m.Family.IPV4
                addrs.setdefault(fam, ip)
            labels = dict(meta.get("labels") or {})
            spec = pod.get("spec") or {}
            labels[SA_LABEL] = spec.get("serviceAccountName") or "default"
            labels[NS_LABEL] = meta.get("namespace", namespace)
            echo = kind == "pod" and labels.get("kind") == "echo"
            return m.Peer(
                name=f"{meta.get('namespace', namespace)}/{meta['name']}",
                kind=kind,
                addresses=addrs,
                port=deploy.ECHO_PORT if echo else 0,
                scheme="http" if echo else "",
                labels=labels,
                node=spec.get("nodeName", ""),
                pod=f"{meta.get('namespace', namespace)}/{meta['name']}",
                container=(spec.get("containers") or [{}])[0].get("name", ""),
            )

        running = [
            p
            for p in pods
            if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        ]
        clients = sorted(
            (
                peer(p, "pod")
                for p in running
                if (p["metadata"].get("labels") or {}).get("kind") == "client"
            ),
            key=lambda x: x.name,
        )
        echoes = sorted(
            (
                peer(p, "pod")
                for p in running
                if (p["metadata"].get("labels") or {}).get("kind") == "echo"
            ),
            key=lambda x: x.name,
        )
        host_netns = sorted(
            (
                peer(p, "host-netns")
                for p in running
                if (p["metadata"].get("labels") or {}).get("name") == deploy.HOST_NETNS
            ),
            key=lambda x: x.name,
        )
        non_cilium = [
            peer(p, "host-netns")
            for p in running
            if (p["metadata"].get("labels") or {}).get("name") == deploy.HOST_NETNS_NON_CILIUM
        ]
        services, node_ports = [], {}
        for name in deploy.ECHOES:
            svc = self.client.get_or_none("v1", "Service", name, namespace)
            if svc is None:
                continue
            services.append(
                m.Peer(
                    name=f"{namespace}/{name}",
                    kind="service",
                    addresses={m.Family.ANY: f"{name}.{namespace}"},
                    port=deploy.ECHO_PORT,
                    scheme="http",
                    labels={"name": name, "kind": "echo"},
                )
            )
            for port in (svc.get("spec") or {}).get("ports") or []:
                if port.get("nodePort"):
                    node_ports[name] = int(port["nodePort"])
        used_nodes = {p.node for p in clients + echoes + host_netns if p.node}
        nodes = []
        for node in self.client.list("v1", "Node"):
            nname = node["metadata"]["name"]
            if nname not in used_nodes:
                continue
            addrs: dict[m.Family, str] = {}
            for a in (node.get("status") or {}).get("addresses") or []:
                if a.get("type") == "InternalIP":
                    fam = m.Family.IPV6 if ":" in a["address"] else m.Family.IPV4
                    addrs.setdefault(fam, a["address"])
            nodes.append(scenarios.Node(nname, addrs))
        present = {f for p in clients for f in p.addresses}
        families: list[m.Family] = [
            f for f in (m.Family.IPV4, m.Family.IPV6) if f in wanted and f in present
        ]
        agent_peers = [
            m.Peer(
                name=f"{a['metadata']['namespace']}/{a['metadata']['name']}",
                kind="agent",
                node=(a.get("spec") or {}).get("nodeName", ""),
                pod=f"{a['metadata']['namespace']}/{a['metadata']['name']}",
                container=self.params.agent_container,
            )
            for a in agents
            if (a.get("status") or {}).get("phase") == "Running"
        ]
        if not clients or not echoes:
            raise ConnectivityError(
                f"no running client or echo pods in {namespace}",
                "check the pods with `kubectl get pods -n " + namespace + "`",
            )
        return scenarios.Topology(
            namespace,
            clients,
            echoes,
            host_netns,
            non_cilium,
            services,
            node_ports,
            nodes,
            families,
            agent_peers,
        )

    # --------------------------------------------------------------- tests
    def _run_tests(self, topos: dict[str, scenarios.Topology]) -> list[NamespaceRun]:
        planned = plan(self.selection)
        namespaces = list(topos)
        runs = [NamespaceRun(ns) for ns in namespaces]
        queues: list[list[tuple[int, str, catalog.TestSpec | None]]] = [[] for _ in namespaces]
        final: list[tuple[int, str, catalog.TestSpec | None]] = []
        for index, (name, spec) in enumerate(planned, start=1):
            if spec is not None and spec.stage == "final":
                final.append((index, name, spec))
            else:
                queues[(index - 1) % len(namespaces)].append((index, name, spec))
        total = len(planned)
        for ns in namespaces:
            self.log(f"🏃[{ns}] Running {total} tests ...")
        print_lock = threading.Lock()

        def worker(i: int) -> None:
            for index, name, spec in queues[i]:
                result = self._one_test(index, total, name, spec, topos[namespaces[i]])
                runs[i].tests.append(result)
                with print_lock:
                    for line in result.lines:
                        self.log(line)

        if len(namespaces) == 1:
            worker(0)
        else:
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(namespaces))]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        for index, name, spec in final:
            result = self._one_test(index, total, name, spec, topos[namespaces[0]])
            runs[0].tests.append(result)
            for line in result.lines:
                self.log(line)
        return runs

    def _one_test(
        self,
        index: int,
        total: int,
        name: str,
        spec: catalog.TestSpec | None,
        topo: scenarios.Topology,
    ) -> TestResult:
        ns = topo.namespace
        result = TestResult(name, index, start=time.monotonic())
        out = result.lines
        assert self.features is not None
        reason = ""
        if spec is None:
            reason = "not implemented in ciliumctl"
        elif self._out_of_time():
            result.errors.append(f"not run: the --timeout of {self.params.timeout:.0f}s ran out")
        else:
            reason = self.features.missing(spec.requires) or ""
        if reason:
            result.skipped = reason
            out.append(f"[=] [{ns}] Skipping test [{name}] [{index}/{total}] ({reason})")
            result.end = time.monotonic()
            return result
        out.append(f"[=] [{ns}] Test [{name}] [{index}/{total}]")
        if result.errors or spec is None:
            out.append(f"  ❌ {result.errors[0]}")
            result.end = time.monotonic()
            return result
        actions, skipped = scenarios.build_actions(
            spec,
            topo,
            self.params,
            host_port=self.features.enabled(catalog.HOST_PORT),
            scenario_selected=lambda s: self.selection.scenario_selected(name, s),
        )
        result.skipped_scenarios = skipped
        for s in skipped:
            out.append(f"  [-] Skipping Scenario [{name}/{s.scenario}] ({s.reason})")
        applied: list[Obj] = []
        try:
            applied = self._apply_policies(spec, ns, out)
            result.outcomes = self._run_actions(actions, topo, ns, out)
        except CiliumctlError as exc:
            result.errors.append(str(exc))
            out.append(f"  ❌ {exc}")
        finally:
            try:
                self._delete_policies(applied, out)
            except CiliumctlError as exc:
                result.errors.append(f"policy cleanup: {exc}")
        if not self.params.verbose and not self.params.debug and result.outcomes:
            # cilium-cli's progress: a dot per action, then the failures' details
            out.append("." * len(result.outcomes))
            for o in result.outcomes:
                if not o.passed:
                    out.append(f"  [.] Action [{o.action}]")
                    out.append(f"  ❌ {o.failure}")
        result.end = time.monotonic()
        if result.failed and self.collect_sysdump is not None:
            with self._sysdump_lock:
                try:
                    path = self.collect_sysdump()
                    self.sysdumps.append(path)
                    out.append(f"  📦 sysdump of the failure written to {path}")
                except CiliumctlError as exc:
                    out.append(f"  ⚠️  sysdump failed: {exc}")
        return result

    # --------------------------------------------------------------- policies
    def _revisions(self) -> dict[str, int]:
        """Each agent's policy revision (empty when the agents cannot tell)."""
        if not self.features or not self.features.enabled(catalog.AGENTS):
            return {}
        agents, _ = self._agents()
        revs: dict[str, int] = {}
        for a in agents:
            ns, name = a["metadata"]["namespace"], a["metadata"]["name"]
            try:
                res = self.client.exec(
                    ns,
                    name,
                    ["cilium-dbg", "policy", "get", "-o", "json"],
                    self.params.agent_container,
                    timeout=10,
                )
            except CiliumctlError as exc:
                self._debug(f"policy revision of {ns}/{name}: {exc}")
                continue
            try:
                doc = json.loads(res.stdout or b"{}")
            except ValueError:
                continue
            if res.exit_code == 0 and isinstance(doc, dict) and "revision" in doc:
                revs[f"{ns}/{name}"] = int(doc["revision"])
        return revs

    def _wait_revisions(self, before: dict[str, int], out: list[str], what: str) -> None:
        """Wait until every agent's revision passed ``before`` (the policy is in force)."""
        if not before:
            return
        deadline = time.monotonic() + 30
        while True:
            now = self._revisions()
            behind = [a for a, rev in before.items() if now.get(a, rev) <= rev]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise ConnectivityError(
                    f"{what}: agents {', '.join(behind)} did not bump their policy revision "
                    "within 30s",
                    "check the agents' logs for policy import errors",
                )
            time.sleep(0.1)

    def _apply_policies(self, spec: catalog.TestSpec, ns: str, out: list[str]) -> list[Obj]:
        if not spec.policies:
            return []
        before = self._revisions()
        applied: list[Obj] = []
        for pid in spec.policies:
            obj = self.policy_objs[pid](ns)
            if self.params.verbose or self.params.debug:
                what = f"{obj['kind']} '{obj['metadata']['name']}'"
                out.append(f"  {INFO} 📜 Applying {what} to namespace '{ns}'..")
            self.client.create(obj)
            applied.append(obj)
        self._wait_revisions(before, out, f"policies of {spec.name}")
        return applied

    def _delete_policies(self, applied: list[Obj], out: list[str]) -> None:
        if not applied:
            return
        before = self._revisions()
        for obj in applied:
            meta = obj["metadata"]
            if self.params.verbose or self.params.debug:
                what = f"{obj['kind']} '{meta['name']}'"
                out.append(f"  {INFO} 📜 Deleting {what} from namespace '{meta['namespace']}'..")
            self.client.delete(obj["apiVersion"], obj["kind"], meta["name"], meta["namespace"])
        deadline = time.monotonic() + 30
        while any(
            self.client.get_or_none(
                o["apiVersion"], o["kind"], o["metadata"]["name"], o["metadata"]["namespace"]
            )
            for o in applied
        ):
            if time.monotonic() > deadline:
                raise ConnectivityError("policies still present 30s after deletion")
            time.sleep(0.1)
        self._wait_revisions(before, out, "policy cleanup")

    # --------------------------------------------------------------- actions
    def _action_timeout(self, action: m.Action) -> float:
        per_try = (self.params.request_timeout or 30.0) + (self.params.connect_timeout or 0.0)
        tries = 1 + (self.params.retry if "--retry" in action.command else 0)
        budget = per_try * tries + (self.params.retry_delay * (tries - 1)) + 10.0
        left = self._remaining()
        return max(1.0, min(budget, left)) if left is not None else budget

    def _exec(self, action: m.Action) -> m.ActionOutcome:
        ns, _, pod = action.src.pod.partition("/")
        start = time.monotonic()
        outcome = m.ActionOutcome(action, None)
        try:
            if action.check == "no-errors-in-logs":
                data = self.client.pod_logs(
                    ns,
                    pod,
                    action.src.container or None,
                    since_time=self.started_at,
                    timeout=60,
                )
                outcome.exit_code, outcome.stdout = 0, data.decode("utf-8", "replace")
            else:
                res = self.client.exec(
                    ns,
                    pod,
                    list(action.command),
                    action.src.container or None,
                    timeout=self._action_timeout(action),
                )
                outcome.exit_code = res.exit_code
                outcome.stdout = res.stdout.decode("utf-8", "replace")
                outcome.stderr = res.stderr.decode("utf-8", "replace")
        except CiliumctlError as exc:
            outcome.stderr = str(exc)
        outcome.duration = time.monotonic() - start
        return outcome

    def _run_actions(
        self, actions: list[m.Action], topo: scenarios.Topology, ns: str, out: list[str]
    ) -> list[m.ActionOutcome]:
        if not actions:
            return []
        t_start = time.monotonic()
        scen_seen: set[str] = set()
        with ThreadPoolExecutor(max_workers=self.params.parallel_actions) as pool:
            outcomes = list(pool.map(self._exec, actions))
        t_end = time.monotonic()
        events: list[m.DropEvent] = []
        if self.monitor is not None:
            time.sleep(0.3)  # monitor events trail the packets by a few milliseconds
            events = self.monitor.events(t_start, time.monotonic())
        selecting: dict[str, list[str]] | None = None
        for o in outcomes:
            a = o.action
            if a.scenario not in scen_seen and (self.params.verbose or self.params.debug):
                scen_seen.add(a.scenario)
                out.append(f"  [-] Scenario [{a.scenario_name}]")
            self._evaluate(o, len(topo.agents))
            if self.monitor is not None and not a.check:
                problems, drops = flows.validate(a, events)
                if self.monitor.errors:
                    problems = [f"flows unavailable: {self.monitor.errors[0]}", *problems]
                o.drops = drops
                if problems:
                    o.flow_warnings = problems
                    if self.params.flow_validation == "strict":
                        o.passed = False
                        o.failure = o.failure or "flow validation: " + "; ".join(problems)
            if not o.passed and not a.check:
                if selecting is None:
                    selecting = self._selecting_policies(ns, topo)
                o.policies = sorted({*selecting.get(a.src.pod, []), *selecting.get(a.dst.pod, [])})
            if self.params.verbose or self.params.debug:
                out.append(f"  [.] Action [{a}]")
                if self.params.debug:
                    out.append(f"  🐛 Executing command {list(a.command)} ({o.duration:.2f}s)")
                    if o.stdout.strip() and not a.check:
                        out.append(f"  🐛 {o.stdout.strip()[:500]}")
                for w in o.flow_warnings:
                    out.append(f"  ⚠️  {w}")
                if not o.passed:
                    out.append(f"  ❌ {o.failure}")
        self._debug(f"{len(actions)} actions in {t_end - t_start:.2f}s")
        return outcomes

    def _evaluate(self, o: m.ActionOutcome, agents: int = 0) -> None:
        a = o.action
        if o.exit_code is None:
            o.passed = False
            o.failure = f"command could not run: {o.stderr.strip()}"
            return
        if a.check:
            o.failure = _check_output(a.check, o, self.params, agents)
            o.passed = not o.failure
            return
        o.passed = a.expectation.accepts(o.exit_code)
        if not o.passed:
            err = o.stderr.strip().splitlines()
            o.failure = f"expected {a.expectation.describe()}, got {o.seen()}" + (
                f": {err[-1]}" if err else ""
            )

    def _selecting_policies(self, ns: str, topo: scenarios.Topology) -> dict[str, list[str]]:
        """For each test pod, the policies whose selectors select it right now."""
        found: dict[str, list[str]] = {}
        peers = topo.clients + topo.echoes
        objs: list[Obj] = []
        for api, kind in (*POLICY_KINDS, CCNP):
            try:
                objs += self.client.list(api, kind, None if kind == CCNP[1] else ns)
            except CiliumctlError:
                continue
        for obj in objs:
            kind = obj.get("kind", "")
            meta = obj["metadata"]
            where = f"{meta['namespace']}/" if meta.get("namespace") else ""
            label = f"{kind} {where}{meta['name']}"
            spec = obj.get("spec") or {}
            selectors = []
            if kind == "NetworkPolicy":
                selectors.append(spec.get("podSelector") or {})
            else:
                for s in [spec, *(obj.get("specs") or [])]:
                    if isinstance(s, dict) and "endpointSelector" in s:
                        selectors.append(s["endpointSelector"] or {})
            for sel in selectors:
                try:
                    compiled = compile_selector(_strip_prefixes(sel), label)
                except CiliumctlError:
                    continue
                for p in peers:
                    if compiled.matches(p.labels):
                        found.setdefault(p.pod, []).append(label)
        return found


def _strip_prefixes(selector: Obj) -> Obj:
    """Cilium's ``k8s:``/``any:`` label sources do not matter for matching pod labels."""

    def key(k: str) -> str:
        for prefix in ("k8s:", "any:"):
            if k.startswith(prefix):
                return k[len(prefix) :]
        return k

    out: Obj = {}
    if selector.get("matchLabels"):
        out["matchLabels"] = {key(k): v for k, v in selector["matchLabels"].items()}
    if selector.get("matchExpressions"):
        out["matchExpressions"] = [
            {**e, "key": key(e["key"])} for e in selector["matchExpressions"]
        ]
    return out


def _check_output(check: str, o: m.ActionOutcome, params: Params, agents: int = 0) -> str:
    """The failure of an agent check, or '' when it passed. ``agents``: how many Cilium
    agents run, each of whose nodes cilium-health must report (as cilium-cli checks)."""
    if check == "no-errors-in-logs":
        errors = [
            line
            for line in o.stdout.splitlines()
            if "level=error" in line or '"level":"error"' in line or "level=fatal" in line
        ]
        if errors:
            return f"{len(errors)} error lines in the agent log, first: {errors[0][:300]}"
        return ""
    if o.exit_code != 0:
        err = (o.stderr.strip().splitlines() or [""])[-1]
        return f"{' '.join(o.action.command)} exited {o.exit_code}: {err}"
    try:
        doc = json.loads(o.stdout or "null")
    except ValueError:
        return f"{' '.join(o.action.command)} printed no JSON"
    if check == "no-unexpected-packet-drops":
        bad = []
        for metric in doc if isinstance(doc, list) else []:
            if metric.get("name") != "cilium_drop_count_total":
                continue
            reason = (metric.get("labels") or {}).get("reason", "")
            if reason not in params.expected_drop_reasons and float(metric.get("value") or 0) > 0:
                bad.append(f"{reason}: {metric.get('value')}")
        return ("unexpected packet drops: " + ", ".join(bad)) if bad else ""
    if check == "cilium-health":
        nodes = doc.get("nodes") or [] if isinstance(doc, dict) else []
        if len(nodes) < agents:
            return f"only {len(nodes)}/{agents} nodes appeared in cilium-health status"
        failures: list[str] = []
        _health_failures(doc, "", failures)
        return ("health probes failing: " + "; ".join(failures[:5])) if failures else ""
    return f"unknown check {check}"


def _health_failures(doc: Any, path: str, out: list[str]) -> None:
    """Collect non-empty ``status`` messages of icmp/http probes anywhere in the document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in ("icmp", "http") and isinstance(v, dict) and v.get("status"):
                out.append(f"{path}/{k}: {v['status']}")
            else:
                _health_failures(v, f"{path}/{doc.get('name', k) if k == 'nodes' else k}", out)
    elif isinstance(doc, list):
        for item in doc:
            name = item.get("name", "") if isinstance(item, dict) else ""
            _health_failures(item, f"{path}/{name}" if name else path, out)
