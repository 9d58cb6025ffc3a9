"""`cilium connectivity test`: flags as cilium-cli's, the run in ciliumctl.connectivity."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ciliumctl.connectivity.params import Params
    from ciliumctl.k8s import Client

app = typer.Typer(
    name="connectivity",
    help="Connectivity troubleshooting.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    from ciliumctl.errors import UsageError

    out: dict[str, str] = {}
    for raw in values:
        for item in filter(None, (p.strip() for p in raw.split(","))):
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise UsageError(f"invalid {flag} {item!r}", "use key=value")
            out[key] = value
    return out


@app.command("test")
def test(
    test_namespace: Annotated[
        str,
        typer.Option(
            "--test-namespace",
            help="Namespace to run the tests in, suffixed with a sequence number "
            "(cilium-test-1 ...).",
        ),
    ] = "cilium-test",
    test_concurrency: Annotated[
        int, typer.Option("--test-concurrency", help="Test namespaces to run tests in parallel.")
    ] = 1,
    tests: Annotated[
        list[str] | None,
        typer.Option(
            "--test",
            help="Run scenarios whose 'test/scenario' name matches one of these regexes, "
            "as cilium-cli; '!' excludes ('^no-policies/' is one test).",
        ),
    ] = None,
    list_tests: Annotated[
        bool, typer.Option("--list-tests", help="List the tests (and whether implemented).")
    ] = False,
    single_node: Annotated[
        bool, typer.Option("--single-node", help="Limit to tests able to run on a single node.")
    ] = False,
    force_deploy: Annotated[
        bool, typer.Option("--force-deploy", help="Force re-deploying test artifacts.")
    ] = False,
    cleanup: Annotated[
        bool,
        typer.Option(
            "--cleanup", help="Delete the connectivity test namespaces without running tests."
        ),
    ] = False,
    node_selector: Annotated[
        list[str] | None,
        typer.Option("--node-selector", help="Restrict test pods to nodes with these key=value."),
    ] = None,
    curl_image: Annotated[
        str | None, typer.Option("--curl-image", help="Image for the clients (curl, ping).")
    ] = None,
    json_mock_image: Annotated[
        str | None, typer.Option("--json-mock-image", help="Image for the echo servers.")
    ] = None,
    dns_test_server_image: Annotated[
        str | None, typer.Option("--dns-test-server-image", help="Image for CoreDNS.")
    ] = None,
    external_target: Annotated[
        str, typer.Option("--external-target", help="Domain name used as external target.")
    ] = "one.one.one.one.",
    external_cidr: Annotated[
        str, typer.Option("--external-cidr", help="IPv4 CIDR used as external target.")
    ] = "1.0.0.0/8",
    external_ip: Annotated[
        str, typer.Option("--external-ip", help="IPv4 used as external target.")
    ] = "1.1.1.1",
    external_ipv6: Annotated[
        str, typer.Option("--external-ipv6", help="IPv6 used as external target.")
    ] = "2606:4700:4700::1111",
    external_other_ip: Annotated[
        str, typer.Option("--external-other-ip", help="Other IPv4 used as external target.")
    ] = "1.0.0.1",
    external_other_ipv6: Annotated[
        str, typer.Option("--external-other-ipv6", help="Other IPv6 used as external target.")
    ] = "2606:4700:4700::1001",
    external_target_ipv6_capable: Annotated[
        bool,
        typer.Option("--external-target-ipv6-capable", help="External target is IPv6 capable."),
    ] = False,
    service_type: Annotated[
        str, typer.Option("--service-type", help="Type of the echo Services.")
    ] = "NodePort",
    ip_families: Annotated[
        list[str] | None,
        typer.Option("--ip-families", help="Restrict actions to these IP families."),
    ] = None,
    connect_timeout: Annotated[
        str, typer.Option("--connect-timeout", help="Maximum time for a connection to start.")
    ] = "2s",
    request_timeout: Annotated[
        str, typer.Option("--request-timeout", help="Maximum time for a request.")
    ] = "10s",
    retry: Annotated[
        int, typer.Option("--retry", help="Retries on connection failure to external targets.")
    ] = 3,
    retry_delay: Annotated[
        str, typer.Option("--retry-delay", help="Delay between retries to external targets.")
    ] = "3s",
    flow_validation: Annotated[
        str,
        typer.Option(
            "--flow-validation",
            help="Validate flows from the agents' monitor: disabled, warning or strict.",
        ),
    ] = "warning",
    junit_file: Annotated[
        str, typer.Option("--junit-file", help="Write a JUnit report to this file.")
    ] = "",
    junit_property: Annotated[
        list[str] | None,
        typer.Option("--junit-property", help="Add key=value properties to the JUnit file."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Show informational messages.")
    ] = False,
    debug: Annotated[bool, typer.Option("-d", "--debug", help="Show debug messages.")] = False,
    timeout: Annotated[
        str, typer.Option("--timeout", help="Maximum time for the whole suite (0: no limit).")
    ] = "0s",
    collect_sysdump_on_failure: Annotated[
        bool,
        typer.Option("--collect-sysdump-on-failure", help="Collect a sysdump when a test fails."),
    ] = False,
    exit_zero_on_failure: Annotated[
        bool, typer.Option("--exit-zero-on-failure", help="Exit 0 even when tests fail.")
    ] = False,
    agent_pod_selector: Annotated[
        str, typer.Option("--agent-pod-selector", help="Label selector of the agent pods.")
    ] = "k8s-app=cilium",
    parallel_actions: Annotated[
        int,
        typer.Option("--parallel-actions", help="Independent actions of a test run at once."),
    ] = 8,
) -> None:
    """Validate connectivity in the cluster.

    Deploys cilium-cli's test workloads in cilium-test-1, runs the selected tests as
    commands in the client and host-netns pods, validates flows from the agents' monitor
    and prints cilium-cli's report. Exit 1 when a test fails.
    """
    from ciliumctl.cli import common
    from ciliumctl.cli.context import SETTINGS
    from ciliumctl.connectivity import params as p

    if list_tests:
        _list_tests()
        return
    params = p.Params(
        cilium_namespace=SETTINGS.namespace,
        test_namespace=test_namespace,
        test_concurrency=test_concurrency,
        tests=list(tests or []),
        single_node=single_node,
        force_deploy=force_deploy,
        cleanup_only=cleanup,
        node_selector=_pairs(node_selector or [], "--node-selector"),
        curl_image=curl_image or p.CURL_IMAGE,
        json_mock_image=json_mock_image or p.JSON_MOCK_IMAGE,
        dns_test_server_image=dns_test_server_image or p.DNS_TEST_SERVER_IMAGE,
        external_target=external_target,
        external_cidr=external_cidr,
        external_ip=external_ip,
        external_ipv6=external_ipv6,
        external_other_ip=external_other_ip,
        external_other_ipv6=external_other_ipv6,
        external_target_ipv6_capable=external_target_ipv6_capable,
        service_type=service_type,
        ip_families=tuple(
            f.strip() for v in (ip_families or ["ipv4,ipv6"]) for f in v.split(",") if f.strip()
        ),
        connect_timeout=common.parse_duration(connect_timeout, "--connect-timeout"),
        request_timeout=common.parse_duration(request_timeout, "--request-timeout"),
        retry=retry,
        retry_delay=common.parse_duration(retry_delay, "--retry-delay"),
        flow_validation=flow_validation,
        junit_file=junit_file,
        junit_properties=_pairs(junit_property or [], "--junit-property"),
        verbose=verbose,
        debug=debug or SETTINGS.debug,
        timeout=common.parse_duration(timeout, "--timeout"),
        collect_sysdump_on_failure=collect_sysdump_on_failure,
        exit_zero_on_failure=exit_zero_on_failure,
        agent_selector=agent_pod_selector,
        parallel_actions=parallel_actions,
    )
    code = run(params, sys.argv[1:])
    if code:
        raise typer.Exit(code)


def _log(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run(params: Params, args: list[str]) -> int:
    """Run with parsed ``params``; returns the exit code (1 on failed tests)."""
    from ciliumctl.cli.context import SETTINGS
    from ciliumctl.connectivity import report
    from ciliumctl.connectivity.runner import Runner, validate_params

    validate_params(params)  # flags are checked before any cluster contact
    client = SETTINGS.client()
    context = client.context or "cluster"
    collect = _sysdump_collector(client) if params.collect_sysdump_on_failure else None
    runner = Runner(client, params, log=_log, context=context, collect_sysdump=collect)
    result = runner.run()
    for line in report.render(result):
        _log(line)
    if params.junit_file and result.runs:
        report.write_junit(
            params.junit_file, report.junit_xml(result, params.junit_properties, args)
        )
    if params.debug:
        _log("🐛 phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.phases.items()))
    if result.failed and not params.exit_zero_on_failure:
        failed = sum(1 for r in result.runs for t in r.tests if t.failed)
        sys.stderr.write(f"Error: connectivity test failed: {failed} tests failed\n")
        return 1
    return 0


def _sysdump_collector(client: Client) -> Callable[[], str]:
    """A callback writing one sysdump and returning its path."""
    from ciliumctl import __version__
    from ciliumctl.cli.context import SETTINGS
    from ciliumctl.sysdump.collect import Collector
    from ciliumctl.sysdump.plan import Options

    def collect() -> str:
        options = Options(namespace=SETTINGS.namespace, release=SETTINGS.helm_release_name)
        result = Collector(client, options, version=__version__).run()
        return str(result.path)

    return collect


def _list_tests() -> None:
    from ciliumctl.connectivity import catalog

    for spec in catalog.IMPLEMENTED:
        scen = ", ".join(s.name for s in spec.scenarios)
        needs = f" [requires {', '.join(spec.requires)}]" if spec.requires else ""
        _log(f"{spec.name}: {scen}{needs}")
    for name in catalog.NOT_IMPLEMENTED:
        _log(f"{name}: not implemented")
