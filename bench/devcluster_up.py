"""Time for `cilium dev-cluster up` to bring every node Ready, with binaries cached.

Runs a 3-node cluster (target <= 30 s) and a 100-node cluster (time reported), each in a
fresh state directory, and tears both down. Prints JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def up_seconds(nodes: int) -> float:
    with tempfile.TemporaryDirectory(prefix="ciliumctl-bench-") as tmp:
        state = Path(tmp) / "state"
        cli = [sys.executable, "-m", "ciliumctl", "dev-cluster"]
        name = ["--name", f"bench{nodes}", "--state-dir", str(state)]
        start = time.perf_counter()
        subprocess.run(
            [*cli, "up", "--nodes", str(nodes), *name], check=True, stdout=subprocess.DEVNULL
        )
        elapsed = time.perf_counter() - start
        subprocess.run([*cli, "down", *name], check=True, stdout=subprocess.DEVNULL)
        return elapsed


def main() -> None:
    subprocess.run(
        [sys.executable, "-m", "ciliumctl", "dev-cluster", "build"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    three = up_seconds(3)
    hundred = up_seconds(100)
    print(
        json.dumps(
            {
                "benchmark": "devcluster_up",
                "nodes_3_s": round(three, 2),
                "nodes_3_target_s": 30,
                "nodes_3_ok": three <= 30,
                "nodes_100_s": round(hundred, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
