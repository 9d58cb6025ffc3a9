"""`cilium sysdump`: a redacted, streaming troubleshooting archive of the cluster and Cilium."""
