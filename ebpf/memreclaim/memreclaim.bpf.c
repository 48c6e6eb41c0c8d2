// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * memreclaim: tasks stalled in direct reclaim (the page allocator freeing
 * memory on the allocating task's time, vmscan:mm_vmscan_direct_reclaim_*)
 * or in memory cgroup reclaim (a charge over the cgroup's limit,
 * vmscan:mm_vmscan_memcg_reclaim_*).
 *
 * A begin stores the time per task and kind in `reclaim_start`; the end
 * counts the stall in the `stall_us` histogram (microseconds, one row per
 * kind) and, at or above the threshold, in `stalls` and as a record, rate
 * limited per CPU. The map only holds tasks inside a reclaim, so it is far
 * from full; when it is, the stall goes unmeasured and is counted as
 * tracking_map_full.
 *
 * Two entry points per tracepoint: userspace tries tp_btf and falls back to
 * the classic tracepoint. Neither needs the tracepoints' arguments beyond
 * the pages reclaimed.
 */

#define HUATUO_EVENTS_BYTES (64 * 1024)

#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "huatuo_hist.bpf.h"
#include "huatuo_memcg.bpf.h"
#include "memreclaim.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Stalls at or above this become records. Set by userspace before load. */
const volatile __u64 stall_threshold_ns = 900000000;

HUATUO_BTF_EXPORT(struct memreclaim_event, memreclaim_event);

_Static_assert(sizeof(struct memreclaim_event) == 72, "event layout");

/* Tasks inside a reclaim: (tid << 1 | kind) -> bpf_ktime_get_ns() at the begin. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u64);
} reclaim_start SEC(".maps");

/* Row = kind; values in microseconds. */
HUATUO_HIST_MAP(stall_us, MEMRECLAIM_KINDS);

/* Per kind: stalls at or above the threshold, whether or not they became records. */
HUATUO_PERCPU_ARRAY(stalls, __u64, MEMRECLAIM_KINDS);

static __always_inline __u64 start_key(__u32 kind)
{
	return (bpf_get_current_pid_tgid() & 0xffffffffULL) << 1 | kind;
}

static __always_inline void on_begin(__u32 kind)
{
	__u64 key = start_key(kind), now = bpf_ktime_get_ns();

	if (bpf_map_update_elem(&reclaim_start, &key, &now, BPF_ANY))
		count_tracking_map_full();
}

static __always_inline void emit(__u32 kind, __u64 now, __u64 duration,
				 __u64 nr_reclaimed)
{
	struct task_struct *current;
	struct memreclaim_event *e;
	__u64 id;

	e = events_reserve(sizeof(*e));
	if (!e)
		return;
	id = bpf_get_current_pid_tgid();
	e->ts_ns = now;
	e->duration_ns = duration;
	e->nr_reclaimed = nr_reclaimed;
	e->cgroup_id = bpf_get_current_cgroup_id();
	current = (struct task_struct *)bpf_get_current_task();
	e->memcg_id = css_cgroup_id(memory_css(current));
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->kind = kind;
	e->pad = 0;
	/* Fills all 16 bytes (NUL-padded). */
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	events_submit(e);
}

static __always_inline void on_end(__u32 kind, __u64 nr_reclaimed)
{
	__u64 key = start_key(kind), *start, now, duration;
	__u64 *count;

	start = bpf_map_lookup_elem(&reclaim_start, &key);
	/* Began before the programs were attached, or the map was full. */
	if (!start)
		return;
	now = bpf_ktime_get_ns();
	duration = now - *start;
	bpf_map_delete_elem(&reclaim_start, &key);
	huatuo_hist_add(&stall_us, kind, duration / 1000);
	if (duration < stall_threshold_ns)
		return;
	count = bpf_map_lookup_elem(&stalls, &kind);
	if (count)
		*count += 1;
	if (rate_limit_allow())
		emit(kind, now, duration, nr_reclaimed);
}

SEC("tp_btf/mm_vmscan_direct_reclaim_begin")
int direct_begin_btf(__u64 *ctx)
{
	on_begin(MEMRECLAIM_DIRECT);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_begin")
int direct_begin_tp(void *ctx)
{
	on_begin(MEMRECLAIM_DIRECT);
	return 0;
}

SEC("tp_btf/mm_vmscan_direct_reclaim_end")
int direct_end_btf(__u64 *ctx)
{
	on_end(MEMRECLAIM_DIRECT, ctx[0]);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_end")
int direct_end_tp(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	on_end(MEMRECLAIM_DIRECT, ctx->nr_reclaimed);
	return 0;
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_begin")
int memcg_begin_btf(__u64 *ctx)
{
	on_begin(MEMRECLAIM_MEMCG);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_begin")
int memcg_begin_tp(void *ctx)
{
	on_begin(MEMRECLAIM_MEMCG);
	return 0;
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_end")
int memcg_end_btf(__u64 *ctx)
{
	on_end(MEMRECLAIM_MEMCG, ctx[0]);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_end")
int memcg_end_tp(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	on_end(MEMRECLAIM_MEMCG, ctx->nr_reclaimed);
	return 0;
}
