"""Templates compile in a child process: the long-running agent never maps LLVM and clang
(about 85 MiB of libraries, and as much heap, kept for good after a compile it does once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.datapath.conftest import Namespaces

PROBE = os.path.join(os.path.dirname(__file__), "compile_child_probe.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _probe(
    cmd: str, root: str, netns: Namespaces, cache: Path, **extra_env: str
) -> dict[str, object]:
    node, pod = netns.new("node"), netns.new("pod")
    env = dict(os.environ, PYTHONPATH=REPO, XDG_CACHE_HOME=str(cache), **extra_env)
    env.pop("CILIUMCTL_BPF_COMPILE_IN_PROCESS", None)
    run = subprocess.run(
        [sys.executable, PROBE, cmd, root, node, pod],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def test_endpoint_programs_come_from_a_child_compile(
    pin_root: str, netns: Namespaces, tmp_path: Path
) -> None:
    out = _probe("endpoint", pin_root, netns, tmp_path)
    assert out["attached"] == {"ingress": "cil_from_container", "egress": "cil_to_container"}
    assert out["bcc_imported"] is False
    cached = sorted(p.name for p in (tmp_path / "ciliumctl" / "bpf-objects").iterdir())
    assert any(name.startswith("bpf_lxc-") for name in cached), cached


def test_a_compile_error_in_the_child_is_raised_in_the_caller(
    pin_root: str, netns: Namespaces, tmp_path: Path
) -> None:
    out = _probe("broken", pin_root, netns, tmp_path)
    error = out["error"]
    assert isinstance(error, list)
    kind, message = error
    assert kind == "VerifierError"
    assert "compiling bpf/bpf_lxc.c failed" in message
    assert out["bcc_imported"] is False


def test_the_endpoint_template_is_prepared_before_any_pod_and_kept_on_the_node(
    pin_root: str, netns: Namespaces, tmp_path: Path
) -> None:
    """The agent compiles the endpoint template at start (the first pod would otherwise wait
    seconds for bcc, and every pod behind it), into the directory it names, which outlives
    its container: the next agent loads it and compiles nothing."""
    from ciliumctl.datapath.loader import OBJECT_CACHE_ENV

    templates = tmp_path / "run-cilium" / "state" / "templates"
    env = {OBJECT_CACHE_ENV: str(templates)}
    out = _probe("prepare", pin_root, netns, tmp_path / "xdg", **env)
    assert out["cache_dir"] == str(templates)
    assert len(out["templates_in_memory"]) == 1  # type: ignore[arg-type]
    assert out["bcc_imported"] is False
    kept = sorted(templates.glob("bpf_lxc-*.json"))
    assert len(kept) == 1 and not (tmp_path / "xdg" / "ciliumctl" / "bpf-objects").exists()
    stamp = kept[0].stat().st_mtime_ns
    again = _probe("prepare", pin_root, netns, tmp_path / "xdg", **env)
    assert again["templates_in_memory"] == out["templates_in_memory"]
    assert kept[0].stat().st_mtime_ns == stamp  # loaded, not compiled and written again
