/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Slots of the per-CPU `stats` map that every huatuo program object has.
 *
 * This is an ABI shared with userspace: the Rust side mirrors these values
 * as huatuo_ebpf::STAT_* and a test compares them against this enum as it
 * appears in each object's BTF. Only ever append; never renumber a slot, or
 * an agent reading an older object would misreport its counters.
 *
 * Userspace reads a slot by summing the u64 value over all possible CPUs.
 * Each slot counts records (or drops) that were seen by the program but did
 * not reach userspace, so that loss is always visible and never silent.
 */
#ifndef __HUATUO_STATS_H
#define __HUATUO_STATS_H

enum huatuo_stat {
	/* bpf_ringbuf_reserve/output failed: the ring buffer was full. */
	HUATUO_STAT_RINGBUF_LOST = 0,
	/* The per-CPU rate limiter suppressed the record. */
	HUATUO_STAT_RATE_LIMITED = 1,
	/* An exact-counting hash map was full, so a key was not counted. */
	HUATUO_STAT_COUNTER_MAP_FULL = 2,
	/*
	 * A hash map tracking something in progress (a task inside a
	 * reclaim...) was full, so its duration could not be measured.
	 */
	HUATUO_STAT_TRACKING_MAP_FULL = 3,

	/* Number of slots in use; always last. */
	HUATUO_STAT__COUNT,
};

/*
 * Capacity of the stats map. Larger than HUATUO_STAT__COUNT so a new slot
 * does not change the map's shape, which keeps old and new objects
 * interchangeable for userspace that only knows the older slots.
 */
#define HUATUO_STAT_SLOTS 8

#endif /* __HUATUO_STATS_H */
