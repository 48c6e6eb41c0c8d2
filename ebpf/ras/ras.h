/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ras ABI: the only C definition of what ras hands to userspace. The Rust
 * mirror is huatuo_ebpf::ras; a test checks it against these types as they
 * appear in the object's BTF.
 */
#ifndef __RAS_H
#define __RAS_H

/* Which tracepoint reported the error. Append only: userspace keys on it. */
enum ras_source {
	RAS_SOURCE_MCE = 0,            /* mce:mce_record (x86 machine check) */
	RAS_SOURCE_EDAC = 1,           /* ras:mc_event (memory controller) */
	RAS_SOURCE_AER = 2,            /* ras:aer_event (PCIe) */
	RAS_SOURCE_ARM = 3,            /* ras:arm_event (ARM processor, GHES) */
	RAS_SOURCE_NON_STANDARD = 4,   /* ras:non_standard_event (firmware CPER) */
	RAS_SOURCE_MEMORY_FAILURE = 5, /* ras:memory_failure_event (page offlining) */
	RAS_SOURCES = 6,
};

/*
 * Raw tracepoint record bytes kept per error. The records carry strings and
 * firmware buffers of varying size; userspace decodes them with the
 * tracepoint's tracefs format and marks fields cut off by this bound.
 */
#define RAS_RECORD_BYTES 1024

/* Value of map `ras_counts` (PERCPU_ARRAY, one entry): every error, by source. */
struct ras_counts {
	__u64 count[RAS_SOURCES];
};

/* Record in ring buffer `events`. */
struct ras_event {
	__u64 ts_ns;  /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 source; /* enum ras_source */
	__u32 cpu;    /* CPU the tracepoint fired on */
	/* The tracepoint's record as the kernel wrote it, from its first byte
	 * (struct trace_entry), possibly followed by unrelated bytes. */
	__u8 record[RAS_RECORD_BYTES];
};

#endif /* __RAS_H */
