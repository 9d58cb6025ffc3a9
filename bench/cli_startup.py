"""Start-up time of the CLI: median of 20 runs of `cilium --help` and `cilium version --client`.

Prints JSON with the medians, the targets (0.25 s and 0.20 s) and the ratio of each to the
interpreter's own start-up (`python -c pass`).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 20


def median_seconds(argv: list[str]) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    cilium = shutil.which("cilium") or str(Path(sys.executable).parent / "cilium")
    subprocess.run([cilium, "--help"], capture_output=True, check=True)  # warm .pyc files
    baseline = median_seconds([sys.executable, "-c", "pass"])
    help_s = median_seconds([cilium, "--help"])
    version_s = median_seconds([cilium, "version", "--client"])
    print(
        json.dumps(
            {
                "benchmark": "cli_startup",
                "runs": RUNS,
                "python_pass_s": round(baseline, 4),
                "help_s": round(help_s, 4),
                "help_target_s": 0.25,
                "help_ok": help_s <= 0.25,
                "help_ratio_to_python": round(help_s / baseline, 2),
                "version_client_s": round(version_s, 4),
                "version_client_target_s": 0.20,
                "version_client_ok": version_s <= 0.20,
                "version_client_ratio_to_python": round(version_s / baseline, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
