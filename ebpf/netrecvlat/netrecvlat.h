/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * netrecvlat ABI: the only C definition of what netrecvlat shares with
 * userspace.
 *
 * The Rust mirror lives in huatuo_ebpf::netrecvlat and a test checks it
 * against these types as they appear in the object's BTF, so any change here
 * must be made there too. Fields are fixed-width and ordered largest first
 * so the compiler inserts no padding. No bitfields.
 */
#ifndef __NETRECVLAT_H
#define __NETRECVLAT_H

#define NETRECVLAT_ADDR_LEN 16
#define NETRECVLAT_COMM_LEN 16
#define NETRECVLAT_IFNAME_LEN 16

/* Where a received TCP packet was when its latency was taken. */
enum netrecvlat_stage {
	/* Entering the stack: net:netif_receive_skb. */
	NETRECVLAT_STAGE_NETIF = 0,
	/* Processed by its established TCP socket: tcp:tcp_probe. */
	NETRECVLAT_STAGE_TCP = 1,
	/* Copied to the reading process: skb:skb_copy_datagram_iovec. */
	NETRECVLAT_STAGE_USER_COPY = 2,
	NETRECVLAT_STAGES = 3,
};

/* Why a packet's latency could not be taken (counted, never reported). */
enum netrecvlat_skip {
	/* skb->tstamp is 0: nobody enabled RX software timestamps. */
	NETRECVLAT_SKIP_NO_TIMESTAMP = 0,
	/*
	 * The stamp lies in the future, or before the last step of the wall
	 * clock that userspace detected: the latency would be nonsense.
	 */
	NETRECVLAT_SKIP_CLOCK_STEP = 1,
	/* Stamped with a clock we cannot compare with (CLOCK_TAI). */
	NETRECVLAT_SKIP_OTHER_CLOCK = 2,
	NETRECVLAT_SKIPS = 3,
};

/* Value of map `skipped` (PERCPU_ARRAY, one entry). */
struct netrecvlat_skips {
	__u64 count[NETRECVLAT_STAGES][NETRECVLAT_SKIPS];
};

/*
 * Value of map `wall_clock` (ARRAY, one entry), written by userspace before
 * the programs attach and refreshed while they run. Receive stamps are
 * CLOCK_REALTIME; the programs measure with CLOCK_MONOTONIC.
 */
struct netrecvlat_wall_clock {
	/* CLOCK_REALTIME - CLOCK_MONOTONIC, in ns. */
	__s64 real_minus_mono_ns;
	/*
	 * CLOCK_MONOTONIC ns at which userspace last saw the wall clock step;
	 * packets stamped before it are skipped (NETRECVLAT_SKIP_CLOCK_STEP).
	 */
	__u64 stepped_at_mono_ns;
};

/*
 * Record in ring buffer `events`: a TCP packet whose time since it was
 * stamped on receive exceeded its stage's threshold. Source is the sender
 * (the peer), destination the local end. IPv4-mapped IPv6 connections are
 * reported as IPv4.
 */
struct netrecvlat_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 latency_ns; /* from the receive stamp to this stage */
	__u64 cgroup_id;  /* of the socket's owner; 0 at NETIF (no socket yet) */
	__u32 netns_inum; /* of the socket, or of the device at NETIF */
	__u32 pid;        /* tgid of the reader at USER_COPY, else 0 */
	__u32 tid;        /* pid of the reader at USER_COPY, else 0 */
	__u32 len;        /* skb->len */
	__u16 sport;      /* host order */
	__u16 dport;      /* host order */
	__u8 family;      /* AF_INET or AF_INET6 */
	__u8 state;       /* TCP_* of the socket; 0 at NETIF */
	__u8 stage;       /* enum netrecvlat_stage */
	__u8 mono_stamp;  /* 1: the stamp was a sender's CLOCK_MONOTONIC delivery time */
	__u8 saddr[NETRECVLAT_ADDR_LEN]; /* network order; IPv4 in bytes 0..4 */
	__u8 daddr[NETRECVLAT_ADDR_LEN];
	char comm[NETRECVLAT_COMM_LEN];     /* reader at USER_COPY, else empty */
	char ifname[NETRECVLAT_IFNAME_LEN]; /* receiving device at NETIF, else empty */
};

#endif /* __NETRECVLAT_H */
