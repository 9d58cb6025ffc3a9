"""Install benchmarks on dev clusters; prints JSON.

- `cilium install --dry-run` (median of 5; target <= 1.5 s)
- `cilium install --wait` vs `helm install --wait` of the same chart and values on the same
  3-node cluster (target: cilium within 1.2x of helm)
- `cilium status` on a 100-node cluster with Cilium installed (median of 5; target <= 3 s)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ciliumctl.devcluster import DevCluster, binaries
from ciliumctl.versions import chart_dir


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    helm = str(binaries.ensure(["helm"])["helm"])
    results: dict[str, object] = {"benchmark": "install"}
    with tempfile.TemporaryDirectory(prefix="ciliumctl-bench-") as tmp:
        small = DevCluster("bench-install", Path(tmp) / "small")
        small.up(3)
        try:
            kc = str(small.kubeconfig_path)
            cilium = [sys.executable, "-m", "ciliumctl", "--kubeconfig", kc]
            dry = [timed([*cilium, "install", "--dry-run"]) for _ in range(5)]
            results["install_dry_run_s"] = round(statistics.median(dry), 3)
            results["install_dry_run_target_s"] = 1.5
            values = subprocess.run(
                [*cilium, "install", "--dry-run-helm-values"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            values_file = Path(tmp) / "values.yaml"
            values_file.write_text(values + "ciliumVersion: 1.18.5\n")
            helm_install = [
                helm,
                "--kubeconfig",
                kc,
                "install",
                "cilium",
                str(chart_dir()),
                "-n",
                "kube-system",
                "-f",
                str(values_file),
                "--wait",
                "--timeout",
                "5m",
            ]
            helm_s = timed(helm_install)
            subprocess.run(
                [helm, "--kubeconfig", kc, "uninstall", "cilium", "-n", "kube-system", "--wait"],
                check=True,
                capture_output=True,
            )
            cilium_s = timed([*cilium, "install", "--wait"])
            results["helm_install_wait_s"] = round(helm_s, 3)
            results["cilium_install_wait_s"] = round(cilium_s, 3)
            results["cilium_to_helm_ratio"] = round(cilium_s / helm_s, 2)
            results["ratio_target"] = 1.2
        finally:
            small.down()
        big = DevCluster("bench-status", Path(tmp) / "big")
        big.up(100)
        try:
            cilium = [sys.executable, "-m", "ciliumctl", "--kubeconfig", str(big.kubeconfig_path)]
            subprocess.run([*cilium, "install", "--wait"], check=True, capture_output=True)
            runs = [timed([*cilium, "status"]) for _ in range(5)]
            results["status_100_nodes_s"] = round(statistics.median(runs), 3)
            results["status_100_nodes_target_s"] = 3.0
        finally:
            big.down()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
