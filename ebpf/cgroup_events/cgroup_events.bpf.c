// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup_events: creation and removal of cgroups in the unified hierarchy
 * (cgroup:cgroup_mkdir, cgroup:cgroup_rmdir), so the agent's attribution
 * cache learns a container's cgroup when it appears and forgets it when it
 * goes, without watching every directory of cgroupfs.
 *
 * Two entry points per tracepoint with one body: tp_btf (the cgroup itself)
 * and the classic tracepoint (its trace record) where BTF is missing.
 */
#include "vmlinux.h"
#include "huatuo.bpf.h"
#include "cgroup_events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The hierarchy id the kernel gives the unified (v2) hierarchy. */
#define UNIFIED_HIERARCHY 0

HUATUO_BTF_EXPORT(struct cgroup_event, cgroup_event);
HUATUO_BTF_EXPORT(enum cgroup_event_kind, cgroup_event_kind);

_Static_assert(sizeof(struct cgroup_event) == 16 + CGROUP_EVENT_PATH_LEN,
	       "event layout");

static __always_inline void emit(__u32 kind, int hierarchy, __u64 id,
				 const char *path)
{
	struct cgroup_event *e;
	long len;

	if (hierarchy != UNIFIED_HIERARCHY)
		return;
	e = events_reserve(sizeof(*e));
	if (!e)
		return;
	/* Ring buffer memory is not zeroed and every byte reaches userspace. */
	__builtin_memset(e, 0, sizeof(*e));
	e->id = id;
	e->kind = kind;
	len = bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
	if (len < 0)
		e->path[0] = 0;
	else if (len == sizeof(e->path))
		e->flags |= CGROUP_EVENT_F_TRUNCATED;
	events_submit(e);
}

static __always_inline void from_cgroup(__u32 kind, struct cgroup *cgrp,
					const char *path)
{
	/*
	 * kn->id is the u64 id before and after 5.5 (a union with the inode
	 * and generation before), as bpf_get_current_cgroup_id reads it.
	 */
	emit(kind, BPF_CORE_READ(cgrp, root, hierarchy_id),
	     BPF_CORE_READ(cgrp, kn, id), path);
}

SEC("tp_btf/cgroup_mkdir")
int cgroup_mkdir_btf(__u64 *ctx)
{
	from_cgroup(CGROUP_EVENT_MKDIR, (struct cgroup *)ctx[0],
		    (const char *)ctx[1]);
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int cgroup_rmdir_btf(__u64 *ctx)
{
	from_cgroup(CGROUP_EVENT_RMDIR, (struct cgroup *)ctx[0],
		    (const char *)ctx[1]);
	return 0;
}

/*
 * The trace record's id is the kernfs id since 5.5; before, it was the
 * cgroup's own (unrelated) number, so it is left 0 and userspace takes the
 * directory's inode instead.
 */
static __always_inline void from_record(__u32 kind,
					struct trace_event_raw_cgroup *ctx)
{
	/* __data_loc: low 16 bits are the string's offset in the record. */
	const char *path = (void *)ctx + (ctx->__data_loc_path & 0xffff);
	__u64 id = 0;

	if (bpf_core_field_size(ctx->id) == sizeof(__u64))
		id = ctx->id;
	emit(kind, ctx->root, id, path);
}

SEC("tracepoint/cgroup/cgroup_mkdir")
int cgroup_mkdir_tp(struct trace_event_raw_cgroup *ctx)
{
	from_record(CGROUP_EVENT_MKDIR, ctx);
	return 0;
}

SEC("tracepoint/cgroup/cgroup_rmdir")
int cgroup_rmdir_tp(struct trace_event_raw_cgroup *ctx)
{
	from_record(CGROUP_EVENT_RMDIR, ctx);
	return 0;
}
