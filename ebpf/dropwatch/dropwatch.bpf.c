// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * dropwatch: every packet the kernel drops via kfree_skb().
 *
 * Each drop is counted exactly in `drop_counts` (reason x L3 x L4), whatever
 * the filter or rate limit say, so metrics stay exact under load; only then
 * is a detailed record sent to `events`, subject to `filter_l4_proto` and the
 * shared per-CPU rate limiter.
 *
 * Two entry points with one body: userspace tries the cheaper tp_btf
 * (typed arguments, no perf-buffer copy) and falls back to the classic
 * tracepoint where BTF-typed tracepoints are unavailable.
 */
#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "huatuo_sock.bpf.h"
#include "dropwatch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Not in vmlinux.h (they are macros in the kernel); wire/UAPI values. */
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IP_OFFSET_MASK 0x1fff
#define IPPROTO_ICMPV6 58 /* a UAPI macro, absent from vmlinux.h */
/* skb->transport_header when never set (typeof(transport_header))~0U. */
#define SKB_HEADER_UNSET 0xffff

/*
 * 0 = every drop; otherwise only drops whose L4 protocol equals this
 * IPPROTO_* value (meant for IPPROTO_TCP / IPPROTO_UDP) are emitted.
 * Counting in drop_counts is never filtered.
 */
const volatile __u8 filter_l4_proto = 0;

/*
 * Reasons below this use the array; userspace may lower it (0 sends every
 * drop through the hash, which tests use to exercise that path).
 */
const volatile __u32 reason_slots = DROPWATCH_REASON_SLOTS;

HUATUO_PERCPU_ARRAY(drop_counts_by_reason, struct dropwatch_reason_counts,
		    DROPWATCH_REASON_SLOTS);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct dropwatch_count_key);
	__type(value, __u64);
} drop_counts SEC(".maps");

HUATUO_BTF_EXPORT(struct dropwatch_event, dropwatch_event);
HUATUO_BTF_EXPORT(enum dropwatch_l3_class, dropwatch_l3_class);
HUATUO_BTF_EXPORT(enum dropwatch_l4_class, dropwatch_l4_class);

/* Catch accidental padding or reordering at compile time. */
_Static_assert(sizeof(struct dropwatch_count_key) == 8, "count key layout");
_Static_assert(sizeof(struct dropwatch_event) == 136, "event layout");
_Static_assert(__builtin_offsetof(struct dropwatch_event, saddr) == 72,
	       "event layout");
_Static_assert(sizeof(struct dropwatch_event) % 8 == 0, "event alignment");

/*
 * Wire-format headers. Declared here rather than taken from vmlinux.h so no
 * CO-RE relocation applies: packet layout is fixed by the protocol, not by
 * the running kernel, and vmlinux.h's iphdr uses bitfields.
 */
struct dw_ipv4 {
	__u8 ver_ihl;
	__u8 tos;
	__u16 tot_len;
	__u16 id;
	__u16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__u8 saddr[4];
	__u8 daddr[4];
};

struct dw_ipv6 {
	__u8 ver_prio;
	__u8 flow_lbl[3];
	__u16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* What one parse of the skb headers yields; filled before any filtering. */
struct dw_pkt {
	unsigned char *l4; /* transport header; NULL when ports do not apply */
	__u16 l3_proto;
	__u8 l4_proto;
	__u8 family;
	union {
		struct dw_ipv4 v4;
		struct dw_ipv6 v6;
	};
};

static __always_inline bool l4_has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
	       proto == IPPROTO_UDPLITE || proto == IPPROTO_SCTP;
}

/*
 * Best effort: any read that fails leaves the corresponding fields zero.
 * Headers are located from skb->head so this works at every drop point, not
 * only where skb->data happens to point at the IP header.
 */
static __always_inline void parse_headers(struct sk_buff *skb,
					  struct dw_pkt *pkt, const bool direct)
{
	unsigned char *head = HUATUO_READ(direct, skb, head);
	__u16 nh_off = HUATUO_READ(direct, skb, network_header);
	__u16 th_off = HUATUO_READ(direct, skb, transport_header);
	__u16 proto = huatuo_ntohs(HUATUO_READ(direct, skb, protocol));
	unsigned char *nh;
	__u32 hdr_len;
	__u8 version;

	pkt->l3_proto = proto;
	if (!head)
		return;
	if (proto != ETH_P_IP && proto != ETH_P_IPV6 && proto != 0)
		return;
	/*
	 * skb->protocol is still 0 on some locally generated packets; then
	 * trust the version nibble, but only if a network header was set.
	 */
	if (proto == 0 && nh_off == 0)
		return;

	nh = head + nh_off;
	/*
	 * One read covers either header: the buffer behind a network header
	 * is far longer than 40 bytes in practice; only if this read faults
	 * (header at the very end of a mapping) retry with the IPv4 size.
	 */
	if (bpf_probe_read_kernel(&pkt->v6, sizeof(pkt->v6), nh) &&
	    bpf_probe_read_kernel(&pkt->v4, sizeof(pkt->v4), nh))
		return;
	version = pkt->v4.ver_ihl >> 4;

	if (version == 4 && proto != ETH_P_IPV6) {
		hdr_len = (pkt->v4.ver_ihl & 0x0f) * 4;
		if (hdr_len < sizeof(pkt->v4))
			return;
		pkt->family = HUATUO_AF_INET;
		pkt->l3_proto = ETH_P_IP;
		pkt->l4_proto = pkt->v4.protocol;
		/* Non-first fragments carry no L4 header. */
		if (huatuo_ntohs(pkt->v4.frag_off) & IP_OFFSET_MASK)
			return;
	} else if (version == 6 && proto != ETH_P_IP) {
		hdr_len = sizeof(pkt->v6);
		pkt->family = HUATUO_AF_INET6;
		pkt->l3_proto = ETH_P_IPV6;
		/* Extension headers are not walked: ports only without them. */
		pkt->l4_proto = pkt->v6.nexthdr;
	} else {
		return;
	}

	if (!l4_has_ports(pkt->l4_proto))
		return;
	/*
	 * Before the IP layer runs, transport_header is either unset or still
	 * equal to network_header (reset on receive); then derive it.
	 */
	if (th_off != SKB_HEADER_UNSET && th_off >= nh_off + hdr_len)
		pkt->l4 = head + th_off;
	else
		pkt->l4 = nh + hdr_len;
}

static __always_inline __u32 l3_class(__u16 l3_proto)
{
	if (l3_proto == ETH_P_IP)
		return DROPWATCH_L3_IPV4;
	if (l3_proto == ETH_P_IPV6)
		return DROPWATCH_L3_IPV6;
	return DROPWATCH_L3_OTHER;
}

static __always_inline __u32 l4_class(__u8 l4_proto)
{
	switch (l4_proto) {
	case IPPROTO_TCP:
		return DROPWATCH_L4_TCP;
	case IPPROTO_UDP:
		return DROPWATCH_L4_UDP;
	case IPPROTO_ICMP:
		return DROPWATCH_L4_ICMP;
	case IPPROTO_ICMPV6:
		return DROPWATCH_L4_ICMPV6;
	case IPPROTO_SCTP:
		return DROPWATCH_L4_SCTP;
	default:
		return DROPWATCH_L4_OTHER;
	}
}

static __always_inline void count_drop(__u32 reason, const struct dw_pkt *pkt)
{
	struct dropwatch_count_key key = {};

	if (reason < reason_slots) {
		struct dropwatch_reason_counts *c;
		__u32 l3 = l3_class(pkt->l3_proto);
		__u32 l4 = l4_class(pkt->l4_proto);

		c = bpf_map_lookup_elem(&drop_counts_by_reason, &reason);
		if (c && l3 < DROPWATCH_L3_CLASSES && l4 < DROPWATCH_L4_CLASSES) {
			/* Per-CPU and non-reentrant on a CPU: a plain add. */
			c->count[l3][l4] += 1;
			return;
		}
	}
	key.reason = reason;
	key.l3_proto = pkt->l3_proto;
	key.l4_proto = pkt->l4_proto;
	huatuo_counter_inc(&drop_counts, &key);
}

static __always_inline void fill_netns(struct dropwatch_event *e,
				       struct net_device *dev,
				       struct sock *sk)
{
	struct net *net = NULL;

	/* Only on emitted records, so the probe-read flavour is fine. */
	if (dev)
		net = BPF_CORE_READ(dev, nd_net.net);
	else if (sk)
		net = BPF_CORE_READ(sk, __sk_common.skc_net.net);
	if (!net)
		return;

	e->netns_inum = BPF_CORE_READ(net, ns.inum);
	/* Absent (or not a plain u64) before 5.12: leave 0. */
	if (bpf_core_field_exists(net->net_cookie))
		e->netns_cookie = BPF_CORE_READ(net, net_cookie);
}

/*
 * Whose drop it is: the socket's owner when there is one. Otherwise the
 * current task only when it lives in the packet's network namespace (a
 * sender whose softirq runs in its own context, as on loopback); in any
 * other softirq it is unrelated, and userspace attributes by namespace.
 */
static __always_inline __u64 owner_cgroup_id(struct sock *sk, __u32 netns_inum)
{
	struct task_struct *task;

	if (sk)
		return huatuo_sock_cgroup_id(sk, false);
	task = (struct task_struct *)bpf_get_current_task();
	if (netns_inum && BPF_CORE_READ(task, nsproxy, net_ns, ns.inum) != netns_inum)
		return 0;
	return bpf_get_current_cgroup_id();
}

static __always_inline void handle_drop(struct sk_buff *skb, __u64 location,
					__u32 reason, __u32 flags,
					struct sock *rx_sk, const bool direct)
{
	struct dropwatch_event *e;
	struct dw_pkt pkt = {};
	struct net_device *dev;
	struct sock *sk;
	__u64 id;
	__u16 ports[2];
	__u8 filter = filter_l4_proto;

	if (!skb)
		return;

	/* The per-drop path: headers, count, filter, rate limit. */
	parse_headers(skb, &pkt, direct);

	count_drop(reason, &pkt);

	if (filter && filter != pkt.l4_proto)
		return;
	if (!rate_limit_allow())
		return;

	e = events_reserve(sizeof(*e));
	if (!e)
		return;
	/* Ring buffer memory is not zeroed and every byte reaches userspace. */
	__builtin_memset(e, 0, sizeof(*e));

	id = bpf_get_current_pid_tgid();
	e->ts_ns = bpf_ktime_get_ns();
	e->location = location;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->reason = reason;
	e->len = BPF_CORE_READ(skb, len);
	e->l3_proto = pkt.l3_proto;
	e->l4_proto = pkt.l4_proto;
	e->family = pkt.family;
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	if (pkt.family == HUATUO_AF_INET) {
		__builtin_memcpy(e->saddr, pkt.v4.saddr, sizeof(pkt.v4.saddr));
		__builtin_memcpy(e->daddr, pkt.v4.daddr, sizeof(pkt.v4.daddr));
	} else if (pkt.family == HUATUO_AF_INET6) {
		__builtin_memcpy(e->saddr, pkt.v6.saddr, sizeof(pkt.v6.saddr));
		__builtin_memcpy(e->daddr, pkt.v6.daddr, sizeof(pkt.v6.daddr));
	} else {
		flags |= DROPWATCH_F_NO_L3;
	}
	e->flags = flags;

	if (pkt.l4 && !bpf_probe_read_kernel(ports, sizeof(ports), pkt.l4)) {
		e->sport = huatuo_ntohs(ports[0]);
		e->dport = huatuo_ntohs(ports[1]);
	}

	/*
	 * On receive, skb->sk is usually NULL and the tracepoint's rx_sk (when
	 * the kernel has it) names the socket the packet was meant for.
	 */
	sk = BPF_CORE_READ(skb, sk);
	if (!sk)
		sk = rx_sk;
	dev = BPF_CORE_READ(skb, dev);
	if (dev) {
		e->ifindex = BPF_CORE_READ(dev, ifindex);
		bpf_core_read(e->ifname, sizeof(e->ifname), &dev->name);
	}
	fill_netns(e, dev, sk);
	e->cgroup_id = owner_cgroup_id(sk, e->netns_inum);
	if (sk && pkt.l4_proto == IPPROTO_TCP)
		e->tcp_state = BPF_CORE_READ(sk, __sk_common.skc_state);

	events_submit(e);
}

/*
 * tp_btf arguments are the tracepoint prototype without its leading
 * `void *__data`: (skb, location, reason [5.17+], rx_sk [6.11+]). Reading a
 * slot the kernel lacks fails verification, so the later ones are guarded
 * by CO-RE checks on the matching trace_event_raw_kfree_skb fields; the
 * tracepoint struct and the prototype change together.
 */
SEC("tp_btf/kfree_skb")
int dropwatch_btf(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	__u64 location = ctx[1];
	struct sock *rx_sk = NULL;
	__u32 reason = 0, flags = 0;

	if (bpf_core_field_exists(struct trace_event_raw_kfree_skb, reason))
		reason = (__u32)ctx[2];
	else
		flags |= DROPWATCH_F_REASON_UNKNOWN;
	if (bpf_core_field_exists(struct trace_event_raw_kfree_skb, rx_sk))
		rx_sk = (struct sock *)ctx[3];

	handle_drop(skb, location, reason, flags, rx_sk, true);
	return 0;
}

SEC("tracepoint/skb/kfree_skb")
int dropwatch_tp(struct trace_event_raw_kfree_skb *ctx)
{
	struct sk_buff *skb = ctx->skbaddr;
	__u64 location = (__u64)ctx->location;
	struct sock *rx_sk = NULL;
	__u32 reason = 0, flags = 0;

	if (bpf_core_field_exists(ctx->reason))
		reason = ctx->reason;
	else
		flags |= DROPWATCH_F_REASON_UNKNOWN;
	if (bpf_core_field_exists(ctx->rx_sk))
		rx_sk = ctx->rx_sk;

	handle_drop(skb, location, reason, flags, rx_sk, false);
	return 0;
}
