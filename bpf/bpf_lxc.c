/* SPDX-License-Identifier: Apache-2.0 */
/* Per-endpoint programs, attached with tc clsact on the host side of the endpoint's veth:
 *   cil_from_container  tc ingress: packets the pod sends (its egress policy, service DNAT,
 *                       tunnel encapsulation);
 *   cil_to_container    tc egress: packets delivered to the pod (its ingress policy, reverse
 *                       NAT of service replies).
 *
 * Endpoint constants (-D): EP_ID, EP_IDENTITY, ENABLE_TUNNEL (0/1), VXLAN_IFINDEX,
 * TRACE_ALL (0/1: trace every packet instead of new flows only), PIN_ROOT.
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

#define IP4_CSUM_OFF (ETH_HLEN + 10)
#define IP4_SRC_OFF (ETH_HLEN + 12)
#define IP4_DST_OFF (ETH_HLEN + 16)

enum ct_status { CT_NEW, CT_ESTABLISHED, CT_REPLY };

struct ct_result {
	enum ct_status status;
	u16 rev_nat_index;
	u32 src_identity;
};

static __always_inline u64 now_sec(void)
{
	return bpf_ktime_get_ns() / 1000000000ULL;
}

static __always_inline void ct_refresh(struct ct_entry *e, struct pkt *p, u32 len, int reply)
{
	u64 lifetime = CT_LIFETIME_NONTCP;
	if (p->proto == IPPROTO_TCP) {
		if (p->tcp_flags & (TCP_FIN | TCP_RST))
			e->flags |= CT_F_CLOSING;
		if (e->flags & CT_F_CLOSING)
			lifetime = CT_CLOSE_TIMEOUT;
		else if (!(e->flags & CT_F_SEEN_REPLY) && !reply)
			lifetime = CT_SYN_TIMEOUT;
		else
			lifetime = CT_LIFETIME_TCP;
	}
	if (reply)
		e->flags |= CT_F_SEEN_REPLY;
	e->expires = now_sec() + lifetime;
	__sync_fetch_and_add(&e->packets, 1);
	__sync_fetch_and_add(&e->bytes, len);
}

static __always_inline void ct4_fill(struct ct4_key *k, struct pkt *p, u8 dir, int reverse)
{
	if (reverse) {
		__builtin_memcpy(&k->saddr, p->daddr, 4);
		__builtin_memcpy(&k->daddr, p->saddr, 4);
		k->sport = p->dport;
		k->dport = p->sport;
	} else {
		__builtin_memcpy(&k->saddr, p->saddr, 4);
		__builtin_memcpy(&k->daddr, p->daddr, 4);
		k->sport = p->sport;
		k->dport = p->dport;
	}
	k->proto = p->proto;
	k->dir = dir;
}

static __always_inline void ct6_fill(struct ct6_key *k, struct pkt *p, u8 dir, int reverse)
{
	if (reverse) {
		__builtin_memcpy(k->saddr, p->daddr, 16);
		__builtin_memcpy(k->daddr, p->saddr, 16);
		k->sport = p->dport;
		k->dport = p->sport;
	} else {
		__builtin_memcpy(k->saddr, p->saddr, 16);
		__builtin_memcpy(k->daddr, p->daddr, 16);
		k->sport = p->sport;
		k->dport = p->dport;
	}
	k->proto = p->proto;
	k->dir = dir;
}

static __always_inline struct ct_entry *ct_find(struct pkt *p, u8 dir, int reverse)
{
	if (p->family == 4) {
		struct ct4_key k = {};
		ct4_fill(&k, p, dir, reverse);
		return cilium_ct4_global.lookup(&k);
	}
	struct ct6_key k = {};
	ct6_fill(&k, p, dir, reverse);
	return cilium_ct6_global.lookup(&k);
}

/* Established in this direction, a reply to a flow of the other direction, or new. */
static __always_inline void ct_lookup(struct pkt *p, u8 dir, u32 len, struct ct_result *r)
{
	struct ct_entry *e = ct_find(p, dir, 0);
	if (e) {
		ct_refresh(e, p, len, 0);
		r->status = CT_ESTABLISHED;
		r->rev_nat_index = e->rev_nat_index;
		return;
	}
	e = ct_find(p, dir == DIR_EGRESS ? DIR_INGRESS : DIR_EGRESS, 1);
	if (e) {
		ct_refresh(e, p, len, 1);
		r->status = CT_REPLY;
		r->rev_nat_index = e->rev_nat_index;
		return;
	}
	r->status = CT_NEW;
}

static __always_inline int ct_create(struct pkt *p, u8 dir, u32 len, u32 src_id, u16 rev_nat,
				     u32 backend_id)
{
	struct ct_entry e = {};
	e.src_identity = src_id;
	e.rev_nat_index = rev_nat;
	e.backend_id = backend_id;
	ct_refresh(&e, p, len, 0);
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & TCP_SYN))
		e.flags |= CT_F_SYN;
	if (p->family == 4) {
		struct ct4_key k = {};
		ct4_fill(&k, p, dir, 0);
		return cilium_ct4_global.update(&k, &e);
	}
	struct ct6_key k = {};
	ct6_fill(&k, p, dir, 0);
	return cilium_ct6_global.update(&k, &e);
}

/* Policy lookup in Cilium's order (L3+L4, L4 only, L3 only, wildcard); deny wins. Returns 0
 * (allowed) or a drop reason; *match receives the match type of the verdict. */
static __always_inline int policy_check(u32 remote_id, u8 dir, struct pkt *p, u32 len, u8 *match)
{
	int idx = EP_ID;
	void *pmap = cilium_policy_v2.lookup(&idx);
	*match = MATCH_NONE;
	if (!pmap)
		return DROP_POLICY;

	/* ICMPv6 neighbour discovery is never subject to policy. */
	if (p->proto == IPPROTO_ICMPV6 && p->icmp_type >= 133 && p->icmp_type <= 137)
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

/* IPv4 address/port rewrite with checksum fixes; which = 0 destination, 1 source. */
static __always_inline int nat4(struct __sk_buff *skb, struct pkt *p, __be32 addr, __be16 port,
				int source)
{
	__be32 old_addr;
	__be16 old_port;
	u32 addr_off = source ? IP4_SRC_OFF : IP4_DST_OFF;
	u32 port_off = p->l4_off + (source ? 0 : 2);
	u32 csum_off;
	u64 flags = BPF_F_PSEUDO_HDR;

	__builtin_memcpy(&old_addr, source ? p->saddr : p->daddr, 4);
	old_port = source ? p->sport : p->dport;
	if (p->proto == IPPROTO_TCP) {
		csum_off = p->l4_off + 16;
	} else if (p->proto == IPPROTO_UDP) {
		csum_off = p->l4_off + 6;
		flags |= BPF_F_MARK_MANGLED_0;
	} else {
		return DROP_CT_UNKNOWN_PROTO;
	}
	if (bpf_l4_csum_replace(skb, csum_off, old_addr, addr, flags | 4) < 0 ||
	    bpf_l4_csum_replace(skb, csum_off, old_port, port, (flags & ~BPF_F_PSEUDO_HDR) | 2) < 0 ||
	    bpf_l3_csum_replace(skb, IP4_CSUM_OFF, old_addr, addr, 4) < 0 ||
	    bpf_skb_store_bytes(skb, addr_off, &addr, 4, 0) < 0 ||
	    bpf_skb_store_bytes(skb, port_off, &port, 2, 0) < 0)
		return DROP_WRITE_ERROR;
	if (source) {
		__builtin_memcpy(p->saddr, &addr, 4);
		p->sport = port;
	} else {
		__builtin_memcpy(p->daddr, &addr, 4);
		p->dport = port;
	}
	return 0;
}

/* Service translation in the client's egress: frontend -> backend kept per flow in CT.
 * Returns 0 (no service or translated), or a drop reason; *rev_nat gets the service's index. */
static __always_inline int lb4_xlate(struct __sk_buff *skb, struct pkt *p, u16 *rev_nat)
{
	if (p->family != 4 || (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		return 0;
	struct lb4_key k = {};
	__builtin_memcpy(&k.address, p->daddr, 4);
	k.dport = p->dport;
	k.proto = p->proto;
	struct lb4_service *svc = cilium_lb4_services.lookup(&k);
	if (!svc)
		return 0;
	*rev_nat = svc->rev_nat_index;
	if (svc->count == 0)
		return DROP_NO_SERVICE;

	u32 backend_id = 0;
	struct ct4_key sk = {};
	ct4_fill(&sk, p, CT_SERVICE, 0);
	struct ct_entry *se = cilium_ct4_global.lookup(&sk);
	struct lb4_backend *be = 0;
	if (se) {
		backend_id = se->backend_id;
		be = cilium_lb4_backends.lookup(&backend_id);
	}
	if (!be) {
		/* New flow, or its backend is gone: pick a slot. */
		k.backend_slot = (bpf_get_prandom_u32() % svc->count) + 1;
		struct lb4_service *slot = cilium_lb4_services.lookup(&k);
		if (!slot)
			return DROP_NO_SERVICE;
		backend_id = slot->backend_id;
		be = cilium_lb4_backends.lookup(&backend_id);
		if (!be)
			return DROP_NO_SERVICE;
		struct ct_entry e = {};
		e.backend_id = backend_id;
		e.rev_nat_index = svc->rev_nat_index;
		ct_refresh(&e, p, skb->len, 0);
		if (cilium_ct4_global.update(&sk, &e) < 0)
			return DROP_CT_CREATE_FAILED;
	} else {
		ct_refresh(se, p, skb->len, 0);
	}
	return nat4(skb, p, be->address, be->port, 0);
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
