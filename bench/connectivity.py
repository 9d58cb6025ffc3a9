"""Benchmark of `cilium connectivity test` on a dev cluster with real nodes; prints JSON.

Brings up dev cluster ``ct-bench`` (2 real nodes running the project's own Cilium, installed
with ``cilium install``; ``--cni bridge`` for the bridge CNI) unless ``--kubeconfig`` names a
running cluster, then runs the implemented suite twice as a user would (``cilium
connectivity test``): cold (fresh namespace: deploy, readiness waits, tests) and warm
(workloads kept). Reports the wall time of each run and of its phases. When cilium-cli has
been built (``--cilium-cli PATH``, default ``~/.cache/ciliumctl/bin-ct/cilium-cli``; see the
README) it runs the same tests (each implemented test's name, anchored) against the same
cluster in a namespace of its own, side by side, and the report says how its run ended.
Goal: the suite in <= 180 s and ours <= 0.5x cilium-cli's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ciliumctl.connectivity.params import (  # noqa: E402
    CURL_IMAGE,
    DNS_TEST_SERVER_IMAGE,
    JSON_MOCK_IMAGE,
    Params,
)
from ciliumctl.connectivity.runner import Runner  # noqa: E402
from ciliumctl.k8s import Client  # noqa: E402

DEFAULT_CLI = Path.home() / ".cache/ciliumctl/bin-ct/cilium-cli"
UPSTREAM_IMAGES = {
    "curl_image": CURL_IMAGE,
    "json_mock_image": JSON_MOCK_IMAGE,
    "dns_test_server_image": DNS_TEST_SERVER_IMAGE,
}


def ours(kubeconfig: str, context: str | None, namespace: str, tests: list[str]) -> dict:  # type: ignore[type-arg]
    """One in-process run with the phase timings the runner records."""
    client = Client(kubeconfig, context)
    lines: list[str] = []
    params = Params(test_namespace=namespace, tests=tests, **IMAGES)
    start = time.perf_counter()
    result = Runner(client, params, log=lines.append, context=client.context or "").run()
    wall = time.perf_counter() - start
    tests_run = [t for r in result.runs for t in r.tests]
    return {
        "wall_seconds": round(wall, 2),
        "phases_seconds": {k: round(v, 2) for k, v in result.phases.items()},
        "tests_seconds": {t.name: round(t.seconds, 2) for t in tests_run if not t.skipped},
        "tests": len(tests_run),
        "skipped": sum(1 for t in tests_run if t.skipped),
        "failed": [t.name for t in tests_run if t.failed],
        "actions": sum(len(t.outcomes) for t in tests_run),
    }


def implemented_tests(selected: list[str]) -> list[str]:
    """The ``--test`` arguments that make cilium-cli run what ours runs: ours' own selection
    when given, else each implemented test by its anchored name."""
    from ciliumctl.connectivity.catalog import IMPLEMENTED

    return selected or [f"^{spec.name}/" for spec in IMPLEMENTED]


def upstream(cli: Path, kubeconfig: str, namespace: str, tests: list[str]) -> dict:  # type: ignore[type-arg]
    """cilium-cli itself, same tests, same cluster."""
    args = [str(cli), "connectivity", "test", "--test-namespace", namespace]
    for t in implemented_tests(tests):
        args += ["--test", t]
    args += [
        "--curl-image",
        IMAGES["curl_image"],
        "--json-mock-image",
        IMAGES["json_mock_image"],
        "--dns-test-server-image",
        IMAGES["dns_test_server_image"],
        # its L7 load-balancer pod runs the echo image too (waited for even when the
        # L7 tests are skipped); the dev cluster has this project's echo server
        "--echo-image",
        IMAGES["json_mock_image"],
        "--hubble=false",
        "--flow-validation=disabled",
    ]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "KUBECONFIG": kubeconfig},
        )
    except subprocess.TimeoutExpired:
        return {"wall_seconds": None, "error": "timed out after 900 s"}
    wall = time.perf_counter() - start
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    report = [ln for ln in lines if "tests failed" in ln or "tests (" in ln or "successful" in ln]
    return {
        "wall_seconds": round(wall, 2),
        "exit_code": proc.returncode,
        "report": report[-3:],
        "last_lines": lines[-12:],
    }


IMAGES = dict(UPSTREAM_IMAGES)
#: namespaces cilium-cli creates besides its test namespace
UPSTREAM_EXTRA_NAMESPACES = ("cilium-test-ccnp1", "cilium-test-ccnp2")


def gone(client: Client, namespace: str, timeout: float = 300.0) -> None:
    """Delete a namespace and wait until it no longer exists (bounded)."""
    client.delete("v1", "Namespace", namespace)
    deadline = time.monotonic() + timeout
    while client.get_or_none("v1", "Namespace", namespace) is not None:
        if time.monotonic() > deadline:
            raise SystemExit(f"namespace {namespace} still exists after {timeout:.0f}s")
        time.sleep(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", help="use this running cluster instead of ct-bench")
    ap.add_argument("--context")
    ap.add_argument("--cilium-cli", type=Path, default=DEFAULT_CLI)
    ap.add_argument("--test", action="append", default=[])
    ap.add_argument("--keep", action="store_true", help="leave ct-bench up")
    ap.add_argument("--cni", choices=["cilium", "bridge"], default="cilium")
    args = ap.parse_args()
    tests = args.test or []
    out: dict = {"goal": {"suite_seconds_max": 180, "ratio_to_cilium_cli_max": 0.5}}  # type: ignore[type-arg]
    cluster = None
    kubeconfig = args.kubeconfig
    if not kubeconfig:
        from ciliumctl.devcluster import DevCluster

        cluster = DevCluster("ct-bench")
        start = time.perf_counter()
        if args.cni == "bridge":
            cluster.up(0, real_nodes=2, cni="bridge", timeout=600)  # type: ignore[call-arg]
        else:
            cluster.up(0, real_nodes=2, timeout=600)
        kubeconfig = str(cluster.kubeconfig_path)
        if args.cni == "cilium":
            cli = [sys.executable, "-m", "ciliumctl"]
            env = {**os.environ, "KUBECONFIG": kubeconfig}
            for step in (["install"], ["status", "--wait", "--wait-duration", "5m"]):
                subprocess.run([*cli, *step], env=env, check=True, capture_output=True, timeout=900)
        out["cluster_up_seconds"] = round(time.perf_counter() - start, 2)
        out["cni"] = args.cni
    try:
        client = Client(kubeconfig, args.context)
        gone(client, "ct-bench-1")
        out["cold"] = ours(kubeconfig, args.context, "ct-bench", tests)
        out["warm"] = ours(kubeconfig, args.context, "ct-bench", tests)
        out["suite_within_goal"] = out["cold"]["wall_seconds"] <= 180
        if args.cilium_cli.exists():
            # both suites' echo pods take hostPort 4000: ours go first, and theirs start cold
            for ns in ("ct-bench-1", "ct-upstream-1", *UPSTREAM_EXTRA_NAMESPACES):
                gone(client, ns)
            out["cilium_cli"] = upstream(args.cilium_cli, kubeconfig, "ct-upstream", tests)
            for ns in ("ct-upstream-1", *UPSTREAM_EXTRA_NAMESPACES):
                gone(client, ns)
            theirs = out["cilium_cli"].get("wall_seconds")
            if theirs and out["cilium_cli"].get("exit_code") == 0:
                out["ratio_to_cilium_cli"] = round(out["cold"]["wall_seconds"] / theirs, 3)
        else:
            out["cilium_cli"] = {"error": f"not built at {args.cilium_cli}"}
    finally:
        if cluster is not None and not args.keep:
            cluster.down()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
