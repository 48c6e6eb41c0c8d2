// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sched_tick: scheduler ticks that ran late, i.e. a CPU that could not take
 * its timer interrupt (interrupts disabled, a long hard-irq handler, a stuck
 * hypervisor) for longer than a threshold.
 *
 * The tick is an hrtimer (tick_nohz_handler since 6.9, tick_sched_timer
 * before); userspace resolves the handler's address from /proc/kallsyms and
 * sets `tick_handler`. At timer:hrtimer_expire_entry the delay is the time
 * the timer runs minus the time it was programmed to expire.
 *
 * Measuring against the programmed expiry rather than the previous tick is
 * what keeps NO_HZ out of the reports without more hooks: a CPU that stops
 * its tick while idle reprograms the timer to its next real event, so the
 * first tick after the idle period is on time, not "delayed" by the whole
 * idle period; on nohz_full CPUs, where the tick also stops while a task
 * runs, likewise. A late tick is one the CPU could not take when due, which
 * is what a gap between ticks beyond one period would also show, one period
 * earlier.
 *
 * Every late tick is counted per CPU in `late_ticks`; the shared per-CPU
 * rate limiter then decides whether a record with the interrupted task and
 * the kernel stack goes to `events`.
 */

/* At most a few records per CPU per second, each ~600 bytes. */
#define HUATUO_EVENTS_BYTES (64 * 1024)

#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "sched_tick.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Address of the tick's hrtimer function; set by userspace before load. */
const volatile __u64 tick_handler = 0;
/*
 * Delays at least this long are reported; set by userspace before load to
 * the configured tick-interval threshold less one tick period.
 */
const volatile __u64 threshold_ns = 10 * 1000 * 1000;

/* Late ticks, per CPU (one slot: the per-CPU values are the breakdown). */
HUATUO_PERCPU_ARRAY(late_ticks, __u64, 1);

HUATUO_BTF_EXPORT(struct sched_tick_event, sched_tick_event);
HUATUO_BTF_EXPORT(struct huatuo_kstack, huatuo_kstack);

_Static_assert(sizeof(struct sched_tick_event) == 56 + sizeof(struct huatuo_kstack),
	       "event layout");

static __always_inline void count_late_tick(void)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&late_ticks, &zero);

	/* Per-CPU slot, and this program does not nest on a CPU. */
	if (count)
		*count += 1;
}

/* `ctx` is the program's context, for the stack. */
static __always_inline void check(void *ctx, __s64 now, __s64 expires)
{
	struct sched_tick_event *e;
	__u64 pid_tgid;

	if (now - expires < (__s64)threshold_ns)
		return;
	count_late_tick();
	if (!rate_limit_allow())
		return;

	e = events_reserve(sizeof(*e));
	if (!e)
		return;
	/* Ring buffer memory is not zeroed and every byte reaches userspace. */
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = now;
	e->delay_ns = now - expires;
	/* The tick runs in hard-irq context on top of the task it interrupted. */
	pid_tgid = bpf_get_current_pid_tgid();
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->cpu = bpf_get_smp_processor_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	huatuo_kstack_capture(ctx, &e->stack);
	events_submit(e);
}

/*
 * (timer, now): `now` points at the clock base's time the expiry loop runs
 * with. Every hrtimer on the CPU passes here (sleeps, scheduler timers, ...),
 * so the handler comparison comes first and ends almost every run.
 */
SEC("tp_btf/hrtimer_expire_entry")
int sched_tick_btf(__u64 *ctx)
{
	struct hrtimer *timer = (struct hrtimer *)ctx[0];
	__s64 now;

	if ((__u64)timer->function != tick_handler)
		return 0;
	/* A pointer to a scalar is not a BTF object: read it like any address. */
	if (bpf_probe_read_kernel(&now, sizeof(now), (void *)ctx[1]))
		return 0;
	check(ctx, now, timer->node.expires);
	return 0;
}

SEC("tracepoint/timer/hrtimer_expire_entry")
int sched_tick_tp(struct trace_event_raw_hrtimer_expire_entry *ctx)
{
	struct hrtimer *timer = ctx->hrtimer;

	if ((__u64)ctx->function != tick_handler)
		return 0;
	check(ctx, ctx->now, BPF_CORE_READ(timer, node.expires));
	return 0;
}
