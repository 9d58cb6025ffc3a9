"""Install, upgrade, roll back and uninstall Cilium (Helm-driven)."""
