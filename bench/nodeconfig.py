"""Effective configuration for 1,000 nodes and 50 CiliumNodeConfigs (target: <= 1 s).

Plain data, no cluster: a cilium-config of 150 keys, 50 CNCs with matchLabels and
matchExpressions selectors over zone/pool/hardware labels, 1,000 nodes. Times the engine
(selectors compiled, every node resolved, differences from the ConfigMap and grouping by
fingerprint, as `cilium config node plan` does) and prints JSON with the median of 5 runs.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from typing import Any

from ciliumctl.nodeconfig.engine import Engine, Inputs, NodeInfo, differences

NODES = 1000
CNCS = 50
RUNS = 5
NS = "kube-system"


def workload(seed: int = 7) -> tuple[Inputs, list[NodeInfo]]:
    rng = random.Random(seed)
    cm = {f"option-{i}": str(i) for i in range(150)}
    cncs: list[dict[str, Any]] = []
    for i in range(CNCS):
        if i % 3 == 0:
            selector: dict[str, Any] = {"matchLabels": {"pool": f"p{i % 10}"}}
        elif i % 3 == 1:
            selector = {
                "matchExpressions": [
                    {"key": "zone", "operator": "In", "values": [f"z{i % 4}", f"z{(i + 1) % 4}"]},
                    {"key": "hw", "operator": "Exists"},
                ]
            }
        else:
            selector = {
                "matchLabels": {"tier": f"t{i % 5}"},
                "matchExpressions": [{"key": "legacy", "operator": "DoesNotExist"}],
            }
        defaults = {f"option-{rng.randrange(200)}": f"cnc{i}" for _ in range(rng.randint(1, 8))}
        cncs.append(
            {
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumNodeConfig",
                "metadata": {"name": f"cnc-{i:02d}", "namespace": NS},
                "spec": {"nodeSelector": selector, "defaults": defaults},
            }
        )
    nodes = []
    for n in range(NODES):
        labels = {
            "pool": f"p{rng.randrange(10)}",
            "zone": f"z{rng.randrange(4)}",
            "tier": f"t{rng.randrange(5)}",
            "kubernetes.io/hostname": f"node-{n}",
        }
        if rng.random() < 0.3:
            labels["hw"] = "xdp"
        if rng.random() < 0.2:
            labels["legacy"] = "true"
        nodes.append(NodeInfo(f"node-{n}", labels))
    return Inputs(NS, {(NS, "cilium-config"): cm}, cncs), nodes


def once(inputs: Inputs, nodes: list[NodeInfo]) -> tuple[float, int]:
    start = time.perf_counter()
    engine = Engine(inputs)
    by_name = {n.name: n for n in nodes}
    cm = inputs.configmaps[(NS, "cilium-config")]
    groups: dict[str, list[str]] = {}
    for node in nodes:
        eff = engine.resolve(node, by_name)
        differences(eff, cm)
        groups.setdefault(eff.fingerprint(), []).append(node.name)
    return time.perf_counter() - start, len(groups)


def main() -> None:
    inputs, nodes = workload()
    samples = []
    groups = 0
    for _ in range(RUNS):
        seconds, groups = once(inputs, nodes)
        samples.append(seconds)
    median = statistics.median(samples)
    print(
        json.dumps(
            {
                "benchmark": "nodeconfig_effective",
                "nodes": NODES,
                "cilium_node_configs": CNCS,
                "configmap_keys": 150,
                "distinct_configurations": groups,
                "median_seconds": round(median, 4),
                "max_seconds": round(max(samples), 4),
                "target_seconds": 1.0,
                "ok": median <= 1.0,
            }
        )
    )


if __name__ == "__main__":
    main()
