"""Run a command inside a node's cgroups: ``python -I -S cgexec.py ROOT -- ARGV...``.

Joins ``ROOT/system`` in every cgroup hierarchy, then execs ARGV, so the command and all it
forks (shims, pods) are found through the node's cgroups. A separate, dependency-free
program rather than a ``preexec_fn``: Python code between fork and exec in a process with
threads (the test runner, the CLI's API clients) can deadlock on a lock another thread held
at fork time, leaving a child that never execs and prints nothing.
"""

import os
import sys
from collections.abc import Iterator


def cgroup_mounts() -> Iterator[str]:
    """Mount points of every cgroup (v1 and v2) hierarchy, from this process's mountinfo."""
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            if right.split()[:1] in (["cgroup"], ["cgroup2"]):
                yield left.split()[4]


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: cgexec.py CGROUP_ROOT -- COMMAND [ARG...]\n")
        return 2
    root, command = argv[0].strip("/"), argv[2:]
    pid = str(os.getpid())
    for mount in cgroup_mounts():
        try:
            with open(os.path.join(mount, root, "system", "cgroup.procs"), "w") as fh:
                fh.write(pid)
        except OSError:
            pass  # a hierarchy without the node's cgroup (or a controller that refuses)
    try:
        os.execvp(command[0], command)  # noqa: S606 - argv as given, no shell
    except OSError as err:
        sys.stderr.write(f"cgexec: cannot run {command[0]}: {err}\n")
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
