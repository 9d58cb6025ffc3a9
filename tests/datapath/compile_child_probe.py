"""A fresh process for test_compile_child: programs one endpoint (or a broken template) with
an empty object cache and reports whether bcc was ever imported here, as JSON."""

from __future__ import annotations

import json
import sys

from ciliumctl.datapath import Datapath, loader, netlink
from ciliumctl.datapath.errors import DatapathError
from ciliumctl.datapath.model import EndpointSpec


def main() -> int:
    cmd, root, node_ns, pod_ns = sys.argv[1:]
    dp = Datapath(root, netns=node_ns, routing="native")
    out: dict[str, object] = {}
    if cmd == "prepare":  # what the agent does before its node takes pods
        dp.prepare_endpoint_programs()
        out["templates_in_memory"] = sorted(digest for _root, digest in loader._TEMPLATES)
        out["cache_dir"] = str(loader.object_cache_dir())
    elif cmd == "endpoint":
        pod_mac, host_mac = netlink.plumb_endpoint("lxc31", pod_ns, "10.231.0.1", None, node_ns)
        dp.create_endpoint(EndpointSpec(31, "lxc31", 1000, "10.231.0.1", None, pod_mac, host_mac))
        out["attached"] = netlink.attached_programs("lxc31", node_ns)
    else:  # a template clang rejects: the child's error reaches this process as raised there
        try:
            loader.load_from_template(
                "bpf_lxc.c",
                ("cil_from_container",),
                root,
                {"ENABLE_TUNNEL": "(", "TRACE_ALL": 0},
                {"EP_ID": 1, "EP_IDENTITY": 2},
                dp.maps["cilium_events"].fd,
            )
        except DatapathError as exc:
            out["error"] = [type(exc).__name__, exc.message]
    out["bcc_imported"] = "bcc" in sys.modules
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
