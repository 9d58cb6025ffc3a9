#!/usr/bin/env bash
# Install the Debian packages listed in scripts/host-packages.txt that are missing.
# Needs root (apt-get); without it, names the missing packages and the command to run.
set -euo pipefail
list="$(dirname "$0")/host-packages.txt"
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$')
missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "host-deps: missing Debian packages: ${missing[*]}" >&2
    echo "host-deps: fix: sudo apt-get install -y ${missing[*]}  (or run make as root)" >&2
    exit 1
fi
echo "host-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
