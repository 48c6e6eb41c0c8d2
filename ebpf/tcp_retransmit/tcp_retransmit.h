/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tcp_retransmit ABI: the only C definition of what tcp_retransmit hands to
 * userspace.
 *
 * The Rust mirror lives in huatuo_ebpf::tcp_retransmit and a test checks it
 * against these types as they appear in the object's BTF, so any change here
 * must be made there too. Fields are fixed-width and ordered largest first
 * so the compiler inserts no padding. No bitfields: their layout is
 * compiler-defined.
 */
#ifndef __TCP_RETRANSMIT_H
#define __TCP_RETRANSMIT_H

#define TCP_RETRANSMIT_ADDR_LEN 16

/* What was sent again. */
enum tcp_retransmit_kind {
	/* A segment of the send queue, SYN and FIN included (tcp_retransmit_skb). */
	TCP_RETRANSMIT_KIND_DATA = 0,
	/* A listener's SYN-ACK for a pending connection (tcp_retransmit_synack). */
	TCP_RETRANSMIT_KIND_SYNACK = 1,
	TCP_RETRANSMIT_KINDS = 2,
};

/*
 * Why it was sent again, from the socket's state at that moment:
 *  - TIMEOUT: the retransmission timer fired. For data, the connection is
 *    in RTO loss recovery (icsk_ca_state == TCP_CA_Loss), which the timer
 *    enters before resending; segments resent later in that recovery, or by
 *    an MTU-probe failure (tcp_simple_retransmit), are counted here too. For
 *    a SYN-ACK, the request's own timer is not pending (it is running).
 *  - FAST_RETRANSMIT: duplicate ACKs, SACK or RACK marked segments lost and
 *    the connection is in fast recovery (TCP_CA_Recovery).
 *  - LOSS_PROBE: a tail loss probe (RFC 8985): not in recovery, with the
 *    probe timer being the pending one (icsk_pending == ICSK_TIME_LOSS_PROBE).
 *  - DUPLICATE_SYN: a SYN-ACK resent because the peer sent its SYN again
 *    (the request's timer is still pending).
 *  - OTHER: anything else.
 */
enum tcp_retransmit_reason {
	TCP_RETRANSMIT_REASON_OTHER = 0,
	TCP_RETRANSMIT_REASON_TIMEOUT = 1,
	TCP_RETRANSMIT_REASON_FAST_RETRANSMIT = 2,
	TCP_RETRANSMIT_REASON_LOSS_PROBE = 3,
	TCP_RETRANSMIT_REASON_DUPLICATE_SYN = 4,
	TCP_RETRANSMIT_REASONS = 5,
};

enum tcp_retransmit_l3_class {
	TCP_RETRANSMIT_L3_OTHER = 0,
	TCP_RETRANSMIT_L3_IPV4 = 1,
	TCP_RETRANSMIT_L3_IPV6 = 2,
	TCP_RETRANSMIT_L3_CLASSES = 3,
};

/* TCP_* states index this directly; 0 holds states at or beyond it. */
#define TCP_RETRANSMIT_STATE_SLOTS 16

/*
 * Value of map `retransmit_counts` (PERCPU_ARRAY, one entry): every
 * retransmit, by kind, reason, socket state and address family.
 */
struct tcp_retransmit_counts {
	__u64 count[TCP_RETRANSMIT_KINDS][TCP_RETRANSMIT_REASONS]
		   [TCP_RETRANSMIT_STATE_SLOTS][TCP_RETRANSMIT_L3_CLASSES];
};

/*
 * Record in ring buffer `events`. Source is the local end (the sender of
 * the retransmitted segment), destination the peer. IPv4-mapped IPv6
 * connections are reported as IPv4.
 */
struct tcp_retransmit_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 cgroup_id;  /* of the socket's owner (of the current task before 5.15) */
	__u32 netns_inum; /* /proc/<pid>/ns/net inode; 0 if unknown */
	__u32 len;        /* skb->len; 0 for SYN-ACKs */
	__u16 sport;      /* host order */
	__u16 dport;      /* host order */
	__u8 family;      /* AF_INET, AF_INET6, or 0 if neither */
	__u8 state;       /* TCP_* of the socket (of the request for SYN-ACKs) */
	__u8 kind;        /* enum tcp_retransmit_kind */
	__u8 reason;      /* enum tcp_retransmit_reason */
	__u8 saddr[TCP_RETRANSMIT_ADDR_LEN]; /* network order; IPv4 in bytes 0..4 */
	__u8 daddr[TCP_RETRANSMIT_ADDR_LEN];
};

#endif /* __TCP_RETRANSMIT_H */
