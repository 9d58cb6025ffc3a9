"""`cilium sysdump` on a 100-node dev cluster; prints JSON.

Cilium is installed with `cilium install --wait`; kwok serves a 2 MiB CRI log for every
agent's `cilium-agent` container and runs the stand-in `cilium-dbg` / `cilium-bugtool`
(tests/integration/sysdump_standins) for exec. The default sysdump (20 workers; the
large-cluster guard's 5 s pause included) is timed against `--worker-count 1`; the peak
RSS and CPU time of each sysdump process come from wait4's rusage, the CPU time of the
dev cluster's processes (kwok serving logs and running execs, the API server proxying
them) from /proc. When those processes and the sysdump share a few cores, the run is
CPU-bound and the speedup of more workers is bounded by the core count; the CPU figures
and the load average show how much of the machine the run had.

Targets: default <= 60 s, at least 5x faster than one worker, peak RSS <= 300 MB.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from ciliumctl.devcluster import DevCluster, kwok
from ciliumctl.k8s import Client, KubeError

NODES = 100
LOG_BYTES = 2 << 20
NS = "kube-system"
STANDINS = Path(__file__).resolve().parent.parent / "tests" / "integration" / "sysdump_standins"
_MESSAGES = [
    'level=info msg="Policy imported via API, recalculating..." policyAddRequest={n} subsys=daemon',
    'level=debug msg="Processing endpoint" ciliumEndpointName=default/app-{n} ipv4=10.244.{m}.{k}'
    " subsys=endpoint",
    'level=info msg="Rewrote endpoint BPF program" endpointID={n} identity={m}{k} subsys=endpoint',
    'level=warning msg="Unable to update CiliumNode resource, will retry" error="Operation cannot'
    ' be fulfilled on ciliumnodes.cilium.io: the object has been modified" subsys=ipam',
    'level=info msg="Serving cilium health API at unix:///var/run/cilium/health.sock"'
    " subsys=health-server",
    'level=debug msg="Upserting service" frontend=10.96.{m}.{k}:443 backends={n} subsys=service',
    'level=info msg="kvstore connected" endpoints=https://etcd:2379 token=tok{n}{m}{k}x'
    " subsys=kvstore",
]


def agent_log(path: Path) -> None:
    """About LOG_BYTES of agent log in the CRI format, a few lines carrying credentials."""
    rng = random.Random(7)
    lines: list[str] = []
    size = 0
    while size < LOG_BYTES:
        line = rng.choice(_MESSAGES).format(
            n=rng.randrange(1 << 16), m=rng.randrange(256), k=rng.randrange(256)
        )
        lines.append(line)
        size += len(line) + 40
    path.write_text(kwok.cri_log(lines, start=time.time() - len(lines)))


def wait_exec(client: Client, pod: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.exec(NS, pod, ["cilium-dbg", "status"], "cilium-agent").exit_code == 0:
                return
        except KubeError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"kwok never enabled exec for {pod}")
        time.sleep(0.5)


def component_cpu(cluster: DevCluster) -> dict[str, float]:
    """CPU seconds used so far by each process of the dev cluster (from /proc)."""
    out = {}
    for comp in cluster.components():
        try:
            fields = Path(f"/proc/{comp.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[comp.name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def run_sysdump(cluster: DevCluster, out: Path, *args: str) -> dict[str, Any]:
    """One sysdump as a child process: wall time, peak RSS, CPU (its own and the cluster's),
    archive size and throughput."""
    kubeconfig = str(cluster.kubeconfig_path)
    out.mkdir(parents=True, exist_ok=True)
    cpu_before = component_cpu(cluster)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ciliumctl",
            "--kubeconfig",
            kubeconfig,
            "sysdump",
            "--output-filename",
            "bench",
            *args,
        ],
        cwd=out,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, NO_COLOR="1"),
    )
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    cpu_after = component_cpu(cluster)
    proc.returncode = os.waitstatus_to_exitcode(status)
    archive = out / "bench.zip"
    with zipfile.ZipFile(archive) as zf:
        summary = json.loads(zf.read("bench/summary.json"))
        uncompressed = sum(i.file_size for i in zf.infolist())
    return {
        "exit_code": proc.returncode,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "sysdump_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "cluster_cpu_s": {
            name: round(cpu_after[name] - cpu_before[name], 1)
            for name in cpu_after
            if name in cpu_before
        },
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "archive_mb": round(archive.stat().st_size / 1e6, 2),
        "collected_mb": round(uncompressed / 1e6, 2),
        "mb_per_s": round(uncompressed / 1e6 / seconds, 2),
        "tasks": summary["tasks"],
        "redactions": summary["redaction"]["total"],
        "stdout_tail": stdout.strip().splitlines()[-1:] if proc.returncode else [],
    }


def main() -> None:
    results: dict[str, Any] = {"benchmark": "sysdump", "nodes": NODES, "log_bytes": LOG_BYTES}
    with tempfile.TemporaryDirectory(prefix="ciliumctl-bench-sysdump-") as tmp:
        # kwok resolves exec commands on its own PATH: start it with the stand-ins there.
        saved = os.environ["PATH"]
        os.environ["PATH"] = f"{STANDINS}:{saved}"
        cluster = DevCluster("bench-sysdump", Path(tmp) / "cluster")
        try:
            cluster.up(NODES, timeout=600)
        finally:
            os.environ["PATH"] = saved
        try:
            kc = str(cluster.kubeconfig_path)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ciliumctl",
                    "--kubeconfig",
                    kc,
                    "install",
                    "--wait",
                    "--wait-duration",
                    "10m",
                ],
                check=True,
                capture_output=True,
            )
            client = Client(kc)
            pods = client.list("v1", "Pod", NS, label_selector="k8s-app=cilium")
            log = Path(tmp) / "agent.log"
            agent_log(log)
            env = {"PATH": f"{STANDINS}:{saved}"}
            for pod in pods:
                name = pod["metadata"]["name"]
                cluster.serve_logs(client, NS, name, log, ["cilium-agent"])
                cluster.enable_exec(
                    client,
                    NS,
                    name,
                    ["cilium-agent"],
                    {**env, "K8S_NODE_NAME": pod["spec"]["nodeName"]},
                )
            for pod in pods:
                wait_exec(client, pod["metadata"]["name"])
            results["agents"] = len(pods)
            results["cpus"] = os.cpu_count()
            results["default"] = run_sysdump(cluster, Path(tmp) / "default")
            results["one_worker"] = run_sysdump(cluster, Path(tmp) / "one", "--worker-count", "1")
            results["speedup"] = round(
                results["one_worker"]["seconds"] / results["default"]["seconds"], 2
            )
            results["targets"] = {"default_s": 60, "speedup": 5, "peak_rss_mb": 300}
        finally:
            cluster.down()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
