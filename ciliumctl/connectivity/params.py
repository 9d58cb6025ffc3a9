"""The parameters of a connectivity run, with cilium-cli's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from ciliumctl.connectivity.catalog import ExternalParams

#: The images cilium-cli 1.18 (the Cilium version this project targets) deploys, by tag: the
#: dev cluster's registry mirrors serve them under these names; ``--curl-image`` and friends
#: point an air-gapped cluster at a mirror.
CURL_IMAGE = "quay.io/cilium/alpine-curl:v1.10.0"
JSON_MOCK_IMAGE = "quay.io/cilium/json-mock:v1.3.8"
DNS_TEST_SERVER_IMAGE = "docker.io/coredns/coredns:1.12.0"
FLOW_VALIDATION_MODES = ("disabled", "warning", "strict")


@dataclass
class Params:
    """Everything `cilium connectivity test` takes from its flags."""

    cilium_namespace: str = "kube-system"
    test_namespace: str = "cilium-test"  # suffixed with -1.. -N (--test-concurrency)
    test_concurrency: int = 1
    tests: list[str] = field(default_factory=list)
    single_node: bool = False
    force_deploy: bool = False
    node_selector: dict[str, str] = field(default_factory=dict)
    curl_image: str = CURL_IMAGE
    json_mock_image: str = JSON_MOCK_IMAGE
    dns_test_server_image: str = DNS_TEST_SERVER_IMAGE
    external_target: str = "one.one.one.one."
    external_cidr: str = "1.0.0.0/8"
    external_ip: str = "1.1.1.1"
    external_ipv6: str = "2606:4700:4700::1111"
    external_other_ip: str = "1.0.0.1"
    external_other_ipv6: str = "2606:4700:4700::1001"
    external_target_ipv6_capable: bool = False
    service_type: str = "NodePort"
    ip_families: tuple[str, ...] = ("ipv4", "ipv6")
    connect_timeout: float = 2.0
    request_timeout: float = 10.0
    retry: int = 3
    retry_delay: float = 3.0
    flow_validation: str = "warning"
    junit_file: str = ""
    junit_properties: dict[str, str] = field(default_factory=dict)
    verbose: bool = False
    debug: bool = False
    timeout: float = 0.0  # whole run; 0 disables
    collect_sysdump_on_failure: bool = False
    sysdump_output: str = "cilium-sysdump-<ts>"
    exit_zero_on_failure: bool = False
    cleanup_only: bool = False
    agent_selector: str = "k8s-app=cilium"
    agent_container: str = "cilium-agent"
    parallel_actions: int = 8
    wait_timeout: float = 300.0  # readiness waits of the deployment
    expected_drop_reasons: tuple[str, ...] = (
        "Policy denied",
        "Policy denied by denylist",
        "Unsupported L2 protocol",
        "Unsupported L3 protocol",
        "Stale or unroutable IP",
        "Authentication required",
        "Service backend not found",
        "Unsupported protocol for NAT masquerade",
        "Invalid source ip",
        "Unknown L3 target address",
        "Host datapath not ready",
        "Unknown ICMPv4 code",
        "Unknown ICMPv6 code",
        "Forbidden ICMPv6 message",
        "No egress gateway found",
    )

    def namespaces(self) -> list[str]:
        """The test namespaces: ``<test-namespace>-1`` .. ``-N``."""
        return [f"{self.test_namespace}-{i + 1}" for i in range(self.test_concurrency)]

    def external(self) -> ExternalParams:
        """The external addresses expectations compare with."""
        return ExternalParams(
            self.external_ip, self.external_ipv6, self.external_other_ip, self.external_other_ipv6
        )
