// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * iotracer: block IO of one disk by submitting process and cgroup, counted
 * in the kernel for the length of one autotracing capture (loaded for it,
 * then unloaded): bytes, requests, q2c and d2c latency sums and maxima.
 *
 * A request's owner is the task current when it starts: block_io_start
 * (6.5+) runs in the submitter's context as the bio becomes a request. On
 * older kernels the agent attaches block_rq_insert instead, which is the
 * submitter's context for requests going through an I/O scheduler; a
 * request issued without being inserted is owned by the task issuing it,
 * which for direct issue is the submitter too.
 *
 * As in iolatency, tp_btf programs key in-flight requests by pointer, the
 * tracepoint fallback by start sector (the disk is fixed here).
 */

/* Metric-only object: the shared ring buffer stays empty, keep it one page. */
#define HUATUO_EVENTS_BYTES 4096

#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "huatuo_block.bpf.h"
#include "iotracer.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set before load: a constant lets the verifier see the filter. */
const volatile __u32 target_dev = 0;

#define IOTRACER_OP_READ 0
#define IOTRACER_OP_WRITE 1
#define IOTRACER_OP_OTHER 2
/* REQ_OP_MASK: the low byte of cmd_flags is the operation. */
#define IOTRACER_REQ_OP_MASK 0xff

struct request_state {
	__u64 started_ns;
	__u64 issued_ns; /* 0 until issued */
	struct iotracer_key owner;
	__u32 bytes;
	__u32 op;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IOTRACER_MAX_IN_FLIGHT);
	__type(key, __u64);
	__type(value, struct request_state);
} in_flight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IOTRACER_MAX_OWNERS);
	__type(key, struct iotracer_key);
	__type(value, struct iotracer_io);
} io_by_owner SEC(".maps");

HUATUO_BTF_EXPORT(struct iotracer_key, iotracer_key);
HUATUO_BTF_EXPORT(struct iotracer_io, iotracer_io);

static __always_inline void current_owner(struct request_state *state)
{
	state->owner.pid = bpf_get_current_pid_tgid() >> 32;
	state->owner.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(&state->comm, sizeof(state->comm));
}

static __always_inline void started(__u64 id)
{
	struct request_state state = { .started_ns = bpf_ktime_get_ns() };

	current_owner(&state);
	/* Overwrites what a request merged away at this address left behind. */
	if (bpf_map_update_elem(&in_flight, &id, &state, BPF_ANY))
		count_tracking_map_full();
}

static __always_inline void issued(__u64 id, __u32 bytes, __u32 op)
{
	struct request_state *state = bpf_map_lookup_elem(&in_flight, &id);
	__u64 now = bpf_ktime_get_ns();

	if (state && !state->issued_ns) {
		state->issued_ns = now;
		state->bytes = bytes;
		state->op = op;
		return;
	}
	/* Issued without a start seen (direct issue on a kernel without
	 * block_io_start, or started before the capture), or issued again
	 * after a requeue: the wait starts now. */
	struct request_state fresh = {
		.started_ns = now,
		.issued_ns = now,
		.bytes = bytes,
		.op = op,
	};

	if (state) {
		fresh.owner = state->owner;
		__builtin_memcpy(fresh.comm, state->comm, sizeof(fresh.comm));
	} else {
		current_owner(&fresh);
	}
	if (bpf_map_update_elem(&in_flight, &id, &fresh, BPF_ANY))
		count_tracking_map_full();
}

static __always_inline void add_max(__u64 *max, __u64 value)
{
	/* Racy between CPUs completing requests of one owner at once: a
	 * maximum may be lost to a smaller one, never invented. */
	if (value > *max)
		*max = value;
}

static __always_inline void completed(__u64 id)
{
	struct request_state *state = bpf_map_lookup_elem(&in_flight, &id);
	__u64 now = bpf_ktime_get_ns();
	struct iotracer_io *io;

	/* Not ours: another disk, started before the capture, or a later
	 * partial completion. */
	if (!state)
		return;
	struct request_state done = *state;

	bpf_map_delete_elem(&in_flight, &id);
	if (!done.issued_ns)
		return;
	io = bpf_map_lookup_elem(&io_by_owner, &done.owner);
	if (!io) {
		struct iotracer_io fresh = {};

		__builtin_memcpy(fresh.comm, done.comm, sizeof(fresh.comm));
		/* BPF_NOEXIST: another CPU may have created it meanwhile. */
		bpf_map_update_elem(&io_by_owner, &done.owner, &fresh,
				    BPF_NOEXIST);
		io = bpf_map_lookup_elem(&io_by_owner, &done.owner);
		if (!io) {
			count_counter_map_full();
			return;
		}
	}
	__u64 q2c = now - done.started_ns, d2c = now - done.issued_ns;

	if (done.op == IOTRACER_OP_READ) {
		__sync_fetch_and_add(&io->reads, 1);
		__sync_fetch_and_add(&io->read_bytes, done.bytes);
	} else if (done.op == IOTRACER_OP_WRITE) {
		__sync_fetch_and_add(&io->writes, 1);
		__sync_fetch_and_add(&io->write_bytes, done.bytes);
	} else {
		__sync_fetch_and_add(&io->others, 1);
	}
	__sync_fetch_and_add(&io->q2c_ns_sum, q2c);
	__sync_fetch_and_add(&io->d2c_ns_sum, d2c);
	add_max(&io->q2c_ns_max, q2c);
	add_max(&io->d2c_ns_max, d2c);
}

static __always_inline __u32 request_op(struct request *rq)
{
	__u32 op = rq->cmd_flags & IOTRACER_REQ_OP_MASK;

	if (op == REQ_OP_READ)
		return IOTRACER_OP_READ;
	if (op == REQ_OP_WRITE)
		return IOTRACER_OP_WRITE;
	return IOTRACER_OP_OTHER;
}

SEC("tp_btf/block_io_start")
int iotracer_start_btf(__u64 *ctx)
{
	struct request *rq = (struct request *)ctx[0];

	if (huatuo_request_dev(rq) == target_dev)
		started((__u64)rq);
	return 0;
}

SEC("tp_btf/block_rq_insert")
int iotracer_insert_btf(__u64 *ctx)
{
	struct request *rq = (struct request *)ctx[0];

	if (huatuo_request_dev(rq) == target_dev)
		started((__u64)rq);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int iotracer_issue_btf(__u64 *ctx)
{
	struct request *rq = (struct request *)ctx[0];

	if (huatuo_request_dev(rq) == target_dev)
		issued((__u64)rq, rq->__data_len, request_op(rq));
	return 0;
}

SEC("tp_btf/block_rq_complete")
int iotracer_complete_btf(__u64 *ctx)
{
	/* Only requests of the disk are in flight: no need to look at it. */
	completed(ctx[0]);
	return 0;
}

/* The operation from the record's rwbs text: an optional F (preflush), then
 * R, W, D (discard)... Copied out with a helper: the field's offset is a CO-RE
 * relocation, so the compiler reaches its second character through a ctx
 * pointer it modified, which the verifier rejects. */
static __always_inline __u32 rwbs_op(const char *rwbs)
{
	char text[2] = {};

	bpf_probe_read_kernel(text, sizeof(text), rwbs);
	if (text[0] == 'F')
		text[0] = text[1];
	if (text[0] == 'R')
		return IOTRACER_OP_READ;
	if (text[0] == 'W')
		return IOTRACER_OP_WRITE;
	return IOTRACER_OP_OTHER;
}

SEC("tracepoint/block/block_io_start")
int iotracer_start_tp(struct trace_event_raw_block_rq *ctx)
{
	if (ctx->dev == target_dev)
		started(ctx->sector);
	return 0;
}

SEC("tracepoint/block/block_rq_insert")
int iotracer_insert_tp(struct trace_event_raw_block_rq *ctx)
{
	if (ctx->dev == target_dev)
		started(ctx->sector);
	return 0;
}

SEC("tracepoint/block/block_rq_issue")
int iotracer_issue_tp(struct trace_event_raw_block_rq *ctx)
{
	if (ctx->dev == target_dev)
		issued(ctx->sector, ctx->bytes, rwbs_op(ctx->rwbs));
	return 0;
}

SEC("tracepoint/block/block_rq_complete")
int iotracer_complete_tp(struct trace_event_raw_block_rq_completion *ctx)
{
	__u64 sector;
	__u32 dev;

	huatuo_completion_dev_sector(ctx, &dev, &sector);
	if (dev == target_dev)
		completed(sector);
	return 0;
}
