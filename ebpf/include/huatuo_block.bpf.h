/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Block request helpers shared by the tracers on the block tracepoints
 * (iolatency, iotracer): the disk of a request as a dev_t, across kernel
 * versions, and the older names of the tracepoint records.
 *
 * Include after huatuo.bpf.h.
 */
#ifndef __HUATUO_BLOCK_BPF_H
#define __HUATUO_BLOCK_BPF_H

/* The kernel's MINORBITS: a kernel dev_t is major << 20 | minor. */
#define HUATUO_MINOR_BITS 20

/* Before 5.17 a request pointed at its disk directly. */
struct request___pre517 {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

/* Before 6.x the completion tracepoint record had this name. */
struct trace_event_raw_block_rq_complete {
	dev_t dev;
	sector_t sector;
} __attribute__((preserve_access_index));

/* The disk's dev_t, as the tracepoints report it; 0 for a request without a disk. */
static __always_inline __u32 huatuo_request_dev(struct request *rq)
{
	struct gendisk *disk;

	if (bpf_core_field_exists(rq->q->disk))
		disk = BPF_CORE_READ(rq, q, disk);
	else
		disk = BPF_CORE_READ((struct request___pre517 *)rq, rq_disk);
	if (!disk)
		return 0;
	return ((__u32)BPF_CORE_READ(disk, major) << HUATUO_MINOR_BITS) |
	       (__u32)BPF_CORE_READ(disk, first_minor);
}

/*
 * The (dev, sector) of a classic block_rq_complete record, whichever of its
 * two layouts the kernel has.
 */
static __always_inline void
huatuo_completion_dev_sector(struct trace_event_raw_block_rq_completion *ctx,
			     __u32 *dev, __u64 *sector)
{
	struct trace_event_raw_block_rq_complete *old = (void *)ctx;

	if (bpf_core_type_exists(struct trace_event_raw_block_rq_completion)) {
		*dev = ctx->dev;
		*sector = ctx->sector;
	} else {
		/* Read through the helper: direct loads at both layouts' offsets
		 * would be merged by the compiler into one ctx load at a variable
		 * offset, which the verifier rejects. */
		*dev = BPF_CORE_READ(old, dev);
		*sector = BPF_CORE_READ(old, sector);
	}
}

#endif /* __HUATUO_BLOCK_BPF_H */
