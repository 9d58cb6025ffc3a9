"""``cgexec.py``: how a real node's daemons enter its cgroups before they exec (no
``preexec_fn``, which can deadlock in a process with threads)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from ciliumctl.devcluster import cgexec, realnodes

CGEXEC = [sys.executable, "-I", "-S", cgexec.__file__]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CGEXEC, *args], capture_output=True, text=True, timeout=30)


def test_usage_error_names_the_expected_form() -> None:
    out = _run("only-a-root")
    assert out.returncode == 2
    assert "usage: cgexec.py CGROUP_ROOT -- COMMAND" in out.stderr


def test_a_missing_program_is_reported_with_exit_code_127() -> None:
    out = _run("ciliumctl.none", "--", "/nonexistent/program")
    assert out.returncode == 127
    assert "cgexec: cannot run /nonexistent/program" in out.stderr


def test_a_missing_cgroup_still_runs_the_command_with_its_arguments() -> None:
    out = _run("ciliumctl.none", "--", "echo", "a b", "c")
    assert (out.returncode, out.stdout) == (0, "a b c\n")


def test_cgroup_mounts_match_mountinfo() -> None:
    mounts = [p for p in cgexec.cgroup_mounts()]
    expected = [
        line.split(" - ")[0].split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.partition(" - ")[2].split()[:1] in (["cgroup"], ["cgroup2"])
    ]
    assert mounts == expected
    assert [str(p) for p in realnodes.cgroup_mounts()] == expected


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"), reason="needs root")
def test_the_command_runs_in_the_nodes_system_cgroup_of_every_hierarchy() -> None:
    """As root: the exec'd program is in ``ROOT/system`` everywhere (started from a process
    with busy threads, as the test runner and the CLI are)."""
    root = f"ciliumctl.test-{uuid.uuid4().hex[:8]}"
    realnodes.cgroup_create(root)
    stop = threading.Event()
    busy = [threading.Thread(target=stop.wait) for _ in range(4)]
    for t in busy:
        t.start()
    try:
        out = _run(root, "--", "cat", "/proc/self/cgroup")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines and all(line.endswith(f"/{root}/system") for line in lines), lines
    finally:
        stop.set()
        for t in busy:
            t.join()
        realnodes.cgroup_remove(root)
    assert not any((m / root).exists() for m in realnodes.cgroup_mounts())


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"), reason="needs root")
def test_cgroup_create_thaws_a_frozen_node_cgroup() -> None:
    root = f"ciliumctl.test-{uuid.uuid4().hex[:8]}"
    freezer = next(
        (
            m
            for m in realnodes.cgroup_mounts()
            if (m / "freezer.state").exists() or m.name == "freezer"
        ),
        None,
    )
    if freezer is None:
        if os.environ.get("CI"):
            pytest.fail("CI machines have the v1 freezer hierarchy this test needs")
        pytest.skip("no v1 freezer hierarchy on this kernel")
    realnodes.cgroup_create(root)
    try:
        state = freezer / root / "system" / "freezer.state"
        state.write_text("FROZEN")
        realnodes.cgroup_create(root)
        assert state.read_text().strip() == "THAWED"
    finally:
        realnodes.cgroup_remove(root)


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"), reason="needs root")
def test_down_sweeps_a_node_its_state_never_recorded() -> None:
    """A node started but never saved (its start failed half-way) is found by its cgroup:
    its processes are killed and its namespace deleted; recorded nodes are left alone."""
    from ciliumctl.devcluster import netns, network

    cluster = f"sw{uuid.uuid4().hex[:6]}"
    addr = network.Addressing(cluster, 0)
    lost, kept = f"ciliumctl.{cluster}.real-node-1", f"ciliumctl.{cluster}.real-node-0"
    for root in (lost, kept):
        realnodes.cgroup_create(root)
    netns.add(addr.node_ns("real-node-1"))
    proc = subprocess.Popen([*CGEXEC, lost, "--", "sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        while proc.pid not in realnodes.cgroup_pids(lost) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.pid in realnodes.cgroup_pids(lost)
        swept = realnodes.sweep_unrecorded(cluster, {"real-node-0"}, addr)
        assert swept == ["real-node-1"]
        proc.wait(timeout=10)  # (its status was reaped by the sweep: it is our child)
        assert not realnodes.pid_alive(proc.pid, "sleep")
        assert not netns.exists(addr.node_ns("real-node-1"))
        assert not any((m / lost).exists() for m in realnodes.cgroup_mounts())
        assert all((m / kept).exists() for m in realnodes.cgroup_mounts())
    finally:
        proc.kill()
        realnodes.cgroup_remove(lost)
        realnodes.cgroup_remove(kept)
        netns.delete(addr.node_ns("real-node-1"))


def test_pid_alive_tells_our_processes_from_kernel_threads_and_other_programs() -> None:
    assert realnodes.pid_alive(os.getpid(), "python")
    assert not realnodes.pid_alive(os.getpid(), "no-such-program")
    # kthreadd has no command line either, but it is a kernel thread: never one of ours
    assert not realnodes.pid_alive(2, "")
    assert not realnodes.pid_alive(0, "python")


def test_node_process_finds_the_one_process_serving_a_node() -> None:
    """By command and K8S_NODE_NAME (real nodes share the PID namespace); none or several is
    an error that names the count."""
    import subprocess

    from ciliumctl.devcluster.cluster import DevClusterError

    env = dict(os.environ, K8S_NODE_NAME="unit-node-x")
    proc = subprocess.Popen(["sleep", "30"], env=env)
    try:
        time.sleep(0.2)  # past the exec, so /proc shows sleep's own command line
        assert realnodes.node_process("sleep", "unit-node-x") == proc.pid
        with pytest.raises(DevClusterError, match="0 sleep processes serve unit-node-y"):
            realnodes.node_process("sleep", "unit-node-y")
        # scoped to a dev cluster: a same-named node of another cluster is not it
        with pytest.raises(DevClusterError, match="0 sleep processes serve unit-node-x"):
            realnodes.node_process("sleep", "unit-node-x", cluster="other")
    finally:
        proc.kill()
        proc.wait()
