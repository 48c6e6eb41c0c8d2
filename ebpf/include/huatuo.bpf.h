/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Conventions shared by every huatuo tracer. Include exactly once per
 * program object (it defines maps and globals), after vmlinux.h.
 *
 * Every object built with this header has:
 *   - map `stats`       PERCPU_ARRAY, u32 key, u64 value, slots from
 *                       huatuo_stats.h: what was seen but not delivered.
 *   - map `rate_window` PERCPU_ARRAY, 1 entry: state of the rate limiter.
 *   - map `events`      RINGBUF, HUATUO_EVENTS_BYTES (userspace may resize).
 *   - global `events_per_cpu_per_sec` (.rodata, u64, 0 = unlimited).
 *
 * Userspace depends on these names; see huatuo_ebpf (Rust) for the mirror.
 */
#ifndef __HUATUO_BPF_H
#define __HUATUO_BPF_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "huatuo_stats.h"

/*
 * vmlinux.h carries no errno or userspace macros; these are the handful the
 * helpers below compare against. Values are the Linux UAPI ones.
 */
#define HUATUO_EEXIST 17
#define HUATUO_NSEC_PER_SEC 1000000000ULL

/*
 * Byte order helpers without <bpf/bpf_endian.h>, which drags in
 * <linux/swab.h> and so needs the multiarch asm/ headers on the build host.
 */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define huatuo_ntohs(x) __builtin_bswap16(x)
#define huatuo_ntohl(x) __builtin_bswap32(x)
#else
#define huatuo_ntohs(x) (x)
#define huatuo_ntohl(x) (x)
#endif

/* Address families (socket.h macros, so absent from vmlinux.h). */
#define HUATUO_AF_INET 2
#define HUATUO_AF_INET6 10

/*
 * Reads `ptr->field`. tp_btf programs receive BTF-typed pointers that the
 * verifier lets them dereference directly (a plain load, fault-safe), while
 * classic tracepoints get untyped addresses that must go through
 * bpf_probe_read_kernel, a helper call per field. `direct` is a compile-time
 * constant at every (always-inlined) use, so each program keeps one flavour.
 */
#define HUATUO_READ(direct, ptr, field) \
	((direct) ? (ptr)->field : BPF_CORE_READ(ptr, field))

/*
 * Makes a type visible in the object's BTF even when no map or function
 * signature mentions it, so userspace can check its Rust mirror against the
 * C layout. Costs 8 bytes of .rodata per use.
 */
#define HUATUO_BTF_EXPORT(type, tag) \
	type *const volatile huatuo_btf_##tag __attribute__((used)) = 0

/*
 * Declares a BPF_MAP_TYPE_PERCPU_ARRAY `name` of `entries` values of type
 * `value_type` with u32 keys: per-CPU state that needs no atomics because
 * only the owning CPU writes it.
 */
#define HUATUO_PERCPU_ARRAY(name, value_type, entries)                   \
	struct {                                                         \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                 \
		__uint(max_entries, entries);                            \
		__type(key, __u32);                                      \
		__type(value, value_type);                               \
	} name SEC(".maps")

/* ---- stats ------------------------------------------------------------ */

HUATUO_PERCPU_ARRAY(stats, __u64, HUATUO_STAT_SLOTS);

HUATUO_BTF_EXPORT(enum huatuo_stat, stat);

static __always_inline void huatuo_stat_inc(enum huatuo_stat slot)
{
	__u32 key = slot;
	__u64 *v = bpf_map_lookup_elem(&stats, &key);

	/*
	 * Per-CPU slot and programs do not nest on one CPU (the kernel skips a
	 * tracing program that would recurse), so a plain add cannot race.
	 */
	if (v)
		*v += 1;
}

static __always_inline void count_ringbuf_lost(void)
{
	huatuo_stat_inc(HUATUO_STAT_RINGBUF_LOST);
}

static __always_inline void count_rate_limited(void)
{
	huatuo_stat_inc(HUATUO_STAT_RATE_LIMITED);
}

static __always_inline void count_counter_map_full(void)
{
	huatuo_stat_inc(HUATUO_STAT_COUNTER_MAP_FULL);
}

static __always_inline void count_tracking_map_full(void)
{
	huatuo_stat_inc(HUATUO_STAT_TRACKING_MAP_FULL);
}

/*
 * Adds `delta` to `key` in a PERCPU_HASH of u64 counters. Exact counting is
 * the point of such maps, so the only loss (map full) is itself counted.
 */
static __always_inline void huatuo_counter_add(void *map, const void *key,
					       __u64 delta)
{
	__u64 *v;
	long err;

	v = bpf_map_lookup_elem(map, key);
	if (v) {
		*v += delta;
		return;
	}
	err = bpf_map_update_elem(map, key, &delta, BPF_NOEXIST);
	if (!err)
		return;
	/* Another CPU created the key between our lookup and insert. */
	if (err == -HUATUO_EEXIST) {
		v = bpf_map_lookup_elem(map, key);
		if (v) {
			*v += delta;
			return;
		}
	}
	count_counter_map_full();
}

static __always_inline void huatuo_counter_inc(void *map, const void *key)
{
	huatuo_counter_add(map, key, 1);
}

/* ---- rate limiter ------------------------------------------------------ */

/*
 * Upper bound on records emitted per CPU per one-second window; 0 means no
 * limit. Set by userspace before load (aya override_global). Per CPU rather
 * than global so the check needs no atomics or cross-CPU cache traffic; the
 * host-wide ceiling is this value times the number of CPUs.
 */
const volatile __u64 events_per_cpu_per_sec = 0;

struct huatuo_rate_window {
	__u64 start_ns;
	__u64 count;
	/* Tick at which start_ns was last compared with the clock. */
	__u64 checked_jiffies;
};

/*
 * Whether the current window has run out. Reading the clock costs tens of
 * nanoseconds (more under virtualisation) and a storm calls this for every
 * event, so the clock is read at most once per tick: a window then ends up
 * to one tick late, which is fine for a one-second window. jiffies64 is a
 * plain load; kernels before 5.5 lack the helper, and the CO-RE check
 * (resolved at load) makes them read the clock each time instead.
 */
static __always_inline bool rate_window_expired(struct huatuo_rate_window *w,
						__u64 *now)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_jiffies64)) {
		__u64 tick = bpf_jiffies64();

		if (tick == w->checked_jiffies)
			return false;
		w->checked_jiffies = tick;
	}
	*now = bpf_ktime_get_ns();
	return *now - w->start_ns >= HUATUO_NSEC_PER_SEC;
}

HUATUO_PERCPU_ARRAY(rate_window, struct huatuo_rate_window, 1);

/*
 * Returns true when the caller may emit a record. A suppressed record is
 * counted in stats[HUATUO_STAT_RATE_LIMITED]. Call it only for records that
 * would otherwise be emitted, so suppressed counts mean real loss.
 */
static __always_inline bool rate_limit_allow(void)
{
	__u64 limit = events_per_cpu_per_sec;
	struct huatuo_rate_window *w;
	__u32 key = 0;
	__u64 now;

	if (limit == 0)
		return true;

	w = bpf_map_lookup_elem(&rate_window, &key);
	/* Cannot happen for a 1-entry array; fail open rather than lose data. */
	if (!w)
		return true;

	/*
	 * Fixed windows, restarted lazily by the first event after expiry: a
	 * burst can reach 2x the limit across a window edge, which is fine for
	 * a protection limit and keeps the state to three words.
	 */
	if (rate_window_expired(w, &now)) {
		w->start_ns = now;
		w->count = 0;
	}
	if (w->count >= limit) {
		count_rate_limited();
		return false;
	}
	w->count += 1;
	return true;
}

/* ---- attribution ---------------------------------------------------------- */

/*
 * The v2 cgroup id (inode of its directory) of any task, not only current:
 * what attribution resolves to a container. See HUATUO_READ for `direct`.
 */
static __always_inline __u64 huatuo_task_cgroup_id(struct task_struct *task,
						   bool direct)
{
	if (direct)
		return task->cgroups->dfl_cgrp->kn->id;
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

/* TCP_TIME_WAIT and TCP_NEW_SYN_RECV: mini sockets that end after sock_common. */
#define HUATUO_TCP_TIME_WAIT 6
#define HUATUO_TCP_NEW_SYN_RECV 12

/* ---- ring buffer -------------------------------------------------------- */

#ifndef HUATUO_EVENTS_BYTES
/* Per object, shared by all CPUs; must be a power-of-two number of pages. */
#define HUATUO_EVENTS_BYTES (256 * 1024)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, HUATUO_EVENTS_BYTES);
} events SEC(".maps");

/*
 * Reserves `size` bytes in `events`, counting a failure in
 * stats[HUATUO_STAT_RINGBUF_LOST]. The memory is not zeroed. Pair with
 * events_submit(); `size` must be a compile-time constant.
 */
static __always_inline void *events_reserve(__u64 size)
{
	void *rec = bpf_ringbuf_reserve(&events, size, 0);

	if (!rec)
		count_ringbuf_lost();
	return rec;
}

static __always_inline void events_submit(void *rec)
{
	/*
	 * Flags 0 lets the kernel wake the reader only when it has caught up,
	 * which batches wakeups under load without delaying a lone record.
	 */
	bpf_ringbuf_submit(rec, 0);
}

/* Copies a fully built record into `events`; for records built on stack. */
static __always_inline long events_output(void *data, __u64 size)
{
	long err = bpf_ringbuf_output(&events, data, size, 0);

	if (err)
		count_ringbuf_lost();
	return err;
}

#endif /* __HUATUO_BPF_H */
