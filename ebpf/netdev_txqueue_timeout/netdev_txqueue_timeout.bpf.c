// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * netdev_txqueue_timeout: every transmit queue the netdev watchdog declares
 * stuck (net:net_dev_xmit_timeout), just before it asks the driver to reset.
 *
 * The watchdog fires at most once per device per watchdog_timeo (seconds),
 * so there is no rate limit and userspace counts the records itself.
 *
 * Two entry points with one record: userspace tries tp_btf (reads the
 * net_device directly) and falls back to the tracepoint (reads the strings
 * the tracepoint already copied into its record).
 */

/* A handful of records per watchdog period; the default 256 KiB would sit unused. */
#define HUATUO_EVENTS_BYTES (16 * 1024)

#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "netdev_txqueue_timeout.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

HUATUO_BTF_EXPORT(struct txq_timeout_event, txq_timeout_event);

_Static_assert(sizeof(struct txq_timeout_event) == 64, "event layout");

/* Reserves a zeroed record: ring buffer memory is not zeroed and every byte reaches userspace. */
static __always_inline struct txq_timeout_event *begin_event(int queue)
{
	struct txq_timeout_event *e = events_reserve(sizeof(*e));

	if (!e)
		return NULL;
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->queue = queue;
	return e;
}

SEC("tp_btf/net_dev_xmit_timeout")
int txq_timeout_btf(__u64 *ctx)
{
	struct net_device *dev = (struct net_device *)ctx[0];
	struct txq_timeout_event *e = begin_event((int)ctx[1]);
	const char *driver;

	if (!e)
		return 0;
	bpf_probe_read_kernel_str(e->dev, sizeof(e->dev), dev->name);
	/* Same source as the tracepoint's own `driver` field: the parent device's driver. */
	driver = BPF_CORE_READ(dev, dev.parent, driver, name);
	if (driver)
		bpf_probe_read_kernel_str(e->driver, sizeof(e->driver), driver);
	events_submit(e);
	return 0;
}

SEC("tracepoint/net/net_dev_xmit_timeout")
int txq_timeout_tp(struct trace_event_raw_net_dev_xmit_timeout *ctx)
{
	struct txq_timeout_event *e = begin_event(ctx->queue_index);

	if (!e)
		return 0;
	/* __data_loc: low 16 bits are the string's offset in the record. */
	bpf_probe_read_kernel_str(e->dev, sizeof(e->dev),
				  (void *)ctx + (ctx->__data_loc_name & 0xffff));
	bpf_probe_read_kernel_str(e->driver, sizeof(e->driver),
				  (void *)ctx + (ctx->__data_loc_driver & 0xffff));
	events_submit(e);
	return 0;
}
