// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * iolatency: per-disk block request latency as in-kernel log2 histograms of
 * microseconds (no ring buffer records):
 *   q2c  inserted into the queue (block_rq_insert) to completed
 *   d2c  issued to the driver (block_rq_issue) to completed
 * A request issued without passing through a queue (blk-mq direct issue,
 * no I/O scheduler) has q2c = d2c.
 *
 * The cgroup is the current task's when the request starts (inserted, or
 * issued directly): the submitter, since insertion and direct issue run in
 * its context. Issue from a queue may run in a kworker, so it keeps the
 * cgroup recorded at insertion.
 *
 * Start times are kept per request in a bounded hash map. tp_btf programs
 * key it by the struct request pointer; the tracepoint fallback has no
 * pointer and keys by (disk, start sector). A request partly completed in
 * several steps is counted at its first completion.
 */

/* Metric-only object: the shared ring buffer stays empty, keep it one page. */
#define HUATUO_EVENTS_BYTES 4096

#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "huatuo_hist.bpf.h"
#include "huatuo_block.bpf.h"
#include "iolatency.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

HUATUO_HIST_HASH(q2c_hist, struct iolat_key, IOLAT_MAX_SERIES);
HUATUO_HIST_HASH(d2c_hist, struct iolat_key, IOLAT_MAX_SERIES);

struct request_key {
	__u64 id;  /* request pointer (tp_btf) or start sector (tracepoint) */
	__u32 dev; /* 0 with tp_btf: the pointer alone is unique */
	__u32 pad;
};

struct request_times {
	__u64 inserted_ns;
	__u64 issued_ns; /* 0 until issued */
	__u64 cgroup_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IOLAT_MAX_IN_FLIGHT);
	__type(key, struct request_key);
	__type(value, struct request_times);
} in_flight SEC(".maps");

static __always_inline void inserted(struct request_key *key)
{
	struct request_times times = {
		.inserted_ns = bpf_ktime_get_ns(),
		.cgroup_id = bpf_get_current_cgroup_id(),
	};

	/* Overwrites what a request merged away at this address left behind. */
	if (bpf_map_update_elem(&in_flight, key, &times, BPF_ANY))
		count_counter_map_full();
}

static __always_inline void issued(struct request_key *key)
{
	struct request_times *times = bpf_map_lookup_elem(&in_flight, key);
	__u64 now = bpf_ktime_get_ns();

	if (times && !times->issued_ns) {
		times->issued_ns = now;
		return;
	}
	/*
	 * Issued directly, or issued again after a requeue: the queue wait starts
	 * now. A requeued request is reissued by a kworker: it keeps its cgroup.
	 */
	struct request_times fresh = {
		.inserted_ns = now,
		.issued_ns = now,
		.cgroup_id = times ? times->cgroup_id : bpf_get_current_cgroup_id(),
	};

	if (bpf_map_update_elem(&in_flight, key, &fresh, BPF_ANY))
		count_counter_map_full();
}

static __always_inline void completed(struct request_key *key, __u32 dev)
{
	struct request_times *times = bpf_map_lookup_elem(&in_flight, key);
	__u64 now = bpf_ktime_get_ns();
	struct iolat_key hist_key = { .dev = dev };
	__u64 inserted_ns, issued_ns;

	/* Not tracked: started before we attached, or a later partial completion. */
	if (!times)
		return;
	inserted_ns = times->inserted_ns;
	issued_ns = times->issued_ns;
	hist_key.cgroup_id = times->cgroup_id;
	bpf_map_delete_elem(&in_flight, key);
	if (!issued_ns || !dev)
		return;
	huatuo_hist_add_key(&q2c_hist, &hist_key, (now - inserted_ns) / 1000);
	huatuo_hist_add_key(&d2c_hist, &hist_key, (now - issued_ns) / 1000);
}

static __always_inline struct request_key pointer_key(struct request *rq)
{
	struct request_key key = { .id = (__u64)rq };

	return key;
}

SEC("tp_btf/block_rq_insert")
int iolat_insert_btf(__u64 *ctx)
{
	struct request_key key = pointer_key((struct request *)ctx[0]);

	inserted(&key);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int iolat_issue_btf(__u64 *ctx)
{
	struct request_key key = pointer_key((struct request *)ctx[0]);

	issued(&key);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int iolat_complete_btf(__u64 *ctx)
{
	struct request *rq = (struct request *)ctx[0];
	struct request_key key = pointer_key(rq);

	completed(&key, huatuo_request_dev(rq));
	return 0;
}

static __always_inline struct request_key sector_key(__u32 dev, __u64 sector)
{
	struct request_key key = { .id = sector, .dev = dev };

	return key;
}

SEC("tracepoint/block/block_rq_insert")
int iolat_insert_tp(struct trace_event_raw_block_rq *ctx)
{
	struct request_key key = sector_key(ctx->dev, ctx->sector);

	inserted(&key);
	return 0;
}

SEC("tracepoint/block/block_rq_issue")
int iolat_issue_tp(struct trace_event_raw_block_rq *ctx)
{
	struct request_key key = sector_key(ctx->dev, ctx->sector);

	issued(&key);
	return 0;
}

SEC("tracepoint/block/block_rq_complete")
int iolat_complete_tp(struct trace_event_raw_block_rq_completion *ctx)
{
	struct request_key key;
	__u64 sector;
	__u32 dev;

	huatuo_completion_dev_sector(ctx, &dev, &sector);
	key = sector_key(dev, sector);
	completed(&key, dev);
	return 0;
}
