/* SPDX-License-Identifier: Apache-2.0 */
/* Service load balancing (IPv4): frontend -> backend per flow in conntrack, DNAT and the
 * reverse NAT of replies, with checksum fixes. */
#ifndef CILIUMCTL_LB_H
#define CILIUMCTL_LB_H

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

#endif
