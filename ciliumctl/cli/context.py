"""Global options shared by every command (set once by the root callback)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ciliumctl.k8s import Client


@dataclass
class Settings:
    """Values of the global flags."""

    context: str | None = None
    namespace: str = "kube-system"
    kubeconfig: str | None = None
    helm_release_name: str = "cilium"
    debug: bool = False

    def client(self) -> Client:
        """A Kubernetes client for the selected kubeconfig and context."""
        from ciliumctl.k8s import Client

        return Client(self.kubeconfig, self.context)


#: The settings of the running invocation (one per process).
SETTINGS = Settings()
