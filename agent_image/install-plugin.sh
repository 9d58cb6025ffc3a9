#!/bin/sh
# install-cni-binaries init container: writes the CNI plugin onto the node's CNI bin path.
# The node runs it with its own python3 and none of this image's packages, so the plugin
# goes there as a self-contained zipapp (ciliumctl.cni.bundle), replaced atomically.
set -eu
dest=/host/opt/cni/bin
mkdir -p "$dest"
python3 -m ciliumctl.cni.bundle "$dest/cilium-cni"
echo "installed cilium-cni into $dest"
