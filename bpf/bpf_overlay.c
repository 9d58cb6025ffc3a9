/* SPDX-License-Identifier: Apache-2.0 */
/* cil_from_overlay: tc ingress of the collect-metadata cilium_vxlan device. Decapsulated
 * packets for a local endpoint get the endpoint's MAC addresses, carry the source identity
 * from the tunnel key (VNI) in skb->mark, and are redirected to the endpoint's veth, whose
 * cil_to_container program enforces the ingress policy. Anything else goes to the stack.
 */
#include "lib/common.h"

int cil_from_overlay(struct __sk_buff *skb)
{
	struct pkt p = {};
	int ret = parse(skb, &p);
	if (ret)
		return TC_ACT_OK;

	struct bpf_tunnel_key tk = {};
	if (bpf_skb_get_tunnel_key(skb, &tk, sizeof(tk), 0) < 0)
		return TC_ACT_OK;
	u32 src_id = (u32)tk.tunnel_id;

	struct endpoint_key ek = {};
	ek.family = p.family;
	__builtin_memcpy(ek.addr, p.daddr, 16);
	struct endpoint_info *ep = cilium_lxc.lookup(&ek);
	if (!ep)
		return TC_ACT_OK;

	u8 macs[12];
	__builtin_memcpy(macs, ep->mac, 6);
	__builtin_memcpy(macs + 6, ep->node_mac, 6);
	if (bpf_skb_store_bytes(skb, 0, macs, 12, 0) < 0)
		return TC_ACT_SHOT;
	skb->mark = MARK_MAGIC_IDENTITY | ((src_id & 0xffff) << 16) | ((src_id >> 16) & 0xff);
	emit(skb, &p, EVENT_TRACE, TRACE_FROM_OVERLAY, DIR_INGRESS, 0, 0, src_id, ep->identity,
	     ep->ep_id);
	return bpf_redirect(ep->ifindex, 0);
}
