"""The agent's only door to the kernel: eBPF programs and maps (bcc), netlink (pyroute2).

Nothing here imports Kubernetes; :mod:`ciliumctl.datapath.model` is the data the agent hands
over.
"""
