/* SPDX-License-Identifier: Apache-2.0 */
/* Shared definitions of the ciliumctl datapath: map layouts, drop reasons, packet parsing.
 *
 * Compiled by bcc with the endpoint's constants as -D defines (see
 * ciliumctl/datapath/loader.py). Every map is pinned under PIN_ROOT and created beforehand by
 * user space (ciliumctl/datapath/maps.py), whose struct formats mirror the layouts here.
 */
#ifndef CILIUMCTL_COMMON_H
#define CILIUMCTL_COMMON_H

#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in.h>
#include <uapi/linux/in6.h>

#ifndef PIN_ROOT
#error "PIN_ROOT (the bpffs directory of the pinned maps) must be defined"
#endif

#define PIN(name) PIN_ROOT "/" name

/* Load-time constants, as Cilium's endpoint templates do: a constant read through an
 * inline-asm 64-bit immediate load cannot be folded by the compiler, so one compiled object
 * serves every endpoint and user space patches the immediate (a magic number) per endpoint.
 * The loader defines e.g. -DEP_ID='LOAD_CONST(0x7e1d0001)'; a plain number works as well. */
#define __CONST_STR(x) #x
#define CONST_STR(x) __CONST_STR(x)
#define LOAD_CONST(v)                                                          \
	({                                                                     \
		u64 __c;                                                       \
		asm volatile("%0 = " CONST_STR(v) " ll" : "=r"(__c));          \
		(u32) __c;                                                     \
	})

/* Cilium's drop reasons (pkg/monitor/api/drop.go numbering). */
#define DROP_INVALID 134
#define DROP_POLICY 133
#define DROP_CT_UNKNOWN_PROTO 137
#define DROP_WRITE_ERROR 141
#define DROP_CT_CREATE_FAILED 155
#define DROP_NO_SERVICE 158
#define DROP_POLICY_DENY 181

/* Monitor event types and trace observation points, as Cilium numbers them. */
#define EVENT_DROP 1
#define EVENT_TRACE 4
#define EVENT_POLICY_VERDICT 5
#define TRACE_TO_LXC 0
#define TRACE_TO_OVERLAY 4
#define TRACE_FROM_LXC 5
#define TRACE_FROM_OVERLAY 9

/* Policy match types of a verdict (Cilium's POLICY_MATCH_*). */
#define MATCH_NONE 0
#define MATCH_L3_ONLY 1
#define MATCH_L3_L4 2
#define MATCH_L4_ONLY 3
#define MATCH_ALL 4

/* Directions from the endpoint's point of view (model.Direction) and metric directions. */
#define DIR_INGRESS 0
#define DIR_EGRESS 1
#define CT_SERVICE 2
#define METRIC_INGRESS 1
#define METRIC_EGRESS 2

/* Identities carried in skb->mark between the overlay and the endpoint program. */
#define MARK_MAGIC_IDENTITY 0x0F00
#define MARK_MAGIC_MASK 0x0F00
/* A NodePort packet sent on to a backend on another node: the node masquerades it (the
 * agent's iptables rule matches this mark), so the backend's reply comes back here for the
 * reverse NAT instead of going to the client directly. */
#define MARK_MAGIC_NODEPORT_SNAT 0x0A00
#define WORLD_ID 2

/* --- ipcache: LPM trie, prefixlen counts bits after the prefixlen field (32 + prefix) --- */
struct ipcache_key {
	u32 prefixlen;
	u8 family;
	u8 pad[3];
	u8 addr[16];
};
struct ipcache_value {
	u32 identity;
	__be32 tunnel_endpoint;
	u32 flags;
};

/* --- policy: one LPM trie per endpoint (inner map of cilium_policy_v2) ---
 * prefixlen: 40 = identity + direction, 48 = + protocol, 48 + n = + n high bits of dport. */
struct policy_key {
	u32 prefixlen;
	u32 identity;
	u8 egress;
	u8 protocol;
	__be16 dport;
};
#define POLICY_FULL_PREFIX 64
#define POLICY_FLAG_L4 1
/* The key identity 0xffffffff / egress 0xff holds the map's enforcement flags. */
#define POLICY_CONFIG_ID 0xffffffff
#define POLICY_CONFIG_DIR 0xff
#define POLICY_INGRESS_ENFORCED 1
#define POLICY_EGRESS_ENFORCED 2
struct policy_entry {
	u64 packets;
	u64 bytes;
	u8 deny;
	u8 flags;
	u16 proxy_port;
	u32 pad;
};

/* --- conntrack: one hash per family; dir is DIR_INGRESS / DIR_EGRESS / CT_SERVICE --- */
struct ct4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	u8 proto;
	u8 dir;
	u16 pad;
};
struct ct6_key {
	u8 saddr[16];
	u8 daddr[16];
	__be16 sport;
	__be16 dport;
	u8 proto;
	u8 dir;
	u16 pad;
};
#define CT_F_SYN 1
#define CT_F_CLOSING 2
#define CT_F_SEEN_REPLY 4
struct ct_entry {
	u64 expires; /* CLOCK_MONOTONIC seconds */
	u64 packets;
	u64 bytes;
	u32 src_identity;
	u32 backend_id;
	u16 rev_nat_index;
	u8 flags;
	u8 pad[5];
};
/* Lifetimes as Cilium's defaults (seconds). */
#define CT_LIFETIME_TCP 21600
#define CT_LIFETIME_NONTCP 60
#define CT_SYN_TIMEOUT 60
#define CT_CLOSE_TIMEOUT 10

/* --- service load balancing (IPv4) --- */
struct lb4_key {
	__be32 address;
	__be16 dport;
	u16 backend_slot;
	u8 proto;
	u8 scope;
	u16 pad;
};
struct lb4_service {
	u32 backend_id; /* slot > 0 */
	u16 count; /* slot 0: number of backends */
	u16 rev_nat_index;
	u8 flags;
	u8 pad[3];
};
struct lb4_backend {
	__be32 address;
	__be16 port;
	u8 proto;
	u8 flags;
};
struct lb4_reverse_nat {
	__be32 address;
	__be16 port;
	u16 pad;
};

/* --- local endpoints, for delivery from the overlay --- */
struct endpoint_key {
	u8 addr[16];
	u8 family;
	u8 pad[3];
};
struct endpoint_info {
	u32 ifindex;
	u16 ep_id;
	u16 pad;
	u32 identity;
	u8 mac[6];
	u8 node_mac[6];
};

/* --- metrics: per-CPU counters per reason (0 = forwarded) and direction --- */
struct metrics_key {
	u8 reason;
	u8 dir;
	u16 pad;
	u32 pad2;
};
struct metrics_value {
	u64 count;
	u64 bytes;
};

/* --- events: records of the cilium_events ring buffer --- */
struct event {
	u8 type;
	u8 reason; /* drop reason, or trace observation point */
	u8 dir;
	u8 family;
	u8 proto;
	u8 match;
	u16 ep_id;
	u32 src_identity;
	u32 dst_identity;
	u16 sport; /* host byte order */
	u16 dport;
	u32 ifindex;
	u32 len;
	u8 verdict; /* 0 forwarded, 1 dropped */
	u8 tcp_flags;
	u16 pad;
	u8 saddr[16];
	u8 daddr[16];
	u64 ts;
};

/* Map declarations: all pinned, created by user space with these layouts. */
BPF_TABLE_PINNED("lpm_trie", struct ipcache_key, struct ipcache_value, cilium_ipcache, 512000,
		 PIN("cilium_ipcache"), BPF_F_NO_PREALLOC);
BPF_F_TABLE("lpm_trie", struct policy_key, struct policy_entry, cilium_policy_inner, 16,
	    BPF_F_NO_PREALLOC);
BPF_TABLE_PINNED("array_of_maps$cilium_policy_inner", int, int, cilium_policy_v2, 65536,
		 PIN("cilium_policy_v2"));
BPF_TABLE_PINNED("hash", struct ct4_key, struct ct_entry, cilium_ct4_global, 262144,
		 PIN("cilium_ct4_global"), BPF_F_NO_PREALLOC);
BPF_TABLE_PINNED("hash", struct ct6_key, struct ct_entry, cilium_ct6_global, 262144,
		 PIN("cilium_ct6_global"), BPF_F_NO_PREALLOC);
BPF_TABLE_PINNED("hash", struct lb4_key, struct lb4_service, cilium_lb4_services, 65536,
		 PIN("cilium_lb4_services_v2"));
BPF_TABLE_PINNED("hash", u32, struct lb4_backend, cilium_lb4_backends, 65536,
		 PIN("cilium_lb4_backends_v3"));
BPF_TABLE_PINNED("hash", u16, struct lb4_reverse_nat, cilium_lb4_reverse_nat, 65536,
		 PIN("cilium_lb4_reverse_nat"));
BPF_TABLE_PINNED("hash", struct endpoint_key, struct endpoint_info, cilium_lxc, 65535,
		 PIN("cilium_lxc"));
BPF_TABLE_PINNED("percpu_hash", struct metrics_key, struct metrics_value, cilium_metrics, 1024,
		 PIN("cilium_metrics"));

/* cilium_events (ring buffer) is passed in by fd: bcc cannot open a pinned ring buffer. */
#ifndef EVENTS_FD
#error "EVENTS_FD (the fd of the pinned cilium_events ring buffer) must be defined"
#endif

/* --- parsed packet --- */
struct pkt {
	u8 family; /* 4 or 6 */
	u8 proto;
	u8 icmp_type;
	u8 tcp_flags;
	__be16 sport; /* ICMP echo: identifier (request: sport, reply: dport) */
	__be16 dport;
	u32 l3_off;
	u32 l4_off;
	u8 saddr[16];
	u8 daddr[16];
};

#define IPV6_MAX_EXTHDRS 4

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static __always_inline void count(u8 reason, u8 metric_dir, u32 len)
{
	struct metrics_key k = {};
	k.reason = reason;
	k.dir = metric_dir;
	struct metrics_value *v = cilium_metrics.lookup(&k);
	if (v) {
		v->count += 1;
		v->bytes += len;
	} else {
		struct metrics_value nv = {1, len};
		cilium_metrics.update(&k, &nv);
	}
}

static __always_inline void emit(struct __sk_buff *skb, struct pkt *p, u8 type, u8 reason,
				 u8 dir, u8 match, u8 verdict, u32 src_id, u32 dst_id, u16 ep_id)
{
	struct event e = {};
	e.type = type;
	e.reason = reason;
	e.dir = dir;
	e.family = p->family;
	e.proto = p->proto;
	e.match = match;
	e.ep_id = ep_id;
	e.src_identity = src_id;
	e.dst_identity = dst_id;
	e.sport = bpf_ntohs(p->sport);
	e.dport = bpf_ntohs(p->dport);
	e.ifindex = skb->ifindex;
	e.len = skb->len;
	e.verdict = verdict;
	e.tcp_flags = p->tcp_flags;
	__builtin_memcpy(e.saddr, p->saddr, 16);
	__builtin_memcpy(e.daddr, p->daddr, 16);
	e.ts = bpf_ktime_get_ns();
	bpf_ringbuf_output((void *)bpf_pseudo_fd(1, EVENTS_FD), &e, sizeof(e), 0);
}

/* Parse Ethernet + IPv4/IPv6 + L4. Returns 0 when parsed, 1 for non-IP frames (passed
 * untouched: ARP), or a drop reason. */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	struct ethhdr eth;
	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
		return DROP_INVALID;
	p->l3_off = sizeof(eth);
	if (eth.h_proto == bpf_htons(ETH_P_IP)) {
		u8 h[20];
		if (bpf_skb_load_bytes(skb, p->l3_off, h, 20) < 0)
			return DROP_INVALID;
		u8 ihl = h[0] & 0xf;
		if ((h[0] >> 4) != 4 || ihl < 5)
			return DROP_INVALID;
		p->family = 4;
		p->proto = h[9];
		__builtin_memcpy(p->saddr, &h[12], 4);
		__builtin_memcpy(p->daddr, &h[16], 4);
		p->l4_off = p->l3_off + ihl * 4;
		/* Later fragments carry no L4 header. */
		if ((h[6] & 0x1f) || h[7])
			return DROP_INVALID;
	} else if (eth.h_proto == bpf_htons(ETH_P_IPV6)) {
		u8 h[40];
		if (bpf_skb_load_bytes(skb, p->l3_off, h, 40) < 0)
			return DROP_INVALID;
		if ((h[0] >> 4) != 6)
			return DROP_INVALID;
		p->family = 6;
		p->proto = h[6];
		__builtin_memcpy(p->saddr, &h[8], 16);
		__builtin_memcpy(p->daddr, &h[24], 16);
		p->l4_off = p->l3_off + 40;
		/* Skip extension headers (hop-by-hop carries MLD, for one). */
#pragma unroll
		for (int i = 0; i < IPV6_MAX_EXTHDRS; i++) {
			u8 x[2];
			if (p->proto != IPPROTO_HOPOPTS && p->proto != IPPROTO_ROUTING &&
			    p->proto != IPPROTO_DSTOPTS && p->proto != IPPROTO_FRAGMENT)
				break;
			if (bpf_skb_load_bytes(skb, p->l4_off, x, 2) < 0)
				return DROP_INVALID;
			if (p->proto == IPPROTO_FRAGMENT) {
				u8 f[4];
				if (bpf_skb_load_bytes(skb, p->l4_off, f, 4) < 0)
					return DROP_INVALID;
				/* Later fragments carry no L4 header. */
				if ((f[2] << 5 | f[3] >> 3) != 0)
					return DROP_INVALID;
				p->l4_off += 8;
			} else {
				p->l4_off += (x[1] + 1) * 8;
			}
			p->proto = x[0];
		}
	} else {
		return 1;
	}
	if (p->proto == IPPROTO_TCP) {
		u8 t[14];
		if (bpf_skb_load_bytes(skb, p->l4_off, t, 14) < 0)
			return DROP_INVALID;
		__builtin_memcpy(&p->sport, &t[0], 2);
		__builtin_memcpy(&p->dport, &t[2], 2);
		p->tcp_flags = t[13];
	} else if (p->proto == IPPROTO_UDP || p->proto == IPPROTO_SCTP) {
		u8 t[4];
		if (bpf_skb_load_bytes(skb, p->l4_off, t, 4) < 0)
			return DROP_INVALID;
		__builtin_memcpy(&p->sport, &t[0], 2);
		__builtin_memcpy(&p->dport, &t[2], 2);
	} else if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6) {
		u8 t[8];
		if (bpf_skb_load_bytes(skb, p->l4_off, t, 8) < 0)
			return DROP_INVALID;
		p->icmp_type = t[0];
		/* Echo request / reply carry an identifier that names the flow. */
		if (t[0] == 8 || t[0] == 128)
			__builtin_memcpy(&p->sport, &t[4], 2);
		else if (t[0] == 0 || t[0] == 129)
			__builtin_memcpy(&p->dport, &t[4], 2);
	} else {
		return DROP_CT_UNKNOWN_PROTO;
	}
	return 0;
}

static __always_inline u32 ipcache_identity(u8 family, u8 *addr, __be32 *tunnel)
{
	struct ipcache_key k = {};
	k.prefixlen = 32 + (family == 4 ? 32 : 128);
	k.family = family;
	__builtin_memcpy(k.addr, addr, 16);
	struct ipcache_value *v = cilium_ipcache.lookup(&k);
	if (!v)
		return WORLD_ID;
	if (tunnel)
		*tunnel = v->tunnel_endpoint;
	return v->identity;
}

#endif
