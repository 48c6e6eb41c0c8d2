/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * iolatency ABI: the keyed histogram maps `q2c_hist` and `d2c_hist`
 * (huatuo_hist.bpf.h layout, key = the disk's dev_t as the kernel encodes
 * it: major << 20 | minor), mirrored in huatuo_ebpf::iolatency.
 */
#ifndef __IOLATENCY_H
#define __IOLATENCY_H

/* Disks with a histogram; requests of further disks count as counter_map_full. */
#define IOLAT_MAX_DISKS 256

/*
 * Requests in flight tracked at once, host-wide. blk-mq preallocates its
 * requests per hardware queue tag, so request pointers come from a bounded
 * set and an entry left behind (a request merged away after insertion) is
 * overwritten when its request is reused.
 */
#define IOLAT_MAX_IN_FLIGHT 16384

#endif /* __IOLATENCY_H */
