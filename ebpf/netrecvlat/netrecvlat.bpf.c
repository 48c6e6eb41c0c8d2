// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * netrecvlat: how long received TCP packets took from the moment the kernel
 * stamped them on receive (skb->tstamp, taken when the driver hands them to
 * the stack) to three stages: entering the stack (net:netif_receive_skb),
 * TCP processing on an established socket (tcp:tcp_probe) and the copy to
 * the reading process (skb:skb_copy_datagram_iovec).
 *
 * Every TCP packet with a usable stamp is counted in the per-stage latency
 * histogram `latency_us`; packets without one are counted in `skipped` by
 * cause. Those over their stage's threshold become records in `events`,
 * subject to the shared per-CPU rate limiter.
 *
 * The kernel stamps packets only while something asked for RX software
 * timestamps (net_enable_timestamp); userspace holds a socket that does.
 *
 * Each hook has two entry points with one body: userspace tries tp_btf
 * (typed arguments read with plain loads) and falls back to the classic
 * tracepoint (probe reads) where BTF-typed tracepoints are unavailable.
 */
#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "huatuo_hist.bpf.h"
#include "huatuo_sock.bpf.h"
#include "netrecvlat.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Not in vmlinux.h (macros in the kernel); wire/UAPI values. */
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IP_OFFSET_MASK 0x1fff

/* enum skb_tstamp_type (6.11+), spelled out for kernels without it. */
#define NRL_CLOCK_REALTIME 0
#define NRL_CLOCK_MONOTONIC 1

/* Per stage (enum netrecvlat_stage): packets slower than this are reported. */
const volatile __u64 threshold_ns[NETRECVLAT_STAGES] = {};

/* Latency in microseconds, one row per stage. */
HUATUO_HIST_MAP(latency_us, NETRECVLAT_STAGES);

HUATUO_PERCPU_ARRAY(skipped, struct netrecvlat_skips, 1);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct netrecvlat_wall_clock);
} wall_clock SEC(".maps");

HUATUO_BTF_EXPORT(struct netrecvlat_event, netrecvlat_event);
HUATUO_BTF_EXPORT(enum netrecvlat_stage, netrecvlat_stage);
HUATUO_BTF_EXPORT(enum netrecvlat_skip, netrecvlat_skip);

_Static_assert(sizeof(struct netrecvlat_event) == 112, "event layout");
_Static_assert(__builtin_offsetof(struct netrecvlat_event, saddr) == 48,
	       "event layout");

/* 5.18..6.10 flagged a monotonic stamp with one bit instead of tstamp_type. */
struct sk_buff___mono_bit {
	__u8 mono_delivery_time : 1;
} __attribute__((preserve_access_index));

static __always_inline void count_skip(__u32 stage, __u32 why)
{
	struct netrecvlat_skips *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&skipped, &zero);
	/* Per-CPU and non-reentrant on a CPU: a plain add. */
	if (s && stage < NETRECVLAT_STAGES && why < NETRECVLAT_SKIPS)
		s->count[stage][why] += 1;
}

/* The clock skb->tstamp is on: NRL_CLOCK_* or SKB_CLOCK_TAI. */
static __always_inline __u8 stamp_clock(struct sk_buff *skb, const bool direct)
{
	struct sk_buff___mono_bit *old = (void *)skb;

	if (bpf_core_field_exists(skb->tstamp_type))
		return direct ? BPF_CORE_READ_BITFIELD(skb, tstamp_type)
			      : BPF_CORE_READ_BITFIELD_PROBED(skb, tstamp_type);
	if (bpf_core_field_exists(old->mono_delivery_time))
		return direct ? BPF_CORE_READ_BITFIELD(old, mono_delivery_time)
			      : BPF_CORE_READ_BITFIELD_PROBED(old, mono_delivery_time);
	return NRL_CLOCK_REALTIME;
}

/*
 * Time since the packet was stamped, in ns, counted in the stage's
 * histogram; false (and the cause counted) when it cannot be known.
 * Receive stamps are wall-clock time, which can step: they are moved onto
 * CLOCK_MONOTONIC with the offset userspace keeps current, and stamps from
 * before the last step it saw are not trusted.
 */
static __always_inline bool packet_latency(struct sk_buff *skb, __u32 stage,
					   __u64 now, __u64 *latency,
					   __u8 *mono, const bool direct)
{
	__s64 stamp = HUATUO_READ(direct, skb, tstamp);
	struct netrecvlat_wall_clock *clock;
	__u32 zero = 0;
	__u8 type;

	if (stamp <= 0) {
		count_skip(stage, NETRECVLAT_SKIP_NO_TIMESTAMP);
		return false;
	}
	type = stamp_clock(skb, direct);
	*mono = type == NRL_CLOCK_MONOTONIC;
	if (type == NRL_CLOCK_REALTIME) {
		clock = bpf_map_lookup_elem(&wall_clock, &zero);
		if (!clock || !clock->real_minus_mono_ns) {
			count_skip(stage, NETRECVLAT_SKIP_CLOCK_STEP);
			return false;
		}
		stamp -= clock->real_minus_mono_ns;
		if (stamp < (__s64)clock->stepped_at_mono_ns) {
			count_skip(stage, NETRECVLAT_SKIP_CLOCK_STEP);
			return false;
		}
	} else if (type != NRL_CLOCK_MONOTONIC) {
		count_skip(stage, NETRECVLAT_SKIP_OTHER_CLOCK);
		return false;
	}
	/* A pacing sender's delivery time may lie ahead; nothing to measure. */
	if (stamp > (__s64)now) {
		count_skip(stage, NETRECVLAT_SKIP_CLOCK_STEP);
		return false;
	}
	*latency = now - stamp;
	huatuo_hist_add(&latency_us, stage, *latency / 1000);
	return true;
}

/* What a record says besides the latency. */
struct nrl_packet {
	struct huatuo_conn conn; /* saddr/sport local, daddr/dport the sender */
	struct sock *sk;
	struct net_device *dev;
};

static __always_inline void report(struct sk_buff *skb, __u32 stage,
				   __u64 now, __u64 latency, __u8 mono,
				   const struct nrl_packet *p, const bool direct)
{
	struct net_device *dev = p->dev;
	struct netrecvlat_event *e;
	struct net *net;
	__u64 id;

	if (stage >= NETRECVLAT_STAGES || latency < threshold_ns[stage])
		return;
	if (!rate_limit_allow())
		return;
	e = events_reserve(sizeof(*e));
	if (!e)
		return;
	/* Ring buffer memory is not zeroed and every byte reaches userspace. */
	__builtin_memset(e, 0, sizeof(*e));

	e->ts_ns = now;
	e->latency_ns = latency;
	e->len = HUATUO_READ(direct, skb, len);
	e->stage = stage;
	e->mono_stamp = mono;
	e->family = p->conn.family;
	e->state = p->conn.state;
	e->sport = p->conn.dport;
	e->dport = p->conn.sport;
	__builtin_memcpy(e->saddr, p->conn.daddr, sizeof(e->saddr));
	__builtin_memcpy(e->daddr, p->conn.saddr, sizeof(e->daddr));
	if (p->sk) {
		e->cgroup_id = huatuo_sock_cgroup_id(p->sk, direct);
		e->netns_inum = huatuo_sock_netns_inum(p->sk, direct);
	} else if (dev) {
		/* Records are rare: the probe-read flavour is fine here. */
		net = BPF_CORE_READ(dev, nd_net.net);
		if (net)
			e->netns_inum = BPF_CORE_READ(net, ns.inum);
		bpf_core_read(e->ifname, sizeof(e->ifname), &dev->name);
	}
	/* Only the copy runs in the context of the task the packet is for. */
	if (stage == NETRECVLAT_STAGE_USER_COPY) {
		id = bpf_get_current_pid_tgid();
		e->pid = id >> 32;
		e->tid = (__u32)id;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	}
	events_submit(e);
}

/* Wire-format headers: fixed by the protocol, so no CO-RE relocation. */
struct nrl_ipv4 {
	__u8 ver_ihl;
	__u8 tos;
	__u16 tot_len;
	__u16 id;
	__u16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__u32 saddr;
	__u32 daddr;
};

struct nrl_ipv6 {
	__u32 ver_class_flow;
	__u16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u32 saddr[4];
	__u32 daddr[4];
};

/*
 * The 4-tuple of a TCP packet entering the stack, where skb->data points at
 * its network header. False for anything else, and for IPv6 packets with
 * extension headers, which are not walked.
 */
static __always_inline bool parse_tcp(struct sk_buff *skb,
				      struct huatuo_conn *c, const bool direct)
{
	__u16 proto = huatuo_ntohs(HUATUO_READ(direct, skb, protocol));
	unsigned char *data = HUATUO_READ(direct, skb, data);
	unsigned char *l4;
	__u16 ports[2];

	if (proto == ETH_P_IP) {
		struct nrl_ipv4 ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), data) ||
		    ip.protocol != IPPROTO_TCP || (ip.ver_ihl >> 4) != 4 ||
		    (huatuo_ntohs(ip.frag_off) & IP_OFFSET_MASK))
			return false;
		c->family = HUATUO_AF_INET;
		c->daddr[0] = ip.saddr;
		c->saddr[0] = ip.daddr;
		l4 = data + (ip.ver_ihl & 0x0f) * 4;
	} else if (proto == ETH_P_IPV6) {
		struct nrl_ipv6 ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), data) ||
		    ip.nexthdr != IPPROTO_TCP)
			return false;
		c->family = HUATUO_AF_INET6;
		__builtin_memcpy(c->daddr, ip.saddr, sizeof(c->daddr));
		__builtin_memcpy(c->saddr, ip.daddr, sizeof(c->saddr));
		l4 = data + sizeof(ip);
	} else {
		return false;
	}
	if (bpf_probe_read_kernel(ports, sizeof(ports), l4))
		return false;
	c->dport = huatuo_ntohs(ports[0]);
	c->sport = huatuo_ntohs(ports[1]);
	return true;
}

static __always_inline void on_netif(struct sk_buff *skb, const bool direct)
{
	struct nrl_packet p = {};
	__u64 now, latency;
	__u8 mono;

	if (!skb || !parse_tcp(skb, &p.conn, direct))
		return;
	now = bpf_ktime_get_ns();
	if (!packet_latency(skb, NETRECVLAT_STAGE_NETIF, now, &latency, &mono,
			    direct))
		return;
	p.dev = HUATUO_READ(direct, skb, dev);
	report(skb, NETRECVLAT_STAGE_NETIF, now, latency, mono, &p, direct);
}

/* A packet at a TCP socket: its stamp, and the socket's end points. */
static __always_inline void on_socket(struct sock *sk, struct sk_buff *skb,
				      __u32 stage, const bool direct)
{
	struct nrl_packet p = {};
	__u64 now, latency;
	__u8 mono;

	if (!sk || !skb)
		return;
	now = bpf_ktime_get_ns();
	if (!packet_latency(skb, stage, now, &latency, &mono, direct))
		return;
	/* Read only for reports: the addresses cost more than the stamp. */
	if (latency < threshold_ns[stage])
		return;
	huatuo_read_conn(&sk->__sk_common, &p.conn, direct);
	p.sk = sk;
	report(skb, stage, now, latency, mono, &p, direct);
}

/*
 * Copies serve every socket type; only TCP sockets' packets are measured,
 * like at the other stages. A packet read in several calls is measured at
 * each.
 */
static __always_inline void on_copy(struct sk_buff *skb, const bool direct)
{
	struct sock *sk;
	__u16 family;
	__u16 protocol;

	if (!skb)
		return;
	sk = HUATUO_READ(direct, skb, sk);
	if (!sk)
		return;
	family = HUATUO_READ(direct, sk, __sk_common.skc_family);
	if (family != HUATUO_AF_INET && family != HUATUO_AF_INET6)
		return;
	/* A bitfield before 5.6: read it the way that works for both. */
	protocol = direct ? BPF_CORE_READ_BITFIELD(sk, sk_protocol)
			  : BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	if (protocol != IPPROTO_TCP)
		return;
	on_socket(sk, skb, NETRECVLAT_STAGE_USER_COPY, direct);
}

/* tp_btf arguments are the tracepoint prototypes without `void *__data`. */
SEC("tp_btf/netif_receive_skb")
int netif_receive_skb_btf(__u64 *ctx)
{
	on_netif((struct sk_buff *)ctx[0], true);
	return 0;
}

/* (sk, skb), at the start of tcp_rcv_established. */
SEC("tp_btf/tcp_probe")
int tcp_probe_btf(__u64 *ctx)
{
	on_socket((struct sock *)ctx[0], (struct sk_buff *)ctx[1],
		  NETRECVLAT_STAGE_TCP, true);
	return 0;
}

/* (skb, len). */
SEC("tp_btf/skb_copy_datagram_iovec")
int skb_copy_datagram_iovec_btf(__u64 *ctx)
{
	on_copy((struct sk_buff *)ctx[0], true);
	return 0;
}

/*
 * Classic tracepoint records: the skb address follows the common header in
 * net:netif_receive_skb and skb:skb_copy_datagram_iovec since they exist.
 */
struct nrl_skb_record {
	__u64 common; /* struct trace_entry */
	void *skbaddr;
};

SEC("tracepoint/net/netif_receive_skb")
int netif_receive_skb_tp(struct nrl_skb_record *ctx)
{
	on_netif(ctx->skbaddr, false);
	return 0;
}

/*
 * tcp:tcp_probe's record carries the skb and socket addresses only on
 * recent kernels (6.x); older ones without tp_btf leave the TCP stage empty.
 */
SEC("tracepoint/tcp/tcp_probe")
int tcp_probe_tp(struct trace_event_raw_tcp_probe *ctx)
{
	if (!bpf_core_field_exists(ctx->skaddr) ||
	    !bpf_core_field_exists(ctx->skbaddr))
		return 0;
	on_socket((struct sock *)ctx->skaddr, (struct sk_buff *)ctx->skbaddr,
		  NETRECVLAT_STAGE_TCP, false);
	return 0;
}

SEC("tracepoint/skb/skb_copy_datagram_iovec")
int skb_copy_datagram_iovec_tp(struct nrl_skb_record *ctx)
{
	on_copy(ctx->skbaddr, false);
	return 0;
}
