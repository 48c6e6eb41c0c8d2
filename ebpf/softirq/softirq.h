/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * softirq ABI: the only C definition of what the softirq tracer hands to
 * userspace.
 *
 * The Rust mirror lives in huatuo_ebpf::softirq and a test checks it against
 * this struct as it appears in the object's BTF, so any change here must be
 * made there too. Fixed-width fields, largest first: no padding.
 */
#ifndef __SOFTIRQ_H
#define __SOFTIRQ_H

/*
 * NR_SOFTIRQS, the same ten vectors (HI .. RCU) on every kernel since 4.5:
 * the rows of the `latency_us` histogram and of the raise timestamps.
 */
#define SOFTIRQ_VECTORS 10

#define SOFTIRQ_COMM_LEN 16

/*
 * Record in ring buffer `events`: one softirq whose raise-to-entry latency
 * reached latency_threshold_ns.
 */
struct softirq_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns() at entry: CLOCK_MONOTONIC */
	__u64 latency_ns; /* from the first raise of the vector to its handler's entry */
	__u64 cgroup_id;  /* v2 cgroup of the task that was running */
	__u32 cpu;
	__u32 vector;     /* the kernel's softirq number, e.g. 3 = NET_RX */
	__u32 pid;        /* tgid of the task that was running (0: idle) */
	__u32 tid;
	__u8 comm[SOFTIRQ_COMM_LEN]; /* NUL-padded */
};

#endif /* __SOFTIRQ_H */
