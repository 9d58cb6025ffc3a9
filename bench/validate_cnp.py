"""`cilium validate cnp` throughput against server-side dry-run create; prints JSON.

10,000 typical policies (an endpoint selector, one ingress rule with fromEndpoints, toPorts
and HTTP rules, one egress rule with toCIDRSet and except) are validated in one file and,
as 1,000 files of 10 policies, by the command itself (a process, timed end to end). The
same 1,000 policies are then created with ``dryRun=All`` against the API server of a dev
cluster (0 nodes, the chart's CRDs installed), which runs the CRD's structural schema.
Targets: >= 5,000 policies/s offline and >= 50x the dry run; the schema and rule checks of
one policy take <= 0.1 ms of CPU (measured in-process).

The dry run is timed as raw API requests from one warm client (``dry_run_*``, the figure
the ratio uses) and, as a second peer figure only, as a user runs it:
``kubectl create --dry-run=server -f <dir>`` over the same 1,000 policies in 100 files
(``kubectl_dry_run_*``: a process start, discovery and one request per object).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ciliumctl import yamlio

POLICIES = 10_000
FILES = 1_000
DRY_RUN_POLICIES = 1_000
TARGET_PER_S = 5_000
TARGET_RATIO = 50
#: Each side is timed this many times and the best run counts (a 2-core machine's runs
#: vary by up to 50% with background load; both sides get the same treatment).
RUNS = 5


def policy(i: int) -> dict[str, Any]:
    """The i-th typical CiliumNetworkPolicy (valid: the validator finds nothing)."""
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": f"app-{i}", "namespace": f"team-{i % 50}"},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": f"app-{i}", "tier": "backend"}},
            "ingress": [
                {
                    "fromEndpoints": [
                        {
                            "matchLabels": {
                                "app": f"client-{i}",
                                "k8s:io.kubernetes.pod.namespace": f"team-{i % 50}",
                            }
                        }
                    ],
                    "toPorts": [
                        {
                            "ports": [{"port": str(8000 + i % 1000), "protocol": "TCP"}],
                            "rules": {
                                "http": [
                                    {"method": "GET", "path": f"/api/v{i % 3}/items/.*"},
                                    {"method": "POST", "path": "/api/v1/orders"},
                                ]
                            },
                        }
                    ],
                }
            ],
            "egress": [
                {
                    "toCIDRSet": [
                        {
                            "cidr": f"10.{i % 256}.0.0/16",
                            "except": [f"10.{i % 256}.{i % 250}.0/24"],
                        }
                    ]
                }
            ],
        },
    }


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cilium_validate(paths: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of it and its workers) of one `cilium validate cnp` over
    ``paths`` (which must have no findings). CPU time shows the cost on a busy machine."""
    argv = [sys.executable, "-m", "ciliumctl", "validate", "cnp", "-o", "json", *paths]
    cpu = _children_cpu_s()
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu_s() - cpu
    if done.returncode != 0:
        raise SystemExit(f"validate cnp exited {done.returncode}: {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)["summary"]
    if summary["policies"] != POLICIES or summary["errors"] or summary["warnings"]:
        raise SystemExit(f"unexpected validation summary: {summary}")
    return elapsed, cpu


def parse_ms_per_policy(text: str) -> dict[str, float]:
    """CPU milliseconds per policy of splitting and parsing ``text`` as validate cnp does
    (best of 3, in-process, lines not worked out: the policies have no findings)."""
    from ciliumctl.validators.yamlsrc import parse_document, split_documents

    times = []
    for _ in range(3):
        start = time.process_time()
        count = 0
        for index, (line, chunk) in enumerate(split_documents(text)):
            parse_document("bench.yaml", index, line, chunk)
            count += 1
        times.append(time.process_time() - start)
    return {"parse_ms_per_policy": round(min(times) * 1000 / count, 4)}


def checks_ms_per_policy(docs: list[dict[str, Any]]) -> dict[str, float]:
    """CPU milliseconds per policy of the schema and of the rule checks (best of 3 runs)."""
    from ciliumctl.validators import policy_model as pm
    from ciliumctl.validators.policy_rules import check_policy

    def best(run: Any) -> float:
        times = []
        for _ in range(3):
            start = time.process_time()
            run()
            times.append(time.process_time() - start)
        return min(times) * 1000 / len(docs)

    def schema_check(doc: dict[str, Any]) -> None:
        # What validate cnp runs: the cheap test, and the issues only when it fails.
        node = pm.schema_for(doc["kind"])
        if not node.ok(doc):
            list(node.validate(doc, ()))

    schema = best(lambda: [schema_check(d) for d in docs])
    rules = best(lambda: [list(check_policy(d, d["kind"], (1, 18))) for d in docs])
    return {
        "schema_ms_per_policy": round(schema, 4),
        "rules_ms_per_policy": round(rules, 4),
        "checks_ms_per_policy": round(schema + rules, 4),
        "checks_target_ms": 0.1,
    }


def dry_run_seconds(tmp: Path, docs: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Seconds of each of :data:`RUNS` passes creating ``docs`` with dryRun=All on a fresh
    0-node dev cluster, one request after another as `kubectl create --dry-run=server` does.
    The first pass meets a cold API server; the later ones are about twice as fast.
    Second: the seconds of each of :data:`RUNS` runs of the real kubectl doing the same
    (empty when kubectl is not there)."""
    from ciliumctl.devcluster import DevCluster, binaries
    from ciliumctl.k8s import Client
    from ciliumctl.versions import chart_dir

    cluster = DevCluster("cf-bench", state_dir=tmp / "cluster")
    cluster.up(0)
    try:
        client = Client(str(cluster.kubeconfig_path), cluster.context)
        crd = chart_dir() / "crds" / "ciliumnetworkpolicies.yaml"
        client.apply(yamlio.load(crd.read_text()))
        namespaces = sorted({d["metadata"]["namespace"] for d in docs})
        for name in namespaces:
            client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        _wait_served(client)
        runs = []
        for _ in range(RUNS):
            start = time.perf_counter()
            for doc in docs:
                client.create(doc, dry_run=True)
            runs.append(time.perf_counter() - start)
        kubectl = binaries.find("kubectl")
        kubectl_runs = []
        if kubectl is not None:
            folder = tmp / "dry-run"
            folder.mkdir()
            per_file = POLICIES // FILES
            for f in range(0, len(docs), per_file):
                text = yamlio.dump_all(docs[f : f + per_file])
                (folder / f"policies-{f // per_file:04d}.yaml").write_text(text)
            argv = [str(kubectl), "--kubeconfig", str(cluster.kubeconfig_path)]
            argv += ["--context", cluster.context, "create", "--dry-run=server"]
            argv += ["-o", "name", "-f", str(folder)]
            env = dict(os.environ, HOME=str(tmp))  # its own discovery cache, warm after run 1
            for _ in range(RUNS):
                start = time.perf_counter()
                done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
                kubectl_runs.append(time.perf_counter() - start)
                created = done.stdout.count("\n")
                if done.returncode != 0 or created != len(docs):
                    raise SystemExit(
                        f"kubectl exited {done.returncode}, {created} objects: "
                        f"{done.stderr[-2000:]}"
                    )
        return runs, kubectl_runs
    finally:
        cluster.down()


def _wait_served(client: Any) -> None:
    """Wait (at most 60 s) until the API server serves CiliumNetworkPolicy."""
    from ciliumctl.k8s.errors import NotFoundError

    deadline = time.monotonic() + 60
    while True:
        try:
            client.list("cilium.io/v2", "CiliumNetworkPolicy", "team-0")
            return
        except NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _kubectl_fields(runs: list[float], offline_rate: float) -> dict[str, Any]:
    """The second peer figure: the dry run as `kubectl create --dry-run=server -f <dir>`."""
    if not runs:
        return {"kubectl_dry_run_s": None}
    rate = DRY_RUN_POLICIES / min(runs)
    return {
        "kubectl_dry_run_s": round(min(runs), 3),
        "kubectl_dry_run_first_pass_s": round(runs[0], 3),
        "kubectl_dry_run_policies_per_s": round(rate, 1),
        "ratio_to_kubectl_dry_run": round(offline_rate / rate, 1),
    }


def main() -> None:
    docs = [policy(i) for i in range(POLICIES)]
    # The first run writes the .pyc files an installation has (the CLI's startup is part of
    # each timing); with PYTHONDONTWRITEBYTECODE set, as in some sandboxes, every timed run
    # would compile the CLI's modules from source again.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["NO_COLOR"] = "1"
    with tempfile.TemporaryDirectory(prefix="ciliumctl-bench-cnp-") as name:
        tmp = Path(name)
        one = tmp / "all.yaml"
        one.write_text(yamlio.dump_all(docs))
        many = tmp / "many"
        many.mkdir()
        per_file = POLICIES // FILES
        for f in range(FILES):
            chunk = docs[f * per_file : (f + 1) * per_file]
            (many / f"policies-{f:04d}.yaml").write_text(yamlio.dump_all(chunk))
        cilium_validate([str(one)], env)  # warm .pyc files and the page cache
        one_file_s, one_cpu_s = min(cilium_validate([str(one)], env) for _ in range(RUNS))
        many_files_s, many_cpu_s = min(cilium_validate([str(many)], env) for _ in range(RUNS))
        checks = checks_ms_per_policy(docs[:2000])
        checks |= parse_ms_per_policy(yamlio.dump_all(docs[:2000]))
        dry_runs, kubectl_runs = dry_run_seconds(tmp, docs[:DRY_RUN_POLICIES])
    dry_s = min(dry_runs)
    one_rate = POLICIES / one_file_s
    many_rate = POLICIES / many_files_s
    dry_rate = DRY_RUN_POLICIES / dry_s
    ratio = min(one_rate, many_rate) / dry_rate
    print(
        json.dumps(
            {
                "benchmark": "validate_cnp",
                "policies": POLICIES,
                "one_file_s": round(one_file_s, 3),
                "one_file_policies_per_s": round(one_rate),
                "one_file_cpu_s": round(one_cpu_s, 3),
                "files": FILES,
                "many_files_s": round(many_files_s, 3),
                "many_files_policies_per_s": round(many_rate),
                "many_files_cpu_s": round(many_cpu_s, 3),
                # Load-robust: policies per CPU-second of the command and its workers.
                "one_file_policies_per_cpu_s": round(POLICIES / one_cpu_s),
                "many_files_policies_per_cpu_s": round(POLICIES / many_cpu_s),
                "cpus": len(os.sched_getaffinity(0)),
                "target_policies_per_s": TARGET_PER_S,
                "rate_ok": min(one_rate, many_rate) >= TARGET_PER_S,
                **checks,
                "dry_run_policies": DRY_RUN_POLICIES,
                "dry_run_s": round(dry_s, 3),
                "dry_run_first_pass_s": round(dry_runs[0], 3),
                "dry_run_policies_per_s": round(dry_rate, 1),
                "ratio_to_dry_run": round(ratio, 1),
                "target_ratio": TARGET_RATIO,
                "ratio_ok": ratio >= TARGET_RATIO,
                **_kubectl_fields(kubectl_runs, min(one_rate, many_rate)),
                "runs_per_side": RUNS,
                "load_average": os.getloadavg()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
