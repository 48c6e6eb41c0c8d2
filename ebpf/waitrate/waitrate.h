/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * waitrate ABI: per-cgroup run-queue wait split by what the CPU did
 * meanwhile, and the competitor table of a capture. Mirrored in
 * huatuo_ebpf::waitrate; a test checks the structs against the object's
 * BTF.
 */
#ifndef __WAITRATE_H
#define __WAITRATE_H

/* How a wait is charged (index into waitrate_counts.ns). */
enum waitrate_kind {
	/* The CPU ran tasks of the waiting task's own cgroup. */
	WAITRATE_INNER = 0,
	/* The CPU ran tasks of other cgroups. */
	WAITRATE_EXTERNAL = 1,
	/* The task's CFS bandwidth (quota) was exhausted: it waited throttled. */
	WAITRATE_THROTTLE = 2,
	/*
	 * The CPU was idle: the wake-up latency of an idle CPU, or time on
	 * another CPU's queue before a migration left the occupancy unknown.
	 */
	WAITRATE_OTHER = 3,
	WAITRATE_KINDS = 4,
};

/* Value of map `waits` (PERCPU_HASH keyed by the u64 v2 cgroup id). */
struct waitrate_counts {
	__u64 ns[WAITRATE_KINDS]; /* cumulative nanoseconds by kind */
	__u64 waits;              /* waits ended (task switched in) */
};

/*
 * Key of map `competitors` (PERCPU_HASH, value u64 nanoseconds): a task
 * that ran on a CPU while tasks of the capture's target waited there,
 * charged the time it ran times the number of target tasks waiting.
 */
struct waitrate_competitor {
	__u64 cgroup_id;
	__u32 tgid;
	__u32 tid;
	__u8 comm[16];
};

/* Key of map `occupancy` (HASH, value u64 nanoseconds): how long a CPU
 * has run tasks of a cgroup since the program was loaded. */
struct waitrate_occupancy_key {
	__u64 cgroup_id;
	__u32 cpu;
	__u32 pad;
};

/* Value of map `capture` (ARRAY, one entry), written by the agent. */
struct waitrate_capture {
	/* Non-zero while a capture runs: waits of cgroups in `targets` are
	 * followed per CPU, and `competitors` filled. */
	__u64 active;
};

/* Cgroups whose waits the map `waits` counts at once. */
#define WAITRATE_MAX_CGROUPS 4096
/* (cgroup, CPU) pairs of run time kept for the inner/external split. */
#define WAITRATE_MAX_OCCUPANCY 16384
/* Tasks waiting for a CPU tracked at once (host-wide run-queue depth). */
#define WAITRATE_MAX_QUEUED 16384
/* CPUs followed; waits on CPUs numbered above are charged `other`. */
#define WAITRATE_MAX_CPUS 1024
/* Cgroups of the capture's target container. */
#define WAITRATE_MAX_TARGETS 64
/* Distinct competitor tasks of one capture. */
#define WAITRATE_MAX_COMPETITORS 1024

#endif /* __WAITRATE_H */
