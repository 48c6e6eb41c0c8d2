/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kernel stacks captured into a record, symbolized by the agent from
 * /proc/kallsyms (huatuo_ebpf::stack is the Rust mirror, checked against this
 * layout; receiver/src/ksyms.rs symbolizes it).
 *
 * Two ways to ship a stack exist; this header does the first:
 *  - bpf_get_stack() into the record: the frames travel with the event, one
 *    copy per event (8 bytes a frame). Right where events are rate limited
 *    to a handful per CPU per second (scheduler-tick delays, CPU spikes):
 *    nothing outlives the record and nothing needs cleaning up.
 *  - a BPF_MAP_TYPE_STACK_TRACE map and bpf_get_stackid(): the kernel hashes
 *    the stack and stores each distinct one once, the record carries only an
 *    id. Right where stacks are sampled at a high rate (profiling every
 *    task at 100 Hz): most samples repeat a few stacks, so the dedup saves
 *    most of the copying, at the price of a map the reader must drain and
 *    of hash collisions (an id then points at another stack).
 *
 * Include after huatuo.bpf.h.
 */
#ifndef __HUATUO_STACK_BPF_H
#define __HUATUO_STACK_BPF_H

/*
 * Frames kept, innermost first. Below kernel.perf_event_max_stack (127 by
 * default), which bounds what bpf_get_stack may return; deeper stacks lose
 * their outermost frames (syscall entry, kthread start), the least telling.
 */
#define HUATUO_STACK_DEPTH 64

struct huatuo_kstack {
	__u32 depth; /* frames in ips; 0 when the stack could not be read */
	__u32 pad;
	__u64 ips[HUATUO_STACK_DEPTH];
};

/*
 * Fills `stack` with the kernel stack of the context `ctx` (the program's
 * own context: tracepoint, tp_btf or perf_event). Frames past `depth` are
 * left as they were; zero the record first if every byte reaches userspace.
 */
static __always_inline void huatuo_kstack_capture(void *ctx,
						  struct huatuo_kstack *stack)
{
	long bytes = bpf_get_stack(ctx, stack->ips, sizeof(stack->ips), 0);

	stack->depth = bytes > 0 ? bytes / sizeof(stack->ips[0]) : 0;
}

#endif /* __HUATUO_STACK_BPF_H */
