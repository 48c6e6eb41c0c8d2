/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * In-kernel log2 histograms, read by the agent on each metric collection
 * (huatuo_ebpf::hist is the Rust mirror, checked against this layout).
 *
 * A histogram map is a PERCPU_ARRAY of struct huatuo_log2_hist: one row per
 * attribute set the tracer defines (a softirq vector, a reclaim kind...),
 * and per-CPU values so that counting needs no atomics. Slot 0 counts values
 * 0 and 1, slot k >= 1 values in [2^k, 2^(k+1)); the last slot also takes
 * everything larger. The unit of the values is the tracer's choice.
 *
 * Include after huatuo.bpf.h.
 */
#ifndef __HUATUO_HIST_BPF_H
#define __HUATUO_HIST_BPF_H

#define HUATUO_HIST_SLOTS 32

struct huatuo_log2_hist {
	__u64 slots[HUATUO_HIST_SLOTS];
};

/* Declares histogram map `name` with `rows` rows. */
#define HUATUO_HIST_MAP(name, rows) \
	HUATUO_PERCPU_ARRAY(name, struct huatuo_log2_hist, rows)

static __always_inline __u32 huatuo_log2(__u64 v)
{
	__u32 r = 0, shift;

	/* Branch-light binary search: verifier-friendly, no loop. */
	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* Counts `value` in row `row` of histogram map `map`. */
static __always_inline void huatuo_hist_add(void *map, __u32 row, __u64 value)
{
	struct huatuo_log2_hist *hist = bpf_map_lookup_elem(map, &row);
	__u32 slot;

	if (!hist)
		return;
	slot = huatuo_log2(value);
	if (slot >= HUATUO_HIST_SLOTS)
		slot = HUATUO_HIST_SLOTS - 1;
	hist->slots[slot]++;
}

#endif /* __HUATUO_HIST_BPF_H */
