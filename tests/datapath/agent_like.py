"""An agent-like process for the restart test: it programs the datapath and is then killed;
a second one picks up the pinned maps while the programs keep forwarding.

start ROOT NODE_NS SPECS_JSON   create endpoints (compile + attach) and policy, print "ready",
                                then wait to be killed
resume ROOT NODE_NS SPECS_JSON  open the pinned maps (no compile), widen the server's policy
                                to ports 80-81, print "resumed <map entries>" and exit
"""

from __future__ import annotations

import json
import sys
import time

from ciliumctl.datapath import Datapath
from ciliumctl.datapath.model import (
    Direction,
    EndpointPolicy,
    EndpointSpec,
    IPCacheEntry,
    PolicyEntry,
    Protocol,
)


def main() -> int:
    cmd, root, node_ns, raw = sys.argv[1:]
    specs = [EndpointSpec(**s) for s in json.loads(raw)]
    client, server = specs
    dp = Datapath(root, netns=node_ns, routing="native")
    if cmd == "start":
        for s in specs:
            dp.upsert_ipcache(IPCacheEntry(s.ipv4 or "", s.identity))
        allow80 = PolicyEntry(client.identity, Direction.INGRESS, Protocol.TCP, 80, 80)
        dp.create_endpoint(client)
        dp.create_endpoint(server, EndpointPolicy((allow80,), ingress_enforced=True))
        print("ready", flush=True)
        time.sleep(600)
        return 0
    ports = PolicyEntry(client.identity, Direction.INGRESS, Protocol.TCP, 80, 81)
    n = dp.replace_policy(server.id, EndpointPolicy((ports,), ingress_enforced=True))
    print(f"resumed {n} {len(dp.dump_map('cilium_lxc'))}", flush=True)
    dp.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
