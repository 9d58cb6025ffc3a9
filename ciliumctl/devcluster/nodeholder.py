"""The process that holds a real node's mount and UTS namespaces.

Started as ``nsenter --net=<node netns> unshare --mount --uts --propagation slave --fork
python -m ciliumctl.devcluster.nodeholder SPEC``: it names the host, mounts a tmpfs over
containerd's image store, bind-mounts the node's own directories over the paths kubelet,
containerd and a CNI's DaemonSet use, mounts a fresh sysfs (so ``/sys/class/net`` shows the
node's interfaces) and a bpffs of its own, makes every mount shared (Bidirectional hostPath
volumes need it), writes its pid to the ready file and sleeps. containerd and kubelet then
join it with ``nsenter -t PID --mount --uts --net``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def setup(spec: dict[str, object]) -> None:
    """Apply the node's hostname and mounts (in the current, fresh mount namespace)."""
    socket.sethostname(str(spec["hostname"]))
    tmpfs = spec.get("tmpfs") or []
    assert isinstance(tmpfs, list)
    for target in tmpfs:
        Path(str(target)).mkdir(parents=True, exist_ok=True)
        _mount("-t", "tmpfs", "-o", "mode=0711", "tmpfs", str(target))
    binds = spec["binds"]
    assert isinstance(binds, dict)
    for target, source in binds.items():
        dst = Path(target)
        if Path(source).is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        elif not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.touch()
        _mount("--bind", str(source), target)
    stage = Path(str(spec["stage"]))
    stage.mkdir(parents=True, exist_ok=True)
    _mount("--rbind", "/sys/fs/cgroup", str(stage))
    _mount("-t", "sysfs", "sysfs", "/sys")
    _mount("--move", str(stage), "/sys/fs/cgroup")
    _mount("-t", "bpf", "bpffs", "/sys/fs/bpf")
    _mount("--make-rshared", "/")


def main(argv: list[str]) -> int:
    """Set the node up from the JSON spec at ``argv[0]``, report ready, and hold."""
    spec = json.loads(Path(argv[0]).read_text())
    ready = Path(spec["ready"])
    try:
        setup(spec)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        ready.with_suffix(".failed").write_text(f"{exc}: {detail}")
        return 1
    ready.write_text(str(os.getpid()))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
