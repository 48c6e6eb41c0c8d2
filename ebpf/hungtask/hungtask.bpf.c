// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * hungtask: every task the kernel's hung-task detector (khungtaskd) reports
 * as blocked in TASK_UNINTERRUPTIBLE for longer than
 * kernel.hung_task_timeout_secs (sched:sched_process_hang).
 *
 * The stacks are left to userspace: the task is still blocked when the
 * record arrives, and /proc/<tid>/stack is already symbolized. Reports are
 * rare (at most hung_task_check_count per check interval), so there is no
 * rate limit; every report is also counted in `hangs`, which userspace turns
 * into the counter metric, so the count stays exact even if the ring buffer
 * overflows.
 *
 * Two entry points with one body: userspace tries tp_btf (which has the
 * task, hence its process and cgroup) and falls back to the tracepoint.
 */

/* A handful of records per check interval; 256 KiB would sit unused. */
#define HUATUO_EVENTS_BYTES (16 * 1024)

#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "hungtask.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

HUATUO_BTF_EXPORT(struct hungtask_event, hungtask_event);

_Static_assert(sizeof(struct hungtask_event) == 48, "event layout");

/* Slot 0: reports seen, summed over CPUs by userspace. */
HUATUO_PERCPU_ARRAY(hangs, __u64, 1);

/*
 * Before Linux 7.0 the tracepoint's comm was an inline array; vmlinux.h
 * has the newer __data_loc layout, so CO-RE picks the flavour at load.
 */
struct trace_event_raw_sched_process_hang___inline_comm {
	struct trace_entry ent;
	char comm[16];
	pid_t pid;
} __attribute__((preserve_access_index));

/* Counts the report and reserves a zeroed record for it. */
static __always_inline struct hungtask_event *begin_event(void)
{
	struct hungtask_event *e;
	__u32 key = 0;
	__u64 *count;

	count = bpf_map_lookup_elem(&hangs, &key);
	if (count)
		*count += 1;

	e = events_reserve(sizeof(*e));
	if (!e)
		return NULL;
	/* Ring buffer memory is not zeroed and every byte reaches userspace. */
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	return e;
}

SEC("tp_btf/sched_process_hang")
int hungtask_btf(__u64 *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx[0];
	struct hungtask_event *e = begin_event();

	if (!e)
		return 0;
	e->flags = HUNGTASK_F_TASK;
	e->tid = BPF_CORE_READ(task, pid);
	e->tgid = BPF_CORE_READ(task, tgid);
	/*
	 * Attribution keys on the v2 cgroup; current is khungtaskd, so the
	 * helper for the current task's cgroup would name the wrong one.
	 */
	e->cgroup_id = huatuo_task_cgroup_id(task, false);
	/* The detector's own bookkeeping, in jiffies; userspace knows HZ. */
	if (bpf_core_field_exists(task->last_switch_time))
		e->blocked_jiffies = bpf_jiffies64() -
				     BPF_CORE_READ(task, last_switch_time);
	bpf_core_read(e->comm, sizeof(e->comm), &task->comm);
	events_submit(e);
	return 0;
}

SEC("tracepoint/sched/sched_process_hang")
int hungtask_tp(struct trace_event_raw_sched_process_hang *ctx)
{
	struct trace_event_raw_sched_process_hang___inline_comm *old = (void *)ctx;
	struct hungtask_event *e = begin_event();
	__u32 comm_off;

	if (!e)
		return 0;
	if (bpf_core_field_exists(ctx->__data_loc_comm)) {
		e->tid = ctx->pid;
		/* __data_loc: low 16 bits are the string's offset in the record. */
		comm_off = ctx->__data_loc_comm & 0xffff;
		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm),
					  (void *)ctx + comm_off);
	} else {
		e->tid = BPF_CORE_READ(old, pid);
		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), old->comm);
	}
	events_submit(e);
	return 0;
}
