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

/* Rows of the `compact_us` histogram: who ran a compaction of a zone. */
#define MEMRECLAIM_COMPACT_DIRECT 0    /* the page allocator, on the allocating task's time */
#define MEMRECLAIM_COMPACT_KCOMPACTD 1 /* the background kcompactd thread, proactive included */
#define MEMRECLAIM_COMPACT_MANUAL 2    /* a write to vm.compact_memory or a node's compact file */
#define MEMRECLAIM_COMPACT_KINDS 3

/* Rows of the `kswapd` array: NUMA nodes; further nodes are not counted. */
#define MEMRECLAIM_MAX_NODES 64

/*
 * Value of the `kswapd` array, one per node, written only by that node's
 * kswapd thread: a wake (vmscan:mm_vmscan_kswapd_wake) starts a run of
 * balancing, the sleep that follows (vmscan:mm_vmscan_kswapd_sleep) ends it.
 */
struct memreclaim_kswapd {
	__u64 awake_since_ns; /* bpf_ktime_get_ns() at the first wake of the current run; 0 asleep */
	__u64 awake_ns;       /* total time of the runs that ended */
	__u64 wakeups;        /* wakes: one per balancing pass, several per run under pressure */
};

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
