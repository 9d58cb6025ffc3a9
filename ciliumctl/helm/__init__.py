"""Helm adapter: the chart, values from the command line, and helm itself via pyhelm3."""

from ciliumctl.helm.client import Helm, HelmError, ReleaseNotFoundError

__all__ = ["Helm", "HelmError", "ReleaseNotFoundError"]
