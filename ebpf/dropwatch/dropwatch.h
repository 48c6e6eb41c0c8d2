/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dropwatch ABI: the only C definition of what dropwatch hands to userspace.
 *
 * The Rust mirror lives in huatuo_ebpf::dropwatch and a test checks it
 * against these structs as they appear in the object's BTF, so any change
 * here must be made there too. Fields are fixed-width and ordered largest
 * first so the compiler inserts no padding; the explicit pad bytes are
 * always zero. No bitfields: their layout is compiler-defined.
 */
#ifndef __DROPWATCH_H
#define __DROPWATCH_H

/* dropwatch_event.flags */
/* The kernel has no drop reason here (pre-5.17); `reason` is 0. */
#define DROPWATCH_F_REASON_UNKNOWN (1U << 0)
/* No IPv4/IPv6 header could be read: family, addresses, ports are 0. */
#define DROPWATCH_F_NO_L3 (1U << 1)

#define DROPWATCH_COMM_LEN 16
#define DROPWATCH_IFNAME_LEN 16
#define DROPWATCH_ADDR_LEN 16

/*
 * Drops are counted by (reason, L3 class, L4 class). Reasons below
 * DROPWATCH_REASON_SLOTS (every core reason) index the per-CPU array
 * `drop_counts_by_reason`, whose lookup the verifier inlines: no hashing on
 * the per-drop path. Others (subsystem reasons, 0x10000 and up) go to the
 * PERCPU_HASH `drop_counts`, keyed by the exact protocol numbers.
 */
#define DROPWATCH_REASON_SLOTS 256

enum dropwatch_l3_class {
	DROPWATCH_L3_OTHER = 0,
	DROPWATCH_L3_IPV4 = 1,
	DROPWATCH_L3_IPV6 = 2,
	DROPWATCH_L3_CLASSES = 3,
};

enum dropwatch_l4_class {
	DROPWATCH_L4_OTHER = 0,
	DROPWATCH_L4_TCP = 1,
	DROPWATCH_L4_UDP = 2,
	DROPWATCH_L4_ICMP = 3,
	DROPWATCH_L4_ICMPV6 = 4,
	DROPWATCH_L4_SCTP = 5,
	DROPWATCH_L4_CLASSES = 6,
};

/* Value of map `drop_counts_by_reason` (PERCPU_ARRAY, index = reason). */
struct dropwatch_reason_counts {
	__u64 count[DROPWATCH_L3_CLASSES][DROPWATCH_L4_CLASSES];
};

/* Key of map `drop_counts` (PERCPU_HASH, u64 value). */
struct dropwatch_count_key {
	__u32 reason;   /* enum skb_drop_reason; 0 if unknown */
	__u16 l3_proto; /* ethertype, host order; 0 if unknown */
	__u8 l4_proto;  /* IPPROTO_*; 0 if unknown */
	__u8 pad;
};

/* Record in ring buffer `events`. */
struct dropwatch_event {
	__u64 ts_ns;        /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 location;     /* kernel address that freed the skb */
	__u64 cgroup_id;    /* v2: socket owner's, else current's if in the packet's netns, else 0 */
	__u64 netns_cookie; /* struct net.net_cookie; 0 if unavailable */
	__u32 netns_inum;   /* /proc/<pid>/ns/net inode; 0 if unknown */
	__u32 pid;          /* tgid of current */
	__u32 tid;          /* pid of current */
	__u32 reason;       /* enum skb_drop_reason; 0 if unknown */
	__u32 flags;        /* DROPWATCH_F_* */
	__u32 ifindex;      /* skb->dev; 0 if none */
	__u32 len;          /* skb->len */
	__u16 l3_proto;     /* ethertype, host order */
	__u16 sport;        /* host order; TCP/UDP/UDP-Lite/SCTP only */
	__u16 dport;        /* host order; TCP/UDP/UDP-Lite/SCTP only */
	__u8 l4_proto;      /* IPPROTO_* */
	__u8 family;        /* AF_INET, AF_INET6 or 0 */
	__u8 tcp_state;     /* TCP_* of the skb's socket when TCP; else 0 */
	__u8 pad[3];
	__u8 saddr[DROPWATCH_ADDR_LEN]; /* network order; IPv4 in bytes 0..4 */
	__u8 daddr[DROPWATCH_ADDR_LEN];
	__u8 ifname[DROPWATCH_IFNAME_LEN]; /* NUL-padded */
	__u8 comm[DROPWATCH_COMM_LEN];     /* NUL-padded */
};

#endif /* __DROPWATCH_H */
