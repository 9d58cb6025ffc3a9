"""Cilium's agent configuration: the cilium-config ConfigMap and agent restarts."""
