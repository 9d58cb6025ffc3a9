"""cilium-agent: identities, endpoints, policy -> map entries, services, IPAM, API, metrics.

The kernel is reached only through :mod:`ciliumctl.datapath` (behind the
:class:`ciliumctl.agent.datapath.Datapath` protocol) and the API server only through
:mod:`ciliumctl.k8s`.
"""
