/* SPDX-License-Identifier: Apache-2.0 */
/* Programs of the node's external device (tc clsact), for NodePort clients outside the node:
 *   cil_from_netdev  tc ingress: a NodePort frontend is translated to a backend (kept per flow
 *                    in conntrack, direction CT_NODEPORT); the kernel then routes to it;
 *   cil_to_netdev    tc egress: the backend's replies get the frontend back as their source.
 * A backend on another node gets the packet with MARK_MAGIC_NODEPORT_SNAT, so the node
 * masquerades it (the agent's iptables rule) and the reply returns through this node, where
 * the kernel undoes the masquerade and cil_to_netdev the DNAT (externalTrafficPolicy
 * Cluster, upstream's SNAT mode).
 */
#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/lb.h"

#define CT_NODEPORT 3

static __always_inline int host_drop(struct __sk_buff *skb, struct pkt *p, u8 reason)
{
	emit(skb, p, EVENT_DROP, reason, DIR_INGRESS, 0, 1, WORLD_ID, 0, 0);
	count(reason, METRIC_INGRESS, skb->len);
	return TC_ACT_SHOT;
}

int cil_from_netdev(struct __sk_buff *skb)
{
	struct pkt p = {};
	if (parse(skb, &p))
		return TC_ACT_OK; /* the host's own traffic: never dropped here */
	u16 rev_nat = 0;
	int ret = lb4_xlate(skb, &p, &rev_nat);
	if (ret)
		return host_drop(skb, &p, ret);
	if (!rev_nat)
		return TC_ACT_OK;
	struct ct_entry *e = ct_find(&p, CT_NODEPORT, 0);
	if (e)
		ct_refresh(e, &p, skb->len, 0);
	else if (ct_create(&p, CT_NODEPORT, skb->len, WORLD_ID, rev_nat, 0) < 0)
		return host_drop(skb, &p, DROP_CT_CREATE_FAILED);
	struct endpoint_key ek = {};
	ek.family = p.family;
	__builtin_memcpy(ek.addr, p.daddr, 16);
	if (!cilium_lxc.lookup(&ek))
		skb->mark = MARK_MAGIC_NODEPORT_SNAT;
	return TC_ACT_OK;
}

int cil_to_netdev(struct __sk_buff *skb)
{
	struct pkt p = {};
	if (parse(skb, &p) || p.family != 4)
		return TC_ACT_OK;
	struct ct_entry *e = ct_find(&p, CT_NODEPORT, 1);
	if (!e || !e->rev_nat_index)
		return TC_ACT_OK;
	ct_refresh(e, &p, skb->len, 1);
	u16 idx = e->rev_nat_index;
	struct lb4_reverse_nat *rn = cilium_lb4_reverse_nat.lookup(&idx);
	if (rn && nat4(skb, &p, rn->address, rn->port, 1))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}
