"""Text renderings of the agent's API answers, in upstream cilium-dbg's layouts."""

from __future__ import annotations

import json
from typing import Any


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A left-aligned table, columns separated by at least three spaces."""
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def _line(name: str, value: str) -> str:
    return f"{name + ':':<25}{value}\n"


def _masquerading(masq: dict[str, Any]) -> str:
    """Upstream's line: Disabled, or the mode with the families really masqueraded (and why
    one is not yet, when the agent says)."""
    if not masq.get("enabled"):
        return "Disabled"
    ipv4 = (masq.get("enabledProtocols") or {}).get("ipv4")
    line = f"{masq.get('mode', '')} [IPv4: {'Enabled' if ipv4 else 'Disabled'}, IPv6: Disabled]"
    return line + (f"   {masq['msg']}" if masq.get("msg") else "")


def status(data: dict[str, Any], verbose: bool = False) -> str:
    """``cilium-dbg status`` (sections as upstream prints them)."""
    k8s = data.get("kubernetes") or {}
    kpr = data.get("kube-proxy-replacement") or {}
    routing = data.get("routing") or {}
    masq = data.get("masquerading") or {}
    ipam = data.get("ipam") or {}
    controllers = data.get("controllers") or []
    failing = [c for c in controllers if (c.get("status") or {}).get("consecutive-failure-count")]
    cilium = data.get("cilium") or {}
    proxy = data.get("proxy") or {}
    hubble = data.get("hubble") or {}
    health = (data.get("cluster") or {}).get("ciliumHealth") or {}
    policy = data.get("policy") or {}
    out = _line("KVStore", "Disabled")
    out += _line("Kubernetes", f"{k8s.get('state', '?')}   {k8s.get('msg', '')}".rstrip())
    out += _line("Kubernetes APIs", json.dumps(k8s.get("k8s-api-versions") or []))
    out += _line("KubeProxyReplacement", str(kpr.get("mode", "False")))
    out += _line("Host firewall", "Disabled")
    out += _line("Cilium", f"{cilium.get('state', '?')}   {data.get('version', '')}  "
                 f"{cilium.get('msg', '')}".rstrip())  # fmt: skip
    out += _line("IPAM", "IPv4: " + ", ".join(ipam.get("ipv4") or ["no pool"]))
    tunnel = routing.get("tunnel-protocol")
    net = routing.get("inter-host-routing-mode", "")
    out += _line(
        "Routing",
        f"Network: {net}{f' [{tunnel.lower()}]' if tunnel else ''}   "
        f"Host: {(data.get('host-routing') or {}).get('mode', 'Legacy')}",
    )
    out += _line("Masquerading", _masquerading(masq))
    out += _line(
        "Controller Status", f"{len(controllers) - len(failing)}/{len(controllers)} healthy"
    )
    if verbose or failing:
        for ctl in controllers if verbose else failing:
            st = ctl.get("status") or {}
            out += f"  {ctl['name']:<55} {st.get('last-success-timestamp') or 'never'}   "
            out += f"{st.get('last-failure-msg') or 'no error'}   {st.get('success-count')}/"
            out += f"{st.get('failure-count')}\n"
    out += _line("Proxy Status", f"{proxy.get('state', 'Disabled')}   {proxy.get('msg', '')}")
    out += _line("Global Identity Range", "min 256, max 65535")
    out += _line("Hubble", f"{hubble.get('state', 'Disabled')}   {hubble.get('msg', '')}")
    out += _line("Encryption", (data.get("encryption") or {}).get("mode", "Disabled"))
    out += _line("Cluster health", f"{health.get('state', '?')}   {health.get('msg', '')}")
    not_enforced = policy.get("not-enforced") or []
    rejected = policy.get("rejected") or []
    summary = "all enforced" if not (not_enforced or rejected) else (
        f"{len(not_enforced)} part(s) not enforced, {len(rejected)} policy error(s)"
    )  # fmt: skip
    out += _line("Policy", summary)
    for note in not_enforced if verbose else not_enforced[:5]:
        out += f"  not enforced: {note}\n"
    for note in rejected:
        out += f"  rejected: {note}\n"
    return out


def brief(data: dict[str, Any]) -> str:
    """``status --brief``: OK, or the first problem."""
    for section in ("cilium", "kubernetes"):
        state = (data.get(section) or {}).get("state")
        if state not in ("Ok", "Disabled"):
            return f"{section}: {state}: {(data.get(section) or {}).get('msg', '')}\n"
    return "OK\n"


def endpoints(items: list[dict[str, Any]]) -> str:
    """``cilium-dbg endpoint list``."""
    rows = []
    for ep in items:
        st = ep.get("status") or {}
        pol = (st.get("policy") or {}).get("realized") or {}
        enabled = pol.get("policy-enabled", "none")
        ident = st.get("identity") or {}
        addr = (st.get("networking") or {}).get("addressing") or [{}]
        rows.append(
            [
                ep["id"],
                "Enabled" if enabled in ("ingress", "both") else "Disabled",
                "Enabled" if enabled in ("egress", "both") else "Disabled",
                ident.get("id", ""),
                " ".join(ident.get("labels") or []),
                (addr[0] if addr else {}).get("ipv4", ""),
                st.get("state", ""),
            ]
        )
    return table(
        [
            "ENDPOINT",
            "POLICY (ingress) ENFORCEMENT",
            "POLICY (egress) ENFORCEMENT",
            "IDENTITY",
            "LABELS (source:key[=value])",
            "IPv4",
            "STATUS",
        ],
        rows,
    )


def identities(items: list[dict[str, Any]]) -> str:
    """``cilium-dbg identity list``."""
    out = f"{'ID':<10}LABELS\n"
    for item in items:
        labels = item.get("labels") or [""]
        out += f"{item['id']:<10}{labels[0]}\n"
        for extra in labels[1:]:
            out += f"{'':<10}{extra}\n"
    return out


def services(items: list[dict[str, Any]]) -> str:
    """``cilium-dbg service list``."""
    rows = []
    for svc in items:
        spec = svc.get("spec") or {}
        fe = spec.get("frontend-address") or {}
        backends = spec.get("backend-addresses") or []
        first = True
        for index, be in enumerate(backends or [{}], start=1):
            backend = (
                f"{index} => {be['ip']}:{be['port']}/{fe.get('protocol')} (active)" if be else ""
            )
            rows.append(
                [
                    spec.get("id") if first else "",
                    f"{fe.get('ip')}:{fe.get('port')}/{fe.get('protocol')}" if first else "",
                    (spec.get("flags") or {}).get("type", "") if first else "",
                    backend,
                ]
            )
            first = False
    return table(["ID", "Frontend", "Service Type", "Backend"], rows)


def kv_table(headers: list[str], items: list[dict[str, Any]], keys: list[str]) -> str:
    """A table of the given keys of each item."""
    return table(headers, [[item.get(k, "") for k in keys] for item in items])


def event(item: dict[str, Any]) -> str:
    """One monitor event in upstream's one-line form."""
    kind = item.get("type", "event")
    src, dst = (
        item.get("src-label", item.get("src-identity")),
        item.get("dst-label", item.get("dst-identity")),
    )
    flow = f"{item.get('src', '?')} -> {item.get('dst', '?')} {item.get('proto', '')}".rstrip()
    if kind == "drop":
        return (
            f"xx drop ({item.get('reason', 'unknown')}) flow {item.get('flow', '0x0')} to endpoint "
            f"{item.get('endpoint', 0)}, ifindex {item.get('ifindex', 0)}, identity {src}->{dst}: "
            f"{flow}"
        )
    if kind == "policy-verdict":
        verdict = item.get("verdict", "")
        return (
            f"Policy verdict log: flow {item.get('flow', '0x0')}, local EP ID "
            f"{item.get('endpoint', 0)}, remote ID {item.get('remote-identity', src)}, proto "
            f"{item.get('proto', '')}, {str(item.get('direction', '')).lower()}, action {verdict}, "
            f"match {item.get('match', 'none')}, {flow}"
        )
    return (
        f"-> {item.get('observation-point', 'endpoint')} {item.get('endpoint', 0)} flow "
        f"{item.get('flow', '0x0')} identity {src}->{dst} state {item.get('state', 'new')}: {flow}"
    )
