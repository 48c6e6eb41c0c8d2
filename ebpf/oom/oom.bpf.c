// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * oom: every task the OOM killer chooses (oom:mark_victim).
 *
 * The task running at that point is the one whose allocation failed (the
 * trigger); the victim is described by the tracepoint, and on kernels that
 * pass the victim's task to BTF-typed tracepoints (6.9+) also by reading
 * that task, which is the only moment its memory cgroup is certain to
 * exist. OOM kills are rare, so there is no rate limit and every read is
 * the simple probe-read flavour.
 *
 * Two entry points with one body: userspace tries tp_btf (which has the
 * victim's task) and falls back to the classic tracepoint.
 */

/* A few records at most per OOM; the default 256 KiB would sit unused. */
#define HUATUO_EVENTS_BYTES (64 * 1024)

#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "huatuo_memcg.bpf.h"
#include "oom.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * log2 of the page size, for converting page counts to bytes; set by
 * userspace before load (PAGE_SHIFT is a macro, absent from BTF).
 */
const volatile __u32 page_shift = 12;

/*
 * Indexes of mm_struct.rss_stat: an anonymous enum in the kernel, so CO-RE
 * cannot relocate it; the values have not changed since Linux 4.5.
 */
#define OOM_MM_FILEPAGES 0
#define OOM_MM_ANONPAGES 1
#define OOM_MM_SHMEMPAGES 3

HUATUO_BTF_EXPORT(struct oom_event, oom_event);

_Static_assert(sizeof(struct oom_event) == 144, "event layout");
_Static_assert(__builtin_offsetof(struct oom_event, trigger_comm) == 112,
	       "event layout");

static __always_inline __u64 pages_to_bytes(__u64 pages)
{
	return pages << page_shift;
}

/* get_mm_counter(), as the tracepoint computes it: the approximate count. */
static __always_inline __u64 rss_bytes(struct mm_struct *mm, int member)
{
	s64 pages = BPF_CORE_READ(mm, rss_stat[member].count);

	return pages > 0 ? pages_to_bytes(pages) : 0;
}

/*
 * What tp_btf adds: the victim read from its task. Only kernels whose
 * tracepoint passes the task get here, and those (6.9+) all keep rss_stat
 * as percpu counters.
 */
static __always_inline void fill_victim_task(struct oom_event *e,
					     struct task_struct *task, __u32 uid)
{
	struct cgroup_subsys_state *css = memory_css(task);
	struct mm_struct *mm = BPF_CORE_READ(task, mm);

	e->flags |= OOM_F_VICTIM_TASK | OOM_F_VICTIM_DETAILS;
	e->victim_pid = BPF_CORE_READ(task, tgid);
	e->victim_tid = BPF_CORE_READ(task, pid);
	e->victim_uid = uid;
	e->victim_oom_score_adj = BPF_CORE_READ(task, signal, oom_score_adj);
	bpf_core_read(e->victim_comm, sizeof(e->victim_comm), &task->comm);

	e->victim_memcg_id = css_cgroup_id(css);
	/* The root memory cgroup is never charged: its counter means nothing. */
	if (css && BPF_CORE_READ(css, parent)) {
		struct mem_cgroup *memcg = (void *)css -
			bpf_core_field_offset(struct mem_cgroup, css);

		e->victim_memcg_usage =
			pages_to_bytes(BPF_CORE_READ(memcg, memory.usage.counter));
	}

	/* The kernel marks only a task that still has its mm. */
	if (!mm)
		return;
	e->victim_total_vm = pages_to_bytes(BPF_CORE_READ(mm, total_vm));
	e->victim_anon_rss = rss_bytes(mm, OOM_MM_ANONPAGES);
	e->victim_file_rss = rss_bytes(mm, OOM_MM_FILEPAGES);
	e->victim_shmem_rss = rss_bytes(mm, OOM_MM_SHMEMPAGES);
	e->victim_pgtables = BPF_CORE_READ(mm, pgtables_bytes.counter);
}

/* Reserves a record and fills what both entry points know: the trigger. */
static __always_inline struct oom_event *begin_event(void)
{
	struct task_struct *current;
	struct oom_event *e;
	__u64 id;

	e = events_reserve(sizeof(*e));
	if (!e)
		return NULL;
	/* Ring buffer memory is not zeroed and every byte reaches userspace. */
	__builtin_memset(e, 0, sizeof(*e));

	id = bpf_get_current_pid_tgid();
	e->ts_ns = bpf_ktime_get_ns();
	e->trigger_pid = id >> 32;
	e->trigger_tid = (__u32)id;
	e->trigger_cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->trigger_comm, sizeof(e->trigger_comm));
	current = (struct task_struct *)bpf_get_current_task();
	e->trigger_memcg_id = css_cgroup_id(memory_css(current));
	return e;
}

/*
 * Before Linux 6.9 the tracepoint was mark_victim(int pid), with only a pid
 * field; the task and the other fields arrived together, so the fields of
 * trace_event_raw_mark_victim tell which prototype this kernel has.
 */
SEC("tp_btf/mark_victim")
int oom_mark_victim_btf(__u64 *ctx)
{
	struct oom_event *e = begin_event();

	if (!e)
		return 0;
	if (bpf_core_field_exists(struct trace_event_raw_mark_victim, total_vm)) {
		fill_victim_task(e, (struct task_struct *)ctx[0], (__u32)ctx[1]);
	} else {
		e->victim_pid = (__u32)ctx[0];
		e->victim_tid = e->victim_pid;
	}
	events_submit(e);
	return 0;
}

SEC("tracepoint/oom/mark_victim")
int oom_mark_victim_tp(struct trace_event_raw_mark_victim *ctx)
{
	struct oom_event *e = begin_event();
	__u32 comm_off;

	if (!e)
		return 0;
	e->victim_pid = ctx->pid;
	e->victim_tid = e->victim_pid;
	if (bpf_core_field_exists(ctx->total_vm)) {
		e->flags |= OOM_F_VICTIM_DETAILS;
		/* The tracepoint reports sizes in kB. */
		e->victim_total_vm = (__u64)ctx->total_vm << 10;
		e->victim_anon_rss = (__u64)ctx->anon_rss << 10;
		e->victim_file_rss = (__u64)ctx->file_rss << 10;
		e->victim_shmem_rss = (__u64)ctx->shmem_rss << 10;
		e->victim_pgtables = (__u64)ctx->pgtables << 10;
		e->victim_uid = ctx->uid;
		e->victim_oom_score_adj = ctx->oom_score_adj;
		/* __data_loc: low 16 bits are the string's offset in the record. */
		comm_off = ctx->__data_loc_comm & 0xffff;
		bpf_probe_read_kernel_str(e->victim_comm, sizeof(e->victim_comm),
					  (void *)ctx + comm_off);
	}
	events_submit(e);
	return 0;
}
