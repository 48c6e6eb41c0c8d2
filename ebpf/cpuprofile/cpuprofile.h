/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpuprofile ABI: on-CPU stack sampling for the autotracing CPU captures
 * (cpusys host-wide, cpuidle one container). The Rust mirror lives in
 * huatuo_ebpf::cpuprofile; a test checks it against this struct in the
 * object's BTF.
 */
#ifndef __CPUPROFILE_H
#define __CPUPROFILE_H

/* Frames kept per stack: deep enough for most kernel and user paths, and
 * bounded so a stack trace map entry stays 256 bytes. */
#define CPUPROFILE_STACK_DEPTH 32
#define CPUPROFILE_COMM_LEN 16

/* Key of map `samples` (value: u64 count). Identical stacks of one task
 * share a key, so the kernel deduplicates and userspace reads each once. */
struct cpuprofile_key {
	__u32 pid;             /* thread group; 0 for the idle task (not sampled) */
	__s32 user_stack_id;   /* in `stacks`, or negative: none / lost */
	__s32 kernel_stack_id; /* in `stacks`, or negative: none / lost */
	__u8 comm[CPUPROFILE_COMM_LEN];
	__u32 pad;
};

#endif /* __CPUPROFILE_H */
