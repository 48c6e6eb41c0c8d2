// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * runqlat: how long tasks wait on a run queue before they run, as an
 * in-kernel log2 histogram of microseconds (no ring buffer records).
 *
 * A task starts waiting when it is woken (sched_wakeup, sched_wakeup_new)
 * or preempted while still runnable (sched_switch away from it), and stops
 * when sched_switch picks it. The wait start is kept per thread id in a
 * bounded hash map; the idle task (tid 0) is never tracked.
 *
 * Two entry points per tracepoint with one body: userspace tries tp_btf
 * (task pointers, no copy of the trace record) and falls back to the
 * tracepoint.
 */

/* Metric-only object: the shared ring buffer stays empty, keep it one page. */
#define HUATUO_EVENTS_BYTES 4096

#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "huatuo_hist.bpf.h"
#include "runqlat.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

HUATUO_HIST_MAP(runqlat_hist, RUNQLAT_ROWS);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RUNQLAT_MAX_QUEUED);
	__type(key, __u32);   /* thread id */
	__type(value, __u64); /* bpf_ktime_get_ns() when it started waiting */
} waiting_since SEC(".maps");

/* Before 5.14 the task state field was `state`. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline void start_waiting(__u32 tid)
{
	__u64 now;

	if (!tid)
		return;
	now = bpf_ktime_get_ns();
	/* Replacing an existing key cannot fail; only a new one finds the map full. */
	if (bpf_map_update_elem(&waiting_since, &tid, &now, BPF_ANY))
		count_counter_map_full();
}

static __always_inline void stop_waiting(__u32 tid)
{
	__u64 *since = bpf_map_lookup_elem(&waiting_since, &tid);
	__u64 waited_us;

	/* Not tracked: the idle task, or it started waiting before we attached. */
	if (!since)
		return;
	waited_us = (bpf_ktime_get_ns() - *since) / 1000;
	bpf_map_delete_elem(&waiting_since, &tid);
	huatuo_hist_add(&runqlat_hist, RUNQLAT_ROW_HOST, waited_us);
}

SEC("tp_btf/sched_wakeup")
int runqlat_wakeup_btf(__u64 *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	start_waiting(p->pid);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int runqlat_wakeup_new_btf(__u64 *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	start_waiting(p->pid);
	return 0;
}

SEC("tp_btf/sched_switch")
int runqlat_switch_btf(__u64 *ctx)
{
	bool preempt = (bool)ctx[0];
	struct task_struct *prev = (struct task_struct *)ctx[1];
	struct task_struct *next = (struct task_struct *)ctx[2];
	long state;

	if (bpf_core_field_exists(prev->__state))
		state = BPF_CORE_READ(prev, __state);
	else
		state = BPF_CORE_READ((struct task_struct___pre514 *)prev, state);
	/* Still runnable (TASK_RUNNING is 0): it goes back to waiting for a CPU. */
	if (preempt || state == 0)
		start_waiting(prev->pid);
	stop_waiting(next->pid);
	return 0;
}

SEC("tracepoint/sched/sched_wakeup")
int runqlat_wakeup_tp(struct trace_event_raw_sched_wakeup_template *ctx)
{
	start_waiting(ctx->pid);
	return 0;
}

SEC("tracepoint/sched/sched_wakeup_new")
int runqlat_wakeup_new_tp(struct trace_event_raw_sched_wakeup_template *ctx)
{
	start_waiting(ctx->pid);
	return 0;
}

/*
 * The tracepoint reports the state as a TASK_REPORT bit (low 8 bits; the
 * highest, 0x80, is an idle kthread's sleep), 0 for a runnable task and
 * TASK_REPORT_MAX (0x100) for a preempted one: both of those keep waiting.
 */
#define RUNQLAT_TASK_REPORT_MASK 0xff

SEC("tracepoint/sched/sched_switch")
int runqlat_switch_tp(struct trace_event_raw_sched_switch *ctx)
{
	if (!(ctx->prev_state & RUNQLAT_TASK_REPORT_MASK))
		start_waiting(ctx->prev_pid);
	stop_waiting(ctx->next_pid);
	return 0;
}
