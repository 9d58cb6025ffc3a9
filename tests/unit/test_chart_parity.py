"""Parity of charts/cilium with upstream's Cilium 1.18.5 chart, rendered by the real helm.

tests/data/upstream-chart/1.18.5-renders.json records, for sets of values from the Cilium
1.18 guides, what upstream's chart renders with
``helm template cilium <chart> -n kube-system --set <set>``: every key and value of the
cilium-config ConfigMap and every object as ``Kind/name`` (see the README next to it).
Each set is rendered here the same way and compared whole: the cilium-config (except
``cluster-name``, which depends on the cluster) and the object list. Any difference fails,
and the failure lists every differing key and object.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ciliumctl.devcluster import binaries

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "cilium"
DATA = ROOT / "tests" / "data" / "upstream-chart" / "1.18.5-renders.json"
KUBE_VERSION = binaries.KUBERNETES_VERSION.lstrip("v")
NOT_COMPARED = {"cluster-name"}

SETS: dict[str, dict[str, Any]] = json.loads(DATA.read_text())


@pytest.fixture(scope="module")
def helm() -> str:
    """The pinned helm binary (built from the Go module proxy on first use)."""
    return str(binaries.ensure(["helm"])["helm"])


def rendered(helm: str, set_string: str) -> tuple[dict[str, str], set[str]]:
    """cilium-config data and ``Kind/name`` of every object, as upstream's facts record."""
    args = [helm, "template", "cilium", str(CHART), "-n", "kube-system"]
    args += ["--kube-version", KUBE_VERSION]
    if set_string:
        args += ["--set", set_string]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    objects = [o for o in yaml.safe_load_all(proc.stdout) if o]
    config = [o for o in objects if o["kind"] == "ConfigMap"]
    data = next(o["data"] for o in config if o["metadata"]["name"] == "cilium-config")
    return data, {f"{o['kind']}/{o['metadata']['name']}" for o in objects}


def differences(expected: dict[str, Any], config: dict[str, str], objects: set[str]) -> list[str]:
    """Every way the rendering differs from upstream's facts, one line each."""
    want = {k: v for k, v in expected["cilium_config"].items() if k not in NOT_COMPARED}
    got = {k: v for k, v in config.items() if k not in NOT_COMPARED}
    out = [f"missing config {k}={want[k]!r}" for k in sorted(want.keys() - got.keys())]
    out += [f"extra config {k}={got[k]!r}" for k in sorted(got.keys() - want.keys())]
    out += [
        f"config {k}: {got[k]!r}, upstream {want[k]!r}"
        for k in sorted(want.keys() & got.keys())
        if want[k] != got[k]
    ]
    upstream = set(expected["objects"])
    out += [f"missing object {o}" for o in sorted(upstream - objects)]
    out += [f"extra object {o}" for o in sorted(objects - upstream)]
    return out


def test_data_is_the_shared_facts() -> None:
    """Twelve sets, each with a cilium-config and its object list (guards a truncated copy)."""
    assert len(SETS) >= 12
    for name, facts in SETS.items():
        assert set(facts) >= {"set", "cilium_config", "objects"}, name
        assert "ConfigMap/cilium-config" in facts["objects"], name
        assert len(facts["cilium_config"]) > 100, name


@pytest.mark.parametrize("name", sorted(SETS))
def test_renders_what_upstream_renders(helm: str, name: str) -> None:
    facts = SETS[name]
    config, objects = rendered(helm, facts["set"])
    diff = differences(facts, config, objects)
    assert not diff, f"{name} (--set {facts['set']!r}):\n  " + "\n  ".join(diff)


def test_differences_reports_every_kind_of_mismatch() -> None:
    facts = {"cilium_config": {"a": "1", "b": "2", "cluster-name": "x"}, "objects": ["K/one"]}
    diff = differences(facts, {"a": "1", "b": "3", "c": "4", "cluster-name": "y"}, {"K/two"})
    assert diff == [
        "extra config c='4'",
        "config b: '3', upstream '2'",
        "missing object K/one",
        "extra object K/two",
    ]


if __name__ == "__main__":  # a parity summary: python -m tests.unit.test_chart_parity
    helm_bin = str(binaries.ensure(["helm"])["helm"])
    summary: dict[str, Any] = {}
    for set_name, set_facts in sorted(SETS.items()):
        try:
            cfg, objs = rendered(helm_bin, set_facts["set"])
        except AssertionError as exc:
            summary[set_name] = {"error": str(exc).strip().splitlines()[0][:200]}
            continue
        want_cfg = {k: v for k, v in set_facts["cilium_config"].items() if k not in NOT_COMPARED}
        summary[set_name] = {
            "config_keys_matching": sum(cfg.get(k) == v for k, v in want_cfg.items()),
            "config_keys": len(want_cfg),
            "extra_config_keys": len(set(cfg) - set(set_facts["cilium_config"])),
            "objects_matching": len(objs & set(set_facts["objects"])),
            "objects": len(set_facts["objects"]),
            "extra_objects": len(objs - set(set_facts["objects"])),
        }
    print(yaml.safe_dump(summary, sort_keys=True))
