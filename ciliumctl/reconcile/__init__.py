"""GitOps reconciler: keep Cilium (chart, values, node configs, policies) as a directory says.

``source`` loads and validates the desired-state directory, ``plan`` compares it with the
cluster through server-side-apply dry runs, ``apply`` converges the cluster in stages with
an inventory for pruning, ``watch`` loops with drift detection and metrics, and ``export``
writes the same desired state for Argo CD or Flux.
"""
