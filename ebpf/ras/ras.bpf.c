// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ras: hardware errors the kernel reports through its RAS tracepoints
 * (machine checks, EDAC, PCIe AER, ARM and firmware records, memory
 * failures), whichever this kernel has; userspace attaches the subset that
 * exists.
 *
 * Classic tracepoints only, and no field read here: the programs copy the
 * raw record, which userspace decodes with the tracepoint's tracefs format.
 * The record layouts differ across kernel versions and architectures and
 * several of these tracepoints are absent from the kernel this is built
 * against, so there is no type to relocate against; the format file is the
 * kernel's own description of the record it wrote.
 *
 * Every error is counted by source; the shared per-CPU rate limiter then
 * protects the agent from corrected-error storms.
 */

/* Errors are rare; a storm is cut by the rate limit, not the buffer. */
#define HUATUO_EVENTS_BYTES (64 * 1024)

#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "ras.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

HUATUO_PERCPU_ARRAY(ras_counts, struct ras_counts, 1);

HUATUO_BTF_EXPORT(struct ras_event, ras_event);
HUATUO_BTF_EXPORT(struct ras_counts, ras_counts);
HUATUO_BTF_EXPORT(enum ras_source, ras_source);

_Static_assert(sizeof(struct ras_event) == 16 + RAS_RECORD_BYTES, "event layout");

static __always_inline void handle(void *ctx, __u32 source)
{
	struct ras_counts *counts;
	struct ras_event *e;
	__u32 zero = 0;

	counts = bpf_map_lookup_elem(&ras_counts, &zero);
	/* Per-CPU, and programs do not nest on a CPU: a plain add. */
	if (counts && source < RAS_SOURCES)
		counts->count[source] += 1;
	if (!rate_limit_allow())
		return;

	e = events_reserve(sizeof(*e));
	if (!e)
		return;
	e->ts_ns = bpf_ktime_get_ns();
	e->source = source;
	e->cpu = bpf_get_smp_processor_id();
	/*
	 * The record sits at the start of the per-CPU perf trace buffer (8 KiB),
	 * so a fixed-size read stays inside it whatever the record's length. A
	 * failed read leaves zeros, which decode as an empty record.
	 */
	if (bpf_probe_read_kernel(e->record, sizeof(e->record), ctx))
		__builtin_memset(e->record, 0, sizeof(e->record));
	events_submit(e);
}

#define RAS_HOOK(prog, category, name, source) \
	SEC("tracepoint/" category "/" name)    \
	int prog(void *ctx)                     \
	{                                       \
		handle(ctx, source);            \
		return 0;                       \
	}

RAS_HOOK(ras_mce_record, "mce", "mce_record", RAS_SOURCE_MCE)
RAS_HOOK(ras_mc_event, "ras", "mc_event", RAS_SOURCE_EDAC)
RAS_HOOK(ras_aer_event, "ras", "aer_event", RAS_SOURCE_AER)
RAS_HOOK(ras_arm_event, "ras", "arm_event", RAS_SOURCE_ARM)
RAS_HOOK(ras_non_standard_event, "ras", "non_standard_event", RAS_SOURCE_NON_STANDARD)
RAS_HOOK(ras_memory_failure_event, "ras", "memory_failure_event", RAS_SOURCE_MEMORY_FAILURE)
