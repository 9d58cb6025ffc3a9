"""ciliumctl: install, upgrade, validate, configure, troubleshoot and reconcile Cilium."""

__version__ = "0.1.0"
