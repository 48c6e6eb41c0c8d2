/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * iotracer ABI: the hash map `io_by_owner` (struct iotracer_key ->
 * struct iotracer_io) filled during one capture, and the .rodata global
 * `target_dev` (the captured disk's kernel dev_t, major << 20 | minor),
 * mirrored in huatuo_ebpf::iotracer (checked against this BTF by a test).
 */
#ifndef __IOTRACER_H
#define __IOTRACER_H

/* (process, cgroup) pairs counted per capture; further ones count as counter_map_full. */
#define IOTRACER_MAX_OWNERS 4096

/* Requests of the captured disk in flight tracked at once (see iolatency.h). */
#define IOTRACER_MAX_IN_FLIGHT 16384

/* Whom a request was submitted by: the task that started it. */
struct iotracer_key {
	__u64 cgroup_id; /* its cgroup v2 id */
	__u32 pid;       /* thread group id */
	__u32 pad;
};

/* Requests of one owner completed during the capture. */
struct iotracer_io {
	__u64 read_bytes;
	__u64 write_bytes;
	__u64 reads;
	__u64 writes;
	__u64 others; /* flushes, discards... */
	/* From start (block_io_start, else insertion) to completion. */
	__u64 q2c_ns_sum;
	__u64 q2c_ns_max;
	/* From issue to the driver to completion. */
	__u64 d2c_ns_sum;
	__u64 d2c_ns_max;
	char comm[16];
};

#endif /* __IOTRACER_H */
