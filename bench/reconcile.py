"""`cilium reconcile diff` with nothing to change, against `kubectl diff --server-side` of the
same rendered manifests, on a 3-node dev cluster; prints JSON.

The desired state is the full chart (Hubble and Relay on) plus 20 policies and 5
CiliumNodeConfigs. Both commands are timed end to end as processes (median of 5 runs);
the target for `cilium reconcile diff` is 3 s. The first diff after the apply (cold: it
renders the chart and parses the CRDs) is reported on its own.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ciliumctl import yamlio
from ciliumctl.devcluster import DevCluster, binaries
from ciliumctl.k8s import Client
from ciliumctl.reconcile import plan as planning
from ciliumctl.reconcile.source import load
from ciliumctl.versions import chart_dir

RUNS = 5
TARGET_S = 3.0


def desired_state(root: Path) -> Path:
    """cilium.yaml, 20 policies in 4 namespaces, 5 CNCs, the namespaces in extra/."""
    (root / "policies").mkdir(parents=True)
    (root / "nodeconfigs").mkdir()
    (root / "extra").mkdir()
    (root / "cilium.yaml").write_text(
        "version: 1.18.5\nvalues:\n  operator:\n    replicas: 1\n"
        "  hubble:\n    relay:\n      enabled: true\n"
    )
    namespaces = [f"bench-{i}" for i in range(4)]
    (root / "extra" / "namespaces.yaml").write_text(
        yamlio.dump_all(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces]
        )
    )
    for i in range(20):
        policy = {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": f"app-{i}", "namespace": namespaces[i % 4]},
            "spec": {
                "endpointSelector": {"matchLabels": {"app": f"app-{i}"}},
                "ingress": [
                    {
                        "fromEndpoints": [{"matchLabels": {"app": f"client-{i}"}}],
                        "toPorts": [
                            {
                                "ports": [{"port": str(8000 + i), "protocol": "TCP"}],
                                "rules": {"http": [{"method": "GET", "path": f"/v{i}/.*"}]},
                            }
                        ],
                    }
                ],
                "egress": [{"toCIDR": [f"10.{i}.0.0/16"]}],
            },
        }
        (root / "policies" / f"app-{i}.yaml").write_text(yamlio.dump(policy))
    for i in range(5):
        cnc = {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNodeConfig",
            "metadata": {"name": f"pool-{i}", "namespace": "kube-system"},
            "spec": {
                "nodeSelector": {"matchLabels": {"pool": f"pool-{i}"}},
                "defaults": {"bpf-map-dynamic-size-ratio": f"0.00{i + 1}"},
            },
        }
        (root / "nodeconfigs" / f"pool-{i}.yaml").write_text(yamlio.dump(cnc))
    return root


def rendered_manifests(client: Client, source: Path, out: Path) -> int:
    """The objects reconcile compares, as one file for kubectl (CRDs, chart, user objects)."""
    from ciliumctl.cli.common import helm

    state = load(source, chart_dir())
    values = planning.chart_values(state, planning.detected_values(client))
    objects = helm().template(
        state.release, state.namespace, chart_dir(), values, include_crds=True
    )
    for item in state.objects:
        objects.append(planning.mark(item.obj, state.inventory))
    out.write_text(yamlio.dump_all(objects))
    return len(objects)


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{argv[:6]} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    kubectl = str(binaries.ensure(["kubectl"])["kubectl"])
    results: dict[str, object] = {"benchmark": "reconcile"}
    with tempfile.TemporaryDirectory(prefix="ciliumctl-bench-") as tmp:
        cluster = DevCluster("bench-reconcile", Path(tmp) / "cluster")
        cluster.up(3)
        try:
            kc = str(cluster.kubeconfig_path)
            # A fresh cache: the first diff renders the chart and parses the CRDs (cold),
            # the next ones reuse both (warm), as every cycle of `reconcile watch` does.
            cache = {planning.CACHE_ENV: f"{tmp}/cache"}
            env = dict(os.environ, NO_COLOR="1", KUBECONFIG=kc, **cache)
            source = desired_state(Path(tmp) / "desired")
            cilium = [sys.executable, "-m", "ciliumctl", "--kubeconfig", kc, "reconcile"]
            subprocess.run(
                [*cilium, "apply", "--source", str(source)],
                env=dict(env, **{planning.CACHE_ENV: f"{tmp}/apply-cache"}),
                check=True,
                capture_output=True,
            )
            diff = [*cilium, "diff", "--source", str(source)]
            cold = timed(diff, env, (0,))
            ours = [timed(diff, env, (0,)) for _ in range(RUNS)]
            manifests = Path(tmp) / "rendered.yaml"
            count = rendered_manifests(Client(kc, cluster.context), source, manifests)
            kubectl_diff = [
                kubectl,
                "--kubeconfig",
                kc,
                "diff",
                "--server-side",
                "--force-conflicts",
                "--field-manager",
                "ciliumctl",
                "-f",
                str(manifests),
            ]
            theirs = [timed(kubectl_diff, env, (0, 1)) for _ in range(RUNS)]
            results.update(
                objects=count,
                reconcile_diff_cold_s=round(cold, 3),
                reconcile_diff_s=round(statistics.median(ours), 3),
                reconcile_diff_runs_s=[round(t, 3) for t in ours],
                reconcile_diff_target_s=TARGET_S,
                kubectl_diff_server_side_s=round(statistics.median(theirs), 3),
                kubectl_diff_runs_s=[round(t, 3) for t in theirs],
                ratio_to_kubectl=round(statistics.median(ours) / statistics.median(theirs), 2),
                load_average=os.getloadavg()[0],
            )
        finally:
            cluster.down()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
