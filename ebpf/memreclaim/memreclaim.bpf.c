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
 * Where the kernel has them (optional hooks), two more sources:
 *  - compaction:mm_compaction_begin/_end, each compaction of a zone counted
 *    in the `compact_us` histogram by who ran it (memreclaim.h). A task in
 *    the allocator's direct compaction holds PF_MEMALLOC throughout, which
 *    tells it apart from kcompactd and from a write to vm.compact_memory
 *    without needing the tracepoints' arguments.
 *  - vmscan:mm_vmscan_kswapd_wake/_sleep, kswapd's time awake per node in
 *    the `kswapd` array.
 * Compactions share `reclaim_start` with reclaims, under their own slot.
 *
 * Two entry points per tracepoint: userspace tries tp_btf and falls back to
 * the classic tracepoint. None needs the tracepoints' arguments beyond the
 * pages reclaimed and the kswapd node.
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

HUATUO_BTF_EXPORT(struct memreclaim_kswapd, memreclaim_kswapd);

_Static_assert(sizeof(struct memreclaim_event) == 72, "event layout");

/* Slot of a compaction in `reclaim_start` keys, after the reclaim kinds. */
#define TRACK_COMPACTION MEMRECLAIM_KINDS

/* task_struct.flags bits (include/linux/sched.h, stable). */
#define HUATUO_PF_MEMALLOC 0x00000800
#define HUATUO_PF_KTHREAD 0x00200000

/* Tasks inside a reclaim or compaction: (tid << 2 | slot) -> bpf_ktime_get_ns() at the begin. */
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

/* Row = MEMRECLAIM_COMPACT_*; values in microseconds. */
HUATUO_HIST_MAP(compact_us, MEMRECLAIM_COMPACT_KINDS);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MEMRECLAIM_MAX_NODES);
	__type(key, __u32);
	__type(value, struct memreclaim_kswapd);
} kswapd SEC(".maps");

static __always_inline __u64 start_key(__u32 slot)
{
	return (bpf_get_current_pid_tgid() & 0xffffffffULL) << 2 | slot;
}

static __always_inline void on_begin(__u32 slot)
{
	__u64 key = start_key(slot), now = bpf_ktime_get_ns();

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

/*
 * Ends the current task's tracking in `slot`: its duration so far, with the
 * time now; false when it began before the programs were attached, or found
 * the map full.
 */
static __always_inline bool take_duration(__u32 slot, __u64 *now, __u64 *duration)
{
	__u64 key = start_key(slot), *start;

	start = bpf_map_lookup_elem(&reclaim_start, &key);
	if (!start)
		return false;
	*now = bpf_ktime_get_ns();
	*duration = *now - *start;
	bpf_map_delete_elem(&reclaim_start, &key);
	return true;
}

static __always_inline void on_end(__u32 kind, __u64 nr_reclaimed)
{
	__u64 now, duration, *count;

	if (!take_duration(kind, &now, &duration))
		return;
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

static __always_inline __u32 compaction_kind(void)
{
	struct task_struct *current = (struct task_struct *)bpf_get_current_task();
	__u32 flags = BPF_CORE_READ(current, flags);

	/* Kernel threads allocate too: the allocation path comes first. */
	if (flags & HUATUO_PF_MEMALLOC)
		return MEMRECLAIM_COMPACT_DIRECT;
	if (flags & HUATUO_PF_KTHREAD)
		return MEMRECLAIM_COMPACT_KCOMPACTD;
	return MEMRECLAIM_COMPACT_MANUAL;
}

static __always_inline void on_compaction_end(void)
{
	__u64 now, duration;

	if (take_duration(TRACK_COMPACTION, &now, &duration))
		huatuo_hist_add(&compact_us, compaction_kind(), duration / 1000);
}

SEC("tp_btf/mm_compaction_begin")
int compaction_begin_btf(__u64 *ctx)
{
	on_begin(TRACK_COMPACTION);
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_begin")
int compaction_begin_tp(void *ctx)
{
	on_begin(TRACK_COMPACTION);
	return 0;
}

SEC("tp_btf/mm_compaction_end")
int compaction_end_btf(__u64 *ctx)
{
	on_compaction_end();
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_end")
int compaction_end_tp(void *ctx)
{
	on_compaction_end();
	return 0;
}

static __always_inline void on_kswapd_wake(__u32 nid)
{
	struct memreclaim_kswapd *node = bpf_map_lookup_elem(&kswapd, &nid);

	if (!node)
		return;
	node->wakeups++;
	/* Further passes of the same run keep its start. */
	if (!node->awake_since_ns)
		node->awake_since_ns = bpf_ktime_get_ns();
}

static __always_inline void on_kswapd_sleep(__u32 nid)
{
	struct memreclaim_kswapd *node = bpf_map_lookup_elem(&kswapd, &nid);
	__u64 since;

	if (!node)
		return;
	since = node->awake_since_ns;
	/* Awake since before the programs were attached: that run is not measured. */
	if (!since)
		return;
	/* A reader may copy the value between these two stores and see the
	 * run twice or not at all; userspace keeps its total monotonic. */
	node->awake_since_ns = 0;
	node->awake_ns += bpf_ktime_get_ns() - since;
}

SEC("tp_btf/mm_vmscan_kswapd_wake")
int kswapd_wake_btf(__u64 *ctx)
{
	on_kswapd_wake(ctx[0]);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_kswapd_wake")
int kswapd_wake_tp(struct trace_event_raw_mm_vmscan_kswapd_wake *ctx)
{
	on_kswapd_wake(ctx->nid);
	return 0;
}

SEC("tp_btf/mm_vmscan_kswapd_sleep")
int kswapd_sleep_btf(__u64 *ctx)
{
	on_kswapd_sleep(ctx[0]);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_kswapd_sleep")
int kswapd_sleep_tp(struct trace_event_raw_mm_vmscan_kswapd_sleep *ctx)
{
	on_kswapd_sleep(ctx->nid);
	return 0;
}
