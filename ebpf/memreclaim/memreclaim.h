/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * memreclaim ABI: the only C definition of what the memreclaim tracer hands
 * to userspace.
 *
 * The Rust mirror lives in huatuo_ebpf::memreclaim and a test checks it
 * against this struct as it appears in the object's BTF, so any change here
 * must be made there too. Fixed-width fields, largest first: no padding.
 */
#ifndef __MEMRECLAIM_H
#define __MEMRECLAIM_H

/* memreclaim_event.kind, and the rows of the `stall_us` and `stalls` maps. */
#define MEMRECLAIM_DIRECT 0 /* the page allocator reclaiming for the task */
#define MEMRECLAIM_MEMCG 1  /* reclaim in a memory cgroup over its limit */
#define MEMRECLAIM_KINDS 2

#define MEMRECLAIM_COMM_LEN 16

/* Record in ring buffer `events`: one reclaim that stalled a task for at least the threshold. */
struct memreclaim_event {
	__u64 ts_ns;        /* bpf_ktime_get_ns() at the end: CLOCK_MONOTONIC */
	__u64 duration_ns;
	__u64 nr_reclaimed; /* pages the reclaim freed */
	__u64 cgroup_id;    /* v2 cgroup of the task */
	/* kernfs id (directory inode) of the task's memory cgroup, v1 or v2; 0 if unknown */
	__u64 memcg_id;
	__u32 pid;          /* tgid */
	__u32 tid;
	__u32 kind;         /* MEMRECLAIM_* */
	__u32 pad;
	__u8 comm[MEMRECLAIM_COMM_LEN]; /* NUL-padded */
};

#endif /* __MEMRECLAIM_H */
