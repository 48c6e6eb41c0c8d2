/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * hungtask ABI: the only C definition of what the hungtask tracer hands to
 * userspace.
 *
 * The Rust mirror lives in huatuo_ebpf::hungtask and a test checks it
 * against this struct as it appears in the object's BTF, so any change here
 * must be made there too. Fixed-width fields, largest first: no padding.
 */
#ifndef __HUNGTASK_H
#define __HUNGTASK_H

/* hungtask_event.flags */
/*
 * The kernel passed the hung task itself (tp_btf): tgid and cgroup_id were
 * read from it. Otherwise only its thread id and comm are known and both
 * fields are 0.
 */
#define HUNGTASK_F_TASK (1U << 0)

#define HUNGTASK_COMM_LEN 16

/* Record in ring buffer `events`: one per task khungtaskd reports. */
struct hungtask_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 cgroup_id; /* v2 cgroup of the hung task; see HUNGTASK_F_TASK */
	__u32 tid;       /* the hung thread (the kernel's pid) */
	__u32 tgid;      /* its process; see HUNGTASK_F_TASK */
	__u32 flags;     /* HUNGTASK_F_* */
	/*
	 * Jiffies since khungtaskd's check that first saw the task no longer
	 * switching (task->last_switch_time); see HUNGTASK_F_TASK. The task
	 * blocked up to one check interval before that check, so this is a
	 * lower bound of its blocked time.
	 */
	__u32 blocked_jiffies;
	__u8 comm[HUNGTASK_COMM_LEN]; /* NUL-padded */
};

#endif /* __HUNGTASK_H */
