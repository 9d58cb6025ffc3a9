"""The agent's Prometheus metrics, under upstream's names, in a registry of their own."""

from __future__ import annotations

from typing import Any


class AgentMetrics:
    """The metric families the agent maintains (``prometheus_client`` imported lazily)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.endpoint_state = Gauge(
            "cilium_endpoint_state", "Endpoints by state", ["endpoint_state"], registry=r
        )
        self.endpoint = Gauge("cilium_endpoint", "Endpoints managed by this agent", registry=r)
        self.policy = Gauge("cilium_policy", "Policies loaded in the agent", registry=r)
        self.policy_revision = Gauge(
            "cilium_policy_max_revision", "Highest policy revision", registry=r
        )
        self.policy_change = Counter(
            "cilium_policy_change_total", "Policy changes by outcome", ["outcome"], registry=r
        )
        self.regenerations = Counter(
            "cilium_endpoint_regenerations_total",
            "Endpoint regenerations by outcome",
            ["outcome"],
            registry=r,
        )
        self.regeneration_time = Histogram(
            "cilium_endpoint_regeneration_time_stats_seconds",
            "Endpoint regeneration time by scope",
            ["scope"],
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.api_process_time = Histogram(
            "cilium_agent_api_process_time_seconds",
            "Time the agent took to process an API call (cilium-cni's on cni.sock too)",
            ["path", "method", "return_code"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.identity = Gauge("cilium_identity", "Identities by type", ["type"], registry=r)
        self.drop = Counter(
            "cilium_drop_count_total", "Dropped packets", ["reason", "direction"], registry=r
        )
        self.forward = Counter(
            "cilium_forward_count_total", "Forwarded packets", ["direction"], registry=r
        )
        self.map_pressure = Gauge(
            "cilium_bpf_map_pressure", "Fill ratio of BPF maps", ["map_name"], registry=r
        )
        self.k8s_events = Counter(
            "cilium_kubernetes_events_total",
            "Kubernetes events received",
            ["scope", "action"],
            registry=r,
        )
        self.services = Gauge("cilium_services_events_total", "Service frontends", registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0") -> Any:  # noqa: S104 (upstream: :9962)
        """Serve ``/metrics`` on ``addr:port`` in a daemon thread; the server. (An empty
        address is no wildcard for prometheus_client: it resolves it, which fails in a
        pod without a resolvable hostname.)"""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server

    def samples(self) -> list[dict[str, Any]]:
        """Every sample as upstream's API lists metrics (``GET /v1/metrics/``): name, labels
        and value, what ``cilium-dbg metrics list`` prints. Histograms and counters keep the
        sample names prometheus_client gives them (``_total``, ``_bucket``, ``_sum``)."""
        out: list[dict[str, Any]] = []
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue  # creation timestamps: not a measurement
                out.append(
                    {"name": sample.name, "labels": dict(sample.labels), "value": sample.value}
                )
        return out

    def text(self) -> bytes:
        """The exposition text (for tests and the bugtool)."""
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))
