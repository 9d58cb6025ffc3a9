#!/bin/sh
# preStop hook: removes the agent's CNI configuration so no new pod is sent to a stopped agent.
set -eu
rm -f /host/etc/cni/net.d/05-cilium.conflist
