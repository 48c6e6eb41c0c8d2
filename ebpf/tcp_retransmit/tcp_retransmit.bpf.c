// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tcp_retransmit: every TCP segment (tcp:tcp_retransmit_skb) and SYN-ACK
 * (tcp:tcp_retransmit_synack) the kernel sends again.
 *
 * Each retransmit is counted exactly in `retransmit_counts` (kind x reason x
 * state x family), whatever the rate limit says; only then does the shared
 * per-CPU rate limiter decide whether a detailed record goes to `events`.
 *
 * Each hook has two entry points with one body: userspace tries tp_btf
 * (typed arguments read with plain loads) and falls back to the classic
 * tracepoint (probe reads) where BTF-typed tracepoints are unavailable.
 */
#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "huatuo_sock.bpf.h"
#include "tcp_retransmit.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* A macro in include/net/inet_connection_sock.h, unchanged since 4.10. */
#define ICSK_TIME_LOSS_PROBE 5

HUATUO_PERCPU_ARRAY(retransmit_counts, struct tcp_retransmit_counts, 1);

HUATUO_BTF_EXPORT(struct tcp_retransmit_event, tcp_retransmit_event);
HUATUO_BTF_EXPORT(enum tcp_retransmit_kind, tcp_retransmit_kind);
HUATUO_BTF_EXPORT(enum tcp_retransmit_reason, tcp_retransmit_reason);
HUATUO_BTF_EXPORT(enum tcp_retransmit_l3_class, tcp_retransmit_l3_class);

/* Catch accidental padding or reordering at compile time. */
_Static_assert(sizeof(struct tcp_retransmit_event) == 64, "event layout");
_Static_assert(__builtin_offsetof(struct tcp_retransmit_event, saddr) == 32,
	       "event layout");

/* See enum tcp_retransmit_reason for what each class means. */
static __always_inline __u8 data_reason(struct sock *sk, const bool direct)
{
	struct inet_connection_sock *icsk;
	__u8 ca_state, pending;

	if (direct) {
		/*
		 * The verifier types the argument as struct sock, so reaching
		 * the connection fields needs a checked conversion (5.9+; the
		 * tracepoint program covers older kernels).
		 */
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

		if (!tp)
			return TCP_RETRANSMIT_REASON_OTHER;
		icsk = &tp->inet_conn;
		ca_state = BPF_CORE_READ_BITFIELD(icsk, icsk_ca_state);
		pending = icsk->icsk_pending;
	} else {
		icsk = (struct inet_connection_sock *)sk;
		ca_state = BPF_CORE_READ_BITFIELD_PROBED(icsk, icsk_ca_state);
		pending = BPF_CORE_READ(icsk, icsk_pending);
	}

	if (ca_state == TCP_CA_Loss)
		return TCP_RETRANSMIT_REASON_TIMEOUT;
	if (ca_state == TCP_CA_Recovery)
		return TCP_RETRANSMIT_REASON_FAST_RETRANSMIT;
	if (pending == ICSK_TIME_LOSS_PROBE)
		return TCP_RETRANSMIT_REASON_LOSS_PROBE;
	return TCP_RETRANSMIT_REASON_OTHER;
}

/*
 * The request timer is detached while its handler runs, and that handler
 * is what resends on timeout; a SYN-ACK resent while the timer is still
 * queued answers a repeated SYN (tcp_check_req).
 */
static __always_inline __u8 synack_reason(struct request_sock *req,
					  const bool direct)
{
	struct hlist_node **pprev =
		HUATUO_READ(direct, req, rsk_timer.entry.pprev);

	return pprev ? TCP_RETRANSMIT_REASON_DUPLICATE_SYN
		     : TCP_RETRANSMIT_REASON_TIMEOUT;
}

static __always_inline __u32 l3_class(__u8 family)
{
	if (family == HUATUO_AF_INET)
		return TCP_RETRANSMIT_L3_IPV4;
	if (family == HUATUO_AF_INET6)
		return TCP_RETRANSMIT_L3_IPV6;
	return TCP_RETRANSMIT_L3_OTHER;
}

static __always_inline void count(__u32 kind, __u32 reason,
				  const struct huatuo_conn *c)
{
	struct tcp_retransmit_counts *counts;
	__u32 state = c->state, l3 = l3_class(c->family), zero = 0;

	if (state >= TCP_RETRANSMIT_STATE_SLOTS)
		state = 0;
	counts = bpf_map_lookup_elem(&retransmit_counts, &zero);
	/* Per-CPU and non-reentrant on a CPU: a plain add. */
	if (counts && kind < TCP_RETRANSMIT_KINDS &&
	    reason < TCP_RETRANSMIT_REASONS)
		counts->count[kind][reason][state][l3] += 1;
}

/* Counts one retransmit, then records it if the rate limit allows. */
static __always_inline void handle(__u8 kind, __u8 reason,
				   const struct huatuo_conn *c, struct sock *sk,
				   struct sk_buff *skb, const bool direct)
{
	struct tcp_retransmit_event *e;

	count(kind, reason, c);
	if (!rate_limit_allow())
		return;

	e = events_reserve(sizeof(*e));
	if (!e)
		return;
	/* Ring buffer memory is not zeroed and every byte reaches userspace. */
	__builtin_memset(e, 0, sizeof(*e));

	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = huatuo_sock_cgroup_id(sk, direct);
	e->netns_inum = huatuo_sock_netns_inum(sk, direct);
	if (skb)
		e->len = HUATUO_READ(direct, skb, len);
	e->sport = c->sport;
	e->dport = c->dport;
	e->family = c->family;
	e->state = c->state;
	e->kind = kind;
	e->reason = reason;
	__builtin_memcpy(e->saddr, c->saddr, sizeof(e->saddr));
	__builtin_memcpy(e->daddr, c->daddr, sizeof(e->daddr));

	events_submit(e);
}

/*
 * Since 6.14 the tracepoint also fires for attempts that sent nothing
 * (err != 0, e.g. -EBUSY while the original is still queued in the host,
 * retried later). Older kernels never reported those, so neither do we.
 */
static __always_inline void handle_skb(struct sock *sk, struct sk_buff *skb,
				       int err, const bool direct)
{
	struct huatuo_conn c = {};

	if (!sk || err)
		return;
	huatuo_read_conn(&sk->__sk_common, &c, direct);
	handle(TCP_RETRANSMIT_KIND_DATA, data_reason(sk, direct), &c, sk, skb,
	       direct);
}

/* The connection comes from the request, netns and cgroup from the listener. */
static __always_inline void handle_synack(struct sock *sk,
					  struct request_sock *req, const bool direct)
{
	struct huatuo_conn c = {};

	if (!sk || !req)
		return;
	huatuo_read_conn(&req->__req_common, &c, direct);
	handle(TCP_RETRANSMIT_KIND_SYNACK, synack_reason(req, direct), &c, sk,
	       NULL, direct);
}

/*
 * tp_btf arguments are the tracepoint prototype without its leading
 * `void *__data`: (sk, skb, err [6.14+]). Reading a slot the kernel lacks
 * fails verification, so err is guarded by a CO-RE check on the matching
 * trace_event_raw_tcp_retransmit_skb field; both changed together.
 */
SEC("tp_btf/tcp_retransmit_skb")
int tcp_retransmit_skb_btf(__u64 *ctx)
{
	int err = 0;

	if (bpf_core_field_exists(struct trace_event_raw_tcp_retransmit_skb, err))
		err = (int)ctx[2];
	handle_skb((struct sock *)ctx[0], (struct sk_buff *)ctx[1], err, true);
	return 0;
}

/* (sk, req): the listener (or a Fast Open child) and the pending connection. */
SEC("tp_btf/tcp_retransmit_synack")
int tcp_retransmit_synack_btf(__u64 *ctx)
{
	handle_synack((struct sock *)ctx[0], (struct request_sock *)ctx[1], true);
	return 0;
}

/*
 * The leading fields of the classic tracepoint records, at the same offsets
 * since the tracepoints gained them (4.15/4.16). Declared here without CO-RE
 * so they load on kernels whose record struct has another name (before
 * 6.14, tcp_retransmit_skb used trace_event_raw_tcp_event_sk_skb).
 */
struct tr_skb_record {
	__u64 common; /* struct trace_entry */
	void *skbaddr;
	void *skaddr;
};

struct tr_synack_record {
	__u64 common; /* struct trace_entry */
	void *skaddr;
	void *req;
};

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tcp_retransmit_skb_tp(struct tr_skb_record *ctx)
{
	int err = 0;

	if (bpf_core_field_exists(struct trace_event_raw_tcp_retransmit_skb, err))
		err = ((struct trace_event_raw_tcp_retransmit_skb *)ctx)->err;
	handle_skb(ctx->skaddr, ctx->skbaddr, err, false);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_synack")
int tcp_retransmit_synack_tp(struct tr_synack_record *ctx)
{
	handle_synack(ctx->skaddr, ctx->req, false);
	return 0;
}
