"""cilium-dbg and cilium-bugtool: clients of the agent's API (and build-config)."""
