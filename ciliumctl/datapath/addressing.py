"""The endpoints' link-local next hops: constants the CNI plugin needs without loading the
netlink layer."""

from __future__ import annotations

GATEWAY4 = "169.254.1.1"  # the endpoints' next hop: answered by the host veth's static entry
GATEWAY6 = "fe80::1"
