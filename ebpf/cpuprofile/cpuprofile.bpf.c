// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * On-CPU stack sampling, attached to a cpu-clock perf event on every CPU for
 * the duration of one capture. Counts samples by (pid, comm, user stack,
 * kernel stack) in the kernel, so a capture costs userspace one map read at
 * the end, not a record per sample.
 *
 * With `filter_cgroup` set, only tasks under the cgroup in slot 0 of
 * `target_cgroup` (a cgroup v2 directory fd, descendants included) count.
 */
#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "cpuprofile.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u8 filter_cgroup = 0;

#define CPUPROFILE_MAX_KEYS 10240

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, CPUPROFILE_MAX_KEYS);
	__type(key, struct cpuprofile_key);
	__type(value, __u64);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, CPUPROFILE_MAX_KEYS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, CPUPROFILE_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target_cgroup SEC(".maps");

HUATUO_BTF_EXPORT(struct cpuprofile_key, cpuprofile_key);

SEC("perf_event")
int cpuprofile_sample(void *ctx)
{
	struct cpuprofile_key key = {};
	__u64 id = bpf_get_current_pid_tgid();

	key.pid = id >> 32;
	if (key.pid == 0)
		return 0;
	if (filter_cgroup && bpf_current_task_under_cgroup(&target_cgroup, 0) != 1)
		return 0;
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	key.user_stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	key.kernel_stack_id = bpf_get_stackid(ctx, &stacks, 0);
	huatuo_counter_inc(&samples, &key);
	return 0;
}
