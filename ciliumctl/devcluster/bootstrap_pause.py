"""A stop-gap sandbox (pause) image for real nodes, until the image builder
(:mod:`ciliumctl.devcluster.images`) publishes ``pause`` to the cluster's registry.

A static binary that blocks and reaps children, in a one-layer OCI archive that
``ctr images import`` loads into a node's containerd under the sandbox image name.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ciliumctl.devcluster import binaries
from ciliumctl.devcluster.cluster import DevClusterError

_SOURCE = r"""
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGINT, quit); signal(SIGTERM, quit); signal(SIGCHLD, reap);
    for (;;) pause();
}
"""


def _blob(layout: dict[str, bytes], data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    layout[f"blobs/sha256/{digest[7:]}"] = data
    return digest, len(data)


def archive(ref: str) -> Path:
    """The OCI archive of the pause image named ``ref`` (built once, cached)."""
    out = (
        binaries.cache_dir()
        / "bootstrap-pause"
        / (hashlib.sha256(ref.encode()).hexdigest()[:12] + ".tar")
    )
    if out.exists():
        return out
    cc = shutil.which("clang") or shutil.which("cc")
    if cc is None:
        raise DevClusterError("no C compiler for the pause image", "run `make host-deps` (clang)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "pause.c", Path(tmp) / "pause"
        src.write_text(_SOURCE)
        subprocess.run([cc, "-static", "-Os", "-o", str(exe), str(src)], check=True)
        layer_buf = io.BytesIO()
        with tarfile.open(fileobj=layer_buf, mode="w") as layer:
            info = tarfile.TarInfo("pause")
            info.mode, info.size = 0o755, exe.stat().st_size
            with open(exe, "rb") as fh:
                layer.addfile(info, fh)
        files: dict[str, bytes] = {}
        layer_digest, layer_size = _blob(files, layer_buf.getvalue())
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"]},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }
        cfg_digest, cfg_size = _blob(files, json.dumps(config).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": cfg_digest,
                "size": cfg_size,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": layer_size,
                }
            ],
        }
        man_digest, man_size = _blob(files, json.dumps(manifest).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": man_digest,
                    "size": man_size,
                    "annotations": {"io.containerd.image.name": ref},
                }
            ],
        }
        files["index.json"] = json.dumps(index).encode()
        files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
        tmp_out = out.with_suffix(".tmp")
        with tarfile.open(tmp_out, "w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        tmp_out.replace(out)
    return out


def import_into(socket: Path, archive_path: Path) -> None:
    """Load the archive into the containerd at ``socket`` (namespace k8s.io)."""
    proc = subprocess.run(
        ["ctr", "--address", str(socket), "-n", "k8s.io", "images", "import", str(archive_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise DevClusterError(
            f"importing the pause image into {socket} failed: {proc.stderr.strip()}",
            "see the node's containerd log",
        )
