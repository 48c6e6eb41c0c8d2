/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sched_tick ABI: the only C definition of what sched_tick hands to
 * userspace. The Rust mirror is huatuo_ebpf::sched_tick; a test checks it
 * against this struct as it appears in the object's BTF. Fixed-width fields,
 * largest first, no implicit padding.
 */
#ifndef __SCHED_TICK_H
#define __SCHED_TICK_H

#include "huatuo_stack.bpf.h"

#define SCHED_TICK_COMM_LEN 16

/* Record in ring buffer `events`: one scheduler tick that fired late. */
struct sched_tick_event {
	__u64 ts_ns;     /* when the tick ran: CLOCK_MONOTONIC */
	__u64 delay_ns;  /* how long after its programmed expiry */
	__u64 cgroup_id; /* v2 cgroup of the interrupted task */
	__u32 pid;       /* its process (tgid); 0 for the idle task */
	__u32 tid;
	__u32 cpu;
	__u32 pad;
	char comm[SCHED_TICK_COMM_LEN];
	struct huatuo_kstack stack; /* from the tick back into the interrupted code */
};

#endif /* __SCHED_TICK_H */
