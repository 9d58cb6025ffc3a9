"""Benchmark of the dev cluster's image builds; prints JSON.

For each image (default all, or the names given): a cold build into an empty cache
(``--cold``; mmdebstrap, wheel, layers, layout from scratch), then a build with the cache
warm (the content hash matches: nothing is rebuilt), the compressed size, the layer count,
and whether the cold and the cached build have the same digest. Runs under ``nice``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ciliumctl.devcluster import binaries, images  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--cold", action="store_true", help="also build in an empty cache")
    opts = parser.parse_args()
    os.nice(10)
    shared_bin = binaries.bin_dir()
    results = []
    for name in opts.names or images.names():
        row: dict[str, object] = {"image": name}
        started = time.monotonic()
        warm = images.build(name)
        row["warm_cache_s"] = round(time.monotonic() - started, 2)
        row["was_cached"] = warm.cached
        started = time.monotonic()
        again = images.build(name)
        row["cached_s"] = round(time.monotonic() - started, 2)
        assert again.cached and again.digest == warm.digest
        row |= {"digest": warm.digest, "size_mb": round(warm.size / 1e6, 1)}
        raw = (warm.layout / "blobs" / warm.digest.replace(":", "/")).read_bytes()
        row["layers"] = len(json.loads(raw)["layers"])
        if opts.cold:
            with tempfile.TemporaryDirectory(prefix="images-bench-") as tmp:
                os.environ["CILIUMCTL_CACHE_DIR"] = tmp
                # the kube-proxy artifact comes from the shared binary cache
                if name == "kube-proxy":
                    Path(tmp, "bin").symlink_to(shared_bin)
                started = time.monotonic()
                cold = images.build(name)
                row["cold_s"] = round(time.monotonic() - started, 2)
                row["cold_digest_equal"] = cold.digest == warm.digest
                del os.environ["CILIUMCTL_CACHE_DIR"]
        results.append(row)
        print(json.dumps(row), file=sys.stderr)
    print(json.dumps({"benchmark": "images", "results": results}, indent=2))


if __name__ == "__main__":
    main()
