#!/bin/sh
# install-cni-binaries init container: copies the CNI plugin onto the node's CNI bin path.
set -eu
dest=/host/opt/cni/bin
mkdir -p "$dest"
cp /usr/local/bin/cilium-cni "$dest/.cilium-cni.new"
chmod 0755 "$dest/.cilium-cni.new"
mv -f "$dest/.cilium-cni.new" "$dest/cilium-cni"
echo "installed cilium-cni into $dest"
