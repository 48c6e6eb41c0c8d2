/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * In-kernel log2 histograms, read by the agent on each metric collection
 * (huatuo_ebpf::hist is the Rust mirror, checked against this layout).
 *
 * A histogram map is a PERCPU_ARRAY of struct huatuo_log2_hist: one row per
 * attribute set the tracer defines (a softirq vector, a reclaim kind...),
 * and per-CPU values so that counting needs no atomics. When the rows are
 * only known at run time (a disk and cgroup), it is a PERCPU_HASH keyed by
 * a tracer-defined key the agent can name (a dev_t and cgroup id), bounded,
 * with keys created on first use. Slot 0 counts values
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

static __always_inline __u32 huatuo_hist_slot(__u64 value)
{
	__u32 slot = huatuo_log2(value);

	return slot < HUATUO_HIST_SLOTS ? slot : HUATUO_HIST_SLOTS - 1;
}

/* Counts `value` in row `row` of histogram map `map`. */
static __always_inline void huatuo_hist_add(void *map, __u32 row, __u64 value)
{
	struct huatuo_log2_hist *hist = bpf_map_lookup_elem(map, &row);

	if (!hist)
		return;
	hist->slots[huatuo_hist_slot(value)]++;
}

/* Declares keyed histogram map `name` of at most `keys` keys of type `key_type`. */
#define HUATUO_HIST_HASH(name, key_type, keys)                           \
	struct {                                                         \
		__uint(type, BPF_MAP_TYPE_PERCPU_HASH);                  \
		__uint(max_entries, keys);                               \
		__type(key, key_type);                                   \
		__type(value, struct huatuo_log2_hist);                  \
	} name SEC(".maps")

/*
 * Counts `value` under `key` of keyed histogram map `map`, creating the key
 * on first use. A value that finds the map full is counted in
 * stats[HUATUO_STAT_COUNTER_MAP_FULL], never silently lost.
 */
static __always_inline void huatuo_hist_add_key(void *map, const void *key, __u64 value)
{
	struct huatuo_log2_hist *hist = bpf_map_lookup_elem(map, key);

	if (!hist) {
		/* A new key starts at zero on every CPU (the kernel zeroes the other CPUs' copies). */
		struct huatuo_log2_hist zero = {};
		long err = bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);

		/* Another CPU may have created it between our lookup and insert. */
		if (err && err != -HUATUO_EEXIST) {
			count_counter_map_full();
			return;
		}
		hist = bpf_map_lookup_elem(map, key);
		if (!hist)
			return;
	}
	hist->slots[huatuo_hist_slot(value)]++;
}

#endif /* __HUATUO_HIST_BPF_H */
