/* SPDX-License-Identifier: Apache-2.0 */
/* Per-endpoint programs, attached with tc clsact on the host side of the endpoint's veth:
 *   cil_from_container  tc ingress: packets the pod sends (its egress policy, service DNAT,
 *                       tunnel encapsulation);
 *   cil_to_container    tc egress: packets delivered to the pod (its ingress policy, reverse
 *                       NAT of service replies).
 *
 * Endpoint constants (-D): EP_ID, EP_IDENTITY, VXLAN_IFINDEX (load-time constants, see
 * LOAD_CONST), ENABLE_TUNNEL (0/1), TRACE_ALL (0/1: trace every packet instead of new flows
 * only), PIN_ROOT, EVENTS_FD.
 */
#include "lib/common.h"

#ifndef EP_ID
#error "EP_ID must be defined"
#endif
#ifndef EP_IDENTITY
#error "EP_IDENTITY must be defined"
#endif
#ifndef ENABLE_TUNNEL
#define ENABLE_TUNNEL 0
#endif
#ifndef VXLAN_IFINDEX
#define VXLAN_IFINDEX 0
#endif
#ifndef TRACE_ALL
#define TRACE_ALL 0
#endif

#include "lib/conntrack.h"
#include "lib/lb.h"

/* Policy lookup in Cilium's order (L3+L4, L4 only, L3 only, wildcard); deny wins. Returns 0
 * (allowed) or a drop reason; *match receives the match type of the verdict. */
static __always_inline int policy_check(u32 remote_id, u8 dir, struct pkt *p, u32 len, u8 *match)
{
	int idx = EP_ID;
	void *pmap = cilium_policy_v2.lookup(&idx);
	*match = MATCH_NONE;
	if (!pmap)
		return DROP_POLICY;

	/* ICMPv6 neighbour discovery and multicast listener messages are never subject to
	 * policy. */
	if (p->proto == IPPROTO_ICMPV6 &&
	    ((p->icmp_type >= 133 && p->icmp_type <= 137) ||
	     (p->icmp_type >= 130 && p->icmp_type <= 132) || p->icmp_type == 143))
		return 0;

	struct policy_key k = {};
	k.prefixlen = POLICY_FULL_PREFIX;
	k.egress = dir;
	k.protocol = p->proto;
	if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6)
		k.dport = bpf_htons(p->icmp_type);
	else
		k.dport = p->dport;

	k.identity = remote_id;
	struct policy_entry *l3 = bpf_map_lookup_elem(pmap, &k);
	k.identity = 0;
	struct policy_entry *any = bpf_map_lookup_elem(pmap, &k);

	if ((l3 && l3->deny) || (any && any->deny)) {
		*match = (l3 && l3->deny) ? ((l3->flags & POLICY_FLAG_L4) ? MATCH_L3_L4 : MATCH_L3_ONLY)
					  : ((any->flags & POLICY_FLAG_L4) ? MATCH_L4_ONLY : MATCH_ALL);
		return DROP_POLICY_DENY;
	}
	struct policy_entry *hit = 0;
	if (l3 && (l3->flags & POLICY_FLAG_L4)) {
		hit = l3;
		*match = MATCH_L3_L4;
	} else if (any && (any->flags & POLICY_FLAG_L4)) {
		hit = any;
		*match = MATCH_L4_ONLY;
	} else if (l3) {
		hit = l3;
		*match = MATCH_L3_ONLY;
	} else if (any) {
		hit = any;
		*match = MATCH_ALL;
	}
	if (hit) {
		__sync_fetch_and_add(&hit->packets, 1);
		__sync_fetch_and_add(&hit->bytes, len);
		return 0;
	}

	struct policy_key ck = {};
	ck.prefixlen = POLICY_FULL_PREFIX;
	ck.identity = POLICY_CONFIG_ID;
	ck.egress = POLICY_CONFIG_DIR;
	struct policy_entry *cfg = bpf_map_lookup_elem(pmap, &ck);
	u8 bit = dir == DIR_EGRESS ? POLICY_EGRESS_ENFORCED : POLICY_INGRESS_ENFORCED;
	if (cfg && (cfg->flags & bit))
		return DROP_POLICY;
	return 0;
}

static __always_inline int drop(struct __sk_buff *skb, struct pkt *p, u8 reason, u8 dir,
				u32 src_id, u32 dst_id)
{
	emit(skb, p, EVENT_DROP, reason, dir, 0, 1, src_id, dst_id, EP_ID);
	count(reason, dir == DIR_EGRESS ? METRIC_EGRESS : METRIC_INGRESS, skb->len);
	return TC_ACT_SHOT;
}

int cil_from_container(struct __sk_buff *skb)
{
	struct pkt p = {};
	int ret = parse(skb, &p);
	if (ret == 1)
		return TC_ACT_OK;
	if (ret)
		return drop(skb, &p, ret, DIR_EGRESS, EP_IDENTITY, 0);

	u16 rev_nat = 0;
	ret = lb4_xlate(skb, &p, &rev_nat);
	if (ret)
		return drop(skb, &p, ret, DIR_EGRESS, EP_IDENTITY, 0);

	__be32 tunnel = 0;
	u32 dst_id = 0;
	struct ct_result ct = {};
	ct_lookup(&p, DIR_EGRESS, skb->len, &ct);
	/* The ipcache is needed for a new flow's policy, and in tunnel mode for every packet. */
	if (ENABLE_TUNNEL || ct.status == CT_NEW)
		dst_id = ipcache_identity(p.family, p.daddr, &tunnel);
	if (ct.status == CT_NEW) {
		u8 match;
		ret = policy_check(dst_id, DIR_EGRESS, &p, skb->len, &match);
		emit(skb, &p, EVENT_POLICY_VERDICT, ret, DIR_EGRESS, match, ret ? 1 : 0, EP_IDENTITY,
		     dst_id, EP_ID);
		if (ret)
			return drop(skb, &p, ret, DIR_EGRESS, EP_IDENTITY, dst_id);
		if (ct_create(&p, DIR_EGRESS, skb->len, EP_IDENTITY, rev_nat, 0) < 0)
			return drop(skb, &p, DROP_CT_CREATE_FAILED, DIR_EGRESS, EP_IDENTITY, dst_id);
	}
	count(0, METRIC_EGRESS, skb->len);

#if ENABLE_TUNNEL
	if (tunnel) {
		struct bpf_tunnel_key tk = {};
		tk.remote_ipv4 = bpf_ntohl(tunnel);
		tk.tunnel_id = EP_IDENTITY;
		tk.tunnel_ttl = 64;
		if (TRACE_ALL || ct.status == CT_NEW)
			emit(skb, &p, EVENT_TRACE, TRACE_TO_OVERLAY, DIR_EGRESS, 0, 0, EP_IDENTITY,
			     dst_id, EP_ID);
		if (bpf_skb_set_tunnel_key(skb, &tk, sizeof(tk), BPF_F_ZERO_CSUM_TX) < 0)
			return drop(skb, &p, DROP_WRITE_ERROR, DIR_EGRESS, EP_IDENTITY, dst_id);
		return bpf_redirect(VXLAN_IFINDEX, 0);
	}
#endif
	if (TRACE_ALL || ct.status == CT_NEW)
		emit(skb, &p, EVENT_TRACE, TRACE_FROM_LXC, DIR_EGRESS, 0, 0, EP_IDENTITY, dst_id,
		     EP_ID);
	return TC_ACT_OK;
}

int cil_to_container(struct __sk_buff *skb)
{
	struct pkt p = {};
	int ret = parse(skb, &p);
	if (ret == 1)
		return TC_ACT_OK;
	if (ret)
		return drop(skb, &p, ret, DIR_INGRESS, 0, EP_IDENTITY);

	u32 src_id = 0;
	u32 mark = skb->mark;
	if ((mark & MARK_MAGIC_MASK) == MARK_MAGIC_IDENTITY) {
		src_id = ((mark >> 16) & 0xffff) | ((mark & 0xff) << 16);
		skb->mark = 0;
	}

	struct ct_result ct = {};
	ct_lookup(&p, DIR_INGRESS, skb->len, &ct);
	if (ct.status == CT_NEW) {
		/* The source identity: from the tunnel key, else from the ipcache. */
		if (!src_id)
			src_id = ipcache_identity(p.family, p.saddr, 0);
		u8 match;
		ret = policy_check(src_id, DIR_INGRESS, &p, skb->len, &match);
		emit(skb, &p, EVENT_POLICY_VERDICT, ret, DIR_INGRESS, match, ret ? 1 : 0, src_id,
		     EP_IDENTITY, EP_ID);
		if (ret)
			return drop(skb, &p, ret, DIR_INGRESS, src_id, EP_IDENTITY);
		if (ct_create(&p, DIR_INGRESS, skb->len, src_id, 0, 0) < 0)
			return drop(skb, &p, DROP_CT_CREATE_FAILED, DIR_INGRESS, src_id, EP_IDENTITY);
	} else if (ct.status == CT_REPLY && ct.rev_nat_index && p.family == 4) {
		/* Reply of a service flow: restore the frontend as the source. */
		struct lb4_reverse_nat *rn = cilium_lb4_reverse_nat.lookup(&ct.rev_nat_index);
		if (rn) {
			ret = nat4(skb, &p, rn->address, rn->port, 1);
			if (ret)
				return drop(skb, &p, ret, DIR_INGRESS, src_id, EP_IDENTITY);
		}
	}
	count(0, METRIC_INGRESS, skb->len);
	if (TRACE_ALL || ct.status == CT_NEW)
		emit(skb, &p, EVENT_TRACE, TRACE_TO_LXC, DIR_INGRESS, 0, 0, src_id, EP_IDENTITY,
		     EP_ID);
	return TC_ACT_OK;
}
