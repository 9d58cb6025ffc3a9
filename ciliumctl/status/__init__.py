"""Cilium's health as `cilium status` reports it."""
