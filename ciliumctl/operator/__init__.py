"""cilium-operator: leader election, CRD registration, cluster-pool IPAM and garbage collection."""
