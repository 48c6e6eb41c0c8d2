/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * netdev_txqueue_timeout ABI: the only C definition of what the tracer hands
 * to userspace.
 *
 * The Rust mirror lives in huatuo_ebpf::netdev_txqueue_timeout and a test
 * checks it against this struct as it appears in the object's BTF, so any
 * change here must be made there too. Largest fields first: no padding.
 */
#ifndef __NETDEV_TXQUEUE_TIMEOUT_H
#define __NETDEV_TXQUEUE_TIMEOUT_H

/* IFNAMSIZ: the kernel's own bound on an interface name. */
#define TXQ_TIMEOUT_DEV_LEN 16
/* Driver names are short identifiers; longer ones are cut, still NUL-terminated. */
#define TXQ_TIMEOUT_DRIVER_LEN 32

/* Record in ring buffer `events`: one per transmit queue the watchdog found stuck. */
struct txq_timeout_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 queue;      /* index of the stalled transmit queue */
	__u32 pad;
	__u8 dev[TXQ_TIMEOUT_DEV_LEN];       /* NUL-padded */
	__u8 driver[TXQ_TIMEOUT_DRIVER_LEN]; /* NUL-padded; empty without a bound driver */
};

#endif /* __NETDEV_TXQUEUE_TIMEOUT_H */
