/* SPDX-License-Identifier: Apache-2.0 */
/* Connection tracking shared by the endpoint and host programs: one entry per flow and
 * direction, lifetimes as Cilium's defaults, a new flow is checked against policy once. */
#ifndef CILIUMCTL_CONNTRACK_H
#define CILIUMCTL_CONNTRACK_H

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

#endif
