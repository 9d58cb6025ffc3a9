"""cilium-cni: the CNI plugin containerd runs for each pod; a client of the agent's API."""
