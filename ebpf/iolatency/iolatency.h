/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * iolatency ABI: the keyed histogram maps `q2c_hist` and `d2c_hist`
 * (huatuo_hist.bpf.h layout, key struct iolat_key), mirrored in
 * huatuo_ebpf::iolatency.
 */
#ifndef __IOLATENCY_H
#define __IOLATENCY_H

/*
 * (disk, cgroup) pairs with a histogram; requests of further pairs count as
 * counter_map_full. Pairs of removed cgroups are kept (the agent cannot tell
 * when the kernel is done counting into them), so this also bounds how many
 * cgroups that did IO the map remembers over the program's life.
 */
#define IOLAT_MAX_SERIES 1024

struct iolat_key {
	__u32 dev; /* the disk's dev_t as the kernel encodes it: major << 20 | minor */
	__u32 pad;
	__u64 cgroup_id; /* unified cgroup of the task that started the request */
};

/*
 * Requests in flight tracked at once, host-wide. blk-mq preallocates its
 * requests per hardware queue tag, so request pointers come from a bounded
 * set and an entry left behind (a request merged away after insertion) is
 * overwritten when its request is reused.
 */
#define IOLAT_MAX_IN_FLIGHT 16384

#endif /* __IOLATENCY_H */
