#!/bin/sh
# clean-cilium-state init container: removes what an earlier agent left when cilium-config
# asks for it (clean-cilium-state / clean-cilium-bpf-state).
set -eu
if [ "${CILIUM_ALL_STATE:-false}" = "true" ]; then
  echo "removing all agent state (/var/run/cilium/state)"
  rm -rf /var/run/cilium/state
fi
if [ "${CILIUM_ALL_STATE:-false}" = "true" ] || [ "${CILIUM_BPF_STATE:-false}" = "true" ]; then
  echo "removing pinned BPF maps (/sys/fs/bpf/tc/globals/cilium_*)"
  rm -f /sys/fs/bpf/tc/globals/cilium_* 2>/dev/null || true
fi
