"""Benchmark of image verification on a real local registry; prints JSON.

Starts the distribution registry on 127.0.0.1, pushes the six chart images of a release,
signs them with the real cosign (key) and with the test Sigstore (keyless, legacy format),
then times, as a user runs them (a new `cilium` process each time, start-up included):

* `cilium verify image` for one image, key-based and keyless (median of 7 runs);
* `cilium verify images --version` for the six images with 1 worker and with 8.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ciliumctl.devcluster import binaries  # noqa: E402
from ciliumctl.verify import oci  # noqa: E402
from ciliumctl.verify.images import CHART_IMAGES  # noqa: E402
from tests.verify.conftest import cosign_env  # noqa: E402
from tests.verify.registry import Registry, push_image  # noqa: E402
from tests.verify.sigstore_fixtures import Claims, TestSigstore  # noqa: E402
from tests.verify.test_verify_keyless import attach_legacy, cosign_payload  # noqa: E402

VERSION = "1.18.4"


def cilium(*args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ciliumctl", *args], capture_output=True, text=True, timeout=120
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"cilium {' '.join(args)} failed: {proc.stderr}")
    return elapsed


def median(args: list[str], runs: int) -> float:
    return round(statistics.median(cilium(*args) for _ in range(runs)), 3)


def main() -> None:
    tools = binaries.ensure(["registry", "cosign"])
    work = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    registry = Registry(tools["registry"], work / "registry").start()
    try:
        client = oci.RegistryClient(insecure=True)
        env = cosign_env()
        subprocess.run(
            [str(tools["cosign"]), "generate-key-pair", "--output-key-prefix", "bench"],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
        )
        sigstore = TestSigstore(work / "sigstore")
        prefix = f"{registry.host}/bench"
        overrides: list[str] = []
        first = ""
        for component, (_p, _t, repo, tag, _gh) in CHART_IMAGES.items():
            name = repo.split("/", 1)[1] + ("-generic" if component == "operator-generic" else "")
            ref = oci.Reference.parse(f"{prefix}/{name}:{tag or 'v' + VERSION}")
            digest = push_image(client, ref)
            pinned = f"{ref.name}@{digest}"
            subprocess.run(
                [
                    str(tools["cosign"]),
                    "sign",
                    "--key",
                    str(work / "bench.key"),
                    "--tlog-upload=false",
                    "--allow-http-registry",
                    pinned,
                ],
                env=env,
                check=True,
                capture_output=True,
            )
            gh = _gh
            claims = (
                Claims.cilium_release(f"v{VERSION}")
                if gh == "cilium/cilium"
                else Claims(
                    f"https://github.com/{gh}/.github/workflows/release.yaml@refs/tags/{tag}",
                    github={"repository": gh},
                )
            )
            signed = sigstore.sign_payload(cosign_payload(tools["cosign"], pinned), claims)
            attach_legacy(tools["cosign"], pinned, signed, work / "att" / component)
            if component.startswith("hubble-ui"):
                overrides += ["--image", f"{component}={ref}"]
            first = first or str(ref)
        key = ["--insecure", "--key", str(work / "bench.pub")]
        keyless = ["--insecure", "--trust-root", str(sigstore.trust_root)]
        images = ["verify", "images", "--version", VERSION, "--registry", prefix, *overrides]
        result = {
            "images": len(CHART_IMAGES),
            "verify_image_key_s": median(["verify", "image", *key, first], 7),
            "verify_image_keyless_s": median(["verify", "image", *keyless, first], 7),
            "verify_images_key_1_worker_s": median([*images, *key, "--workers", "1"], 3),
            "verify_images_key_8_workers_s": median([*images, *key, "--workers", "8"], 3),
            "verify_images_keyless_1_worker_s": median([*images, *keyless, "--workers", "1"], 3),
            "verify_images_keyless_8_workers_s": median([*images, *keyless, "--workers", "8"], 3),
            "cli_noop_s": round(
                statistics.median(_timed([sys.executable, "-c", "pass"]) for _ in range(7)),
                3,
            ),
        }
        print(json.dumps(result, indent=2))
    finally:
        registry.stop()


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
