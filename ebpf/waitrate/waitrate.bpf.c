// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * waitrate: how long each cgroup's tasks wait for a CPU, split by what kept
 * them waiting, counted in the kernel per cgroup (no ring buffer records).
 *
 * A wait runs from a wakeup (sched_wakeup, sched_wakeup_new) or a
 * preemption (sched_switch away from a still runnable task) until
 * sched_switch picks the task, as in runqlat. Its time is split with the
 * CPU's occupancy: each CPU accumulates how long it ran each cgroup
 * (`occupancy`) and how long it ran anything but its idle task
 * (`cpu_state.busy_ns`). A wait remembers both at its start; at its end on
 * the same CPU,
 *   inner    = what the CPU ran of the waiting task's own cgroup meanwhile,
 *   external = what it ran of other cgroups,
 *   other    = the rest, when it was idle (an idle CPU's wake-up latency).
 * A task that started waiting throttled (its CFS bandwidth exhausted: on
 * kernels with per-task throttling, 6.18+, the task itself was dequeued as
 * throttled; before, its cfs_rq or an ancestor's was throttled) charges
 * the whole wait to throttle, including its queueing after the unthrottle,
 * which no tracepoint marks. A task that migrated while waiting (load
 * balancing) is split by what the CPU it first queued on ran meanwhile:
 * what it waited behind before it was moved, stretched over the whole
 * wait. Reading another CPU's state (a remote wakeup, a migrated task) is
 * unlocked, so the split can be off by what that CPU ran during the read;
 * the parts are clamped to the wait.
 *
 * During a capture the agent names the target container's cgroups in
 * `targets`: each CPU then counts the target's tasks waiting on it, and
 * every time slice ends, the task that ran is charged its length times
 * that count in `competitors`: who the target waited behind, and how long.
 */

/* Metric-only object: the shared ring buffer stays empty, keep it one page. */
#define HUATUO_EVENTS_BYTES 4096

#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "waitrate.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

HUATUO_BTF_EXPORT(struct waitrate_counts, counts);
HUATUO_BTF_EXPORT(struct waitrate_competitor, competitor);
HUATUO_BTF_EXPORT(struct waitrate_occupancy_key, occupancy_key);
HUATUO_BTF_EXPORT(struct waitrate_capture, capture);
HUATUO_BTF_EXPORT(enum waitrate_kind, kind);

/* Not a PERCPU_ARRAY: a remote wakeup reads the target CPU's entry. */
struct cpu_state {
	__u64 since;   /* when the running task was switched in; 0: unknown */
	__u64 cgroup;  /* its cgroup */
	__u64 busy_ns; /* cumulative time not idle */
	__u32 pid;     /* its thread id, 0 for the idle task */
	/* Tasks of the capture's target waiting here (atomic: remote wakeups). */
	__u32 target_waiting;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WAITRATE_MAX_CPUS);
	__type(key, __u32);
	__type(value, struct cpu_state);
} cpu_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WAITRATE_MAX_OCCUPANCY);
	__type(key, struct waitrate_occupancy_key);
	__type(value, __u64);
} occupancy SEC(".maps");

#define WAIT_THROTTLED 1
/* Counted in its CPU's target_waiting. */
#define WAIT_TARGET 2
#define WAIT_NO_CPU 0xffffffff

struct wait_start {
	__u64 since;
	__u64 cgroup;
	__u64 same_ns; /* occupancy of its cgroup on `cpu` at `since` */
	__u64 busy_ns; /* busy time of `cpu` at `since` */
	__u32 cpu;     /* its run queue's CPU, WAIT_NO_CPU beyond cpu_state */
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WAITRATE_MAX_QUEUED);
	__type(key, __u32); /* thread id */
	__type(value, struct wait_start);
} waiting SEC(".maps");

/* Allocated per cgroup seen, not per possible entry: x CPUs each. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, WAITRATE_MAX_CGROUPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64); /* v2 cgroup id */
	__type(value, struct waitrate_counts);
} waits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct waitrate_capture);
} capture SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WAITRATE_MAX_TARGETS);
	__type(key, __u64); /* v2 cgroup id */
	__type(value, __u8);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, WAITRATE_MAX_COMPETITORS);
	__type(key, struct waitrate_competitor);
	__type(value, __u64);
} competitors SEC(".maps");

/* Before 5.14 the task state field was `state`. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline struct cpu_state *state_of(__u32 cpu)
{
	return bpf_map_lookup_elem(&cpu_state, &cpu);
}

static __always_inline bool capturing(void)
{
	__u32 zero = 0;
	struct waitrate_capture *c = bpf_map_lookup_elem(&capture, &zero);

	return c && c->active;
}

static __always_inline __u64 occupancy_of(__u64 cgroup, __u32 cpu)
{
	struct waitrate_occupancy_key key = { .cgroup_id = cgroup, .cpu = cpu };
	__u64 *ns = bpf_map_lookup_elem(&occupancy, &key);

	return ns ? *ns : 0;
}

/* Only the CPU itself adds to its entries (under its run-queue lock). */
static __always_inline void occupancy_add(__u64 cgroup, __u32 cpu, __u64 ns)
{
	struct waitrate_occupancy_key key = { .cgroup_id = cgroup, .cpu = cpu };
	__u64 *total = bpf_map_lookup_elem(&occupancy, &key);

	if (total) {
		*total += ns;
		return;
	}
	if (bpf_map_update_elem(&occupancy, &key, &ns, BPF_NOEXIST))
		count_counter_map_full();
}

/* Before 5.16 the CPU of a task with its thread_info inside it was here. */
struct task_struct___cpu {
	unsigned int cpu;
} __attribute__((preserve_access_index));

static __always_inline __u32 task_cpu(struct task_struct *p)
{
	if (bpf_core_field_exists(p->thread_info.cpu))
		return p->thread_info.cpu;
	return BPF_CORE_READ((struct task_struct___cpu *)p, cpu);
}

/*
 * Whether `p` goes to wait because its CFS bandwidth ran out. Kernels with
 * per-task throttling (6.18+, `task_struct.throttled`) dequeue the task
 * itself; older ones throttle its cfs_rq (or an ancestor: throttle_count).
 */
static __always_inline bool task_throttled(struct task_struct *p)
{
	struct cfs_rq *cfs_rq;

	if (bpf_core_field_exists(p->throttled))
		return p->throttled;
	if (!bpf_core_field_exists(p->se.cfs_rq) ||
	    !bpf_core_field_exists(((struct cfs_rq *)0)->throttle_count))
		return false;
	cfs_rq = p->se.cfs_rq;
	return cfs_rq && cfs_rq->throttle_count > 0;
}

/*
 * What `cpu` has run up to `now`: its busy time and its time running
 * `cgroup`, the slice it is running now included.
 */
static __always_inline void occupancy_at(struct cpu_state *st, __u32 cpu,
					 __u64 cgroup, __u64 now, __u64 *busy,
					 __u64 *same)
{
	__u64 running = 0;

	if (st->since && now > st->since && st->pid)
		running = now - st->since;
	*busy = st->busy_ns + running;
	*same = occupancy_of(cgroup, cpu) + (st->cgroup == cgroup ? running : 0);
}

static __always_inline void start_waiting(struct task_struct *p, __u32 cpu,
					  __u64 now)
{
	struct wait_start w = { .since = now, .cpu = cpu };
	__u32 tid = p->pid;
	struct cpu_state *st;

	if (!tid)
		return;
	w.cgroup = huatuo_task_cgroup_id(p, true);
	if (task_throttled(p))
		w.flags |= WAIT_THROTTLED;
	st = state_of(cpu);
	/*
	 * Until its first switch is seen the CPU's occupancy is unknown; the
	 * agent attaches sched_switch first, so this is only the first slice.
	 */
	if (st && !st->since)
		return;
	if (st) {
		occupancy_at(st, cpu, w.cgroup, now, &w.busy_ns, &w.same_ns);
		if (capturing() && bpf_map_lookup_elem(&targets, &w.cgroup)) {
			w.flags |= WAIT_TARGET;
			__sync_fetch_and_add(&st->target_waiting, 1);
		}
	} else {
		w.cpu = WAIT_NO_CPU;
	}
	if (bpf_map_update_elem(&waiting, &tid, &w, BPF_ANY)) {
		count_tracking_map_full();
		if (st && (w.flags & WAIT_TARGET))
			__sync_fetch_and_add(&st->target_waiting, -1);
	}
}

static __always_inline void wait_add(__u64 cgroup, __u64 *ns)
{
	struct waitrate_counts zero = {}, *c;
	long err;

	c = bpf_map_lookup_elem(&waits, &cgroup);
	if (!c) {
		err = bpf_map_update_elem(&waits, &cgroup, &zero, BPF_NOEXIST);
		if (err && err != -HUATUO_EEXIST) {
			count_counter_map_full();
			return;
		}
		c = bpf_map_lookup_elem(&waits, &cgroup);
		if (!c)
			return;
	}
	c->ns[WAITRATE_INNER] += ns[WAITRATE_INNER];
	c->ns[WAITRATE_EXTERNAL] += ns[WAITRATE_EXTERNAL];
	c->ns[WAITRATE_THROTTLE] += ns[WAITRATE_THROTTLE];
	c->ns[WAITRATE_OTHER] += ns[WAITRATE_OTHER];
	c->waits += 1;
}

static __always_inline __u64 min_u64(__u64 a, __u64 b)
{
	return a < b ? a : b;
}

/*
 * Ends the wait of `tid`, picked now. The split is what the CPU whose queue
 * it started waiting on ran meanwhile: the CPU it is picked on, unless it
 * migrated.
 */
static __always_inline void stop_waiting(__u32 tid, __u64 now)
{
	struct wait_start *found = bpf_map_lookup_elem(&waiting, &tid);
	__u64 ns[WAITRATE_KINDS] = {};
	struct cpu_state *queued_on;
	struct wait_start w;
	__u64 elapsed, busy, same;

	/* Not tracked: the idle task, or it started waiting before we attached. */
	if (!found)
		return;
	w = *found;
	bpf_map_delete_elem(&waiting, &tid);
	queued_on = state_of(w.cpu);
	if (queued_on && (w.flags & WAIT_TARGET))
		__sync_fetch_and_add(&queued_on->target_waiting, -1);
	elapsed = now > w.since ? now - w.since : 0;
	if (w.flags & WAIT_THROTTLED) {
		ns[WAITRATE_THROTTLE] = elapsed;
	} else if (queued_on) {
		occupancy_at(queued_on, w.cpu, w.cgroup, now, &busy, &same);
		busy = busy > w.busy_ns ? busy - w.busy_ns : 0;
		busy = min_u64(busy, elapsed);
		same = same > w.same_ns ? same - w.same_ns : 0;
		same = min_u64(same, busy);
		ns[WAITRATE_INNER] = same;
		ns[WAITRATE_EXTERNAL] = busy - same;
		ns[WAITRATE_OTHER] = elapsed - busy;
	} else {
		ns[WAITRATE_OTHER] = elapsed;
	}
	wait_add(w.cgroup, ns);
}

static __always_inline void competitor_add(struct task_struct *p, __u64 cgroup,
					   __u64 ns)
{
	struct waitrate_competitor key = {
		.cgroup_id = cgroup,
		.tgid = p->tgid,
		.tid = p->pid,
	};

	bpf_probe_read_kernel(key.comm, sizeof(key.comm), p->comm);
	huatuo_counter_add(&competitors, &key, ns);
}

static __always_inline __u32 wakeup(struct task_struct *p)
{
	__u32 tid = p->pid;

	/*
	 * A wakeup of a task still on its CPU (it had not slept yet) starts no
	 * wait, and one of a task already waiting (preempted) keeps its start.
	 */
	if (p->on_cpu || bpf_map_lookup_elem(&waiting, &tid))
		return 0;
	start_waiting(p, task_cpu(p), bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/sched_wakeup")
int waitrate_wakeup(__u64 *ctx)
{
	return wakeup((struct task_struct *)ctx[0]);
}

SEC("tp_btf/sched_wakeup_new")
int waitrate_wakeup_new(__u64 *ctx)
{
	return wakeup((struct task_struct *)ctx[0]);
}

SEC("tp_btf/sched_switch")
int waitrate_switch(__u64 *ctx)
{
	bool preempt = (bool)ctx[0];
	struct task_struct *prev = (struct task_struct *)ctx[1];
	struct task_struct *next = (struct task_struct *)ctx[2];
	__u32 cpu = bpf_get_smp_processor_id();
	__u64 now = bpf_ktime_get_ns();
	__u32 prev_pid = prev->pid;
	__u64 prev_cgroup = 0, ran;
	struct cpu_state *st = state_of(cpu);
	long state;

	if (!st)
		return 0;
	if (prev_pid) {
		prev_cgroup = huatuo_task_cgroup_id(prev, true);
		if (st->since && now > st->since) {
			ran = now - st->since;
			occupancy_add(prev_cgroup, cpu, ran);
			st->busy_ns += ran;
			if (st->target_waiting && capturing())
				competitor_add(prev, prev_cgroup,
					       ran * st->target_waiting);
		}
	}
	st->since = now;
	st->pid = next->pid;
	st->cgroup = st->pid ? huatuo_task_cgroup_id(next, true) : 0;

	if (bpf_core_field_exists(prev->__state))
		state = prev->__state;
	else
		state = BPF_CORE_READ((struct task_struct___pre514 *)prev, state);
	/* Still runnable (TASK_RUNNING is 0): it goes back to waiting for a CPU. */
	if (prev_pid && (preempt || state == 0))
		start_waiting(prev, cpu, now);
	if (st->pid)
		stop_waiting(st->pid, now);
	return 0;
}
