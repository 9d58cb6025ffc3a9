"""`cilium connectivity test`: deploy cilium-cli's test workloads, run its named tests as
real commands in the client and host-netns pods, validate flows from the agents' monitor
events, and report as cilium-cli does, saying why each failed action failed."""
