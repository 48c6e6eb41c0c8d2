/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * oom ABI: the only C definition of what the oom tracer hands to userspace.
 *
 * The Rust mirror lives in huatuo_ebpf::oom and a test checks it against
 * this struct as it appears in the object's BTF, so any change here must be
 * made there too. Fields are fixed-width and ordered largest first so the
 * compiler inserts no padding; the explicit pad bytes are always zero.
 */
#ifndef __OOM_H
#define __OOM_H

/* oom_event.flags */
/*
 * The kernel passed the victim's task (tp_btf on Linux 6.9+): victim_pid is
 * its thread group id and the victim_memcg_* fields were read from it.
 * Otherwise victim_pid is the thread the kernel reported, and the victim's
 * memory cgroup is left to userspace.
 */
#define OOM_F_VICTIM_TASK (1U << 0)
/*
 * Comm, uid, oom_score_adj and the memory sizes of the victim are known
 * (Linux 6.9+, either entry point); before that the kernel reports only
 * the victim's pid and these fields are 0.
 */
#define OOM_F_VICTIM_DETAILS (1U << 1)

#define OOM_COMM_LEN 16

/* Record in ring buffer `events`: one per task chosen by the OOM killer. */
struct oom_event {
	__u64 ts_ns;             /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 trigger_cgroup_id; /* v2 cgroup of current (the allocating task) */
	/* kernfs ids (directory inodes) in the memory controller's hierarchy, v1 or v2; 0 if unknown */
	__u64 trigger_memcg_id;
	__u64 victim_memcg_id;
	/* page counter of the victim's memory cgroup at the kill, bytes; 0 if unknown or root */
	__u64 victim_memcg_usage;
	/* victim's memory, bytes (the tracepoint's kB, or pages from its mm) */
	__u64 victim_total_vm;
	__u64 victim_anon_rss;
	__u64 victim_file_rss;
	__u64 victim_shmem_rss;
	__u64 victim_pgtables;
	__u32 trigger_pid;       /* tgid of current */
	__u32 trigger_tid;       /* pid of current */
	__u32 victim_pid;        /* see OOM_F_VICTIM_TASK */
	__u32 victim_tid;        /* the thread the kernel marked */
	__u32 victim_uid;        /* in the initial user namespace */
	__u32 flags;             /* OOM_F_* */
	__s16 victim_oom_score_adj;
	__u8 pad[6];
	__u8 trigger_comm[OOM_COMM_LEN]; /* NUL-padded */
	__u8 victim_comm[OOM_COMM_LEN];  /* NUL-padded */
};

#endif /* __OOM_H */
