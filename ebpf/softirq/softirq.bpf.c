// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * softirq: how long each watched softirq vector waits on a CPU between being
 * raised (irq:softirq_raise) and its handler starting (irq:softirq_entry).
 *
 * A vector's pending bit is per CPU and a raise while it is already pending
 * changes nothing, so the wait is measured from the first raise since the
 * vector last ran on that CPU. Every wait is counted in the `latency_us` log2
 * histogram (microseconds, one row per vector); waits at or above the
 * threshold also become records, rate limited per CPU (softirq delays come
 * in storms when a CPU is saturated), the rest counted as rate_limited.
 *
 * irq:softirq_exit is not attached: the handler's own run time is not what
 * this tracer measures, and softirq_raise fires for every timer tick already.
 *
 * Two entry points per tracepoint: userspace tries tp_btf and falls back to
 * the classic tracepoint.
 */

#define HUATUO_EVENTS_BYTES (64 * 1024)

#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "huatuo_hist.bpf.h"
#include "softirq.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Bit n set: vector n is measured. Set by userspace before load. */
const volatile __u32 watched_vectors = 0;
/* Waits at or above this become records. Set by userspace before load. */
const volatile __u64 latency_threshold_ns = 1000000;

HUATUO_BTF_EXPORT(struct softirq_event, softirq_event);

_Static_assert(sizeof(struct softirq_event) == 56, "event layout");

/* Per CPU and vector: when the pending vector was first raised; 0 when not pending. */
HUATUO_PERCPU_ARRAY(raised_at, __u64, SOFTIRQ_VECTORS);

/* Row = vector; values in microseconds. */
HUATUO_HIST_MAP(latency_us, SOFTIRQ_VECTORS);

static __always_inline bool watched(__u32 vec)
{
	return vec < SOFTIRQ_VECTORS && (watched_vectors & (1U << vec));
}

static __always_inline void on_raise(__u32 vec)
{
	__u64 *raised;

	if (!watched(vec))
		return;
	raised = bpf_map_lookup_elem(&raised_at, &vec);
	if (raised && !*raised)
		*raised = bpf_ktime_get_ns();
}

static __always_inline void emit(__u32 vec, __u64 now, __u64 latency)
{
	struct softirq_event *e;
	__u64 id;

	e = events_reserve(sizeof(*e));
	if (!e)
		return;
	id = bpf_get_current_pid_tgid();
	e->ts_ns = now;
	e->latency_ns = latency;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->cpu = bpf_get_smp_processor_id();
	e->vector = vec;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	/* Fills all 16 bytes (NUL-padded), so no byte of the record is left unwritten. */
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	events_submit(e);
}

static __always_inline void on_entry(__u32 vec)
{
	__u64 *raised, now, latency;

	if (!watched(vec))
		return;
	raised = bpf_map_lookup_elem(&raised_at, &vec);
	/* Raised before the programs were attached: nothing to measure. */
	if (!raised || !*raised)
		return;
	now = bpf_ktime_get_ns();
	latency = now - *raised;
	*raised = 0;
	huatuo_hist_add(&latency_us, vec, latency / 1000);
	if (latency >= latency_threshold_ns && rate_limit_allow())
		emit(vec, now, latency);
}

SEC("tp_btf/softirq_raise")
int softirq_raise_btf(__u64 *ctx)
{
	on_raise((__u32)ctx[0]);
	return 0;
}

SEC("tracepoint/irq/softirq_raise")
int softirq_raise_tp(struct trace_event_raw_softirq *ctx)
{
	on_raise(ctx->vec);
	return 0;
}

SEC("tp_btf/softirq_entry")
int softirq_entry_btf(__u64 *ctx)
{
	on_entry((__u32)ctx[0]);
	return 0;
}

SEC("tracepoint/irq/softirq_entry")
int softirq_entry_tp(struct trace_event_raw_softirq *ctx)
{
	on_entry(ctx->vec);
	return 0;
}
