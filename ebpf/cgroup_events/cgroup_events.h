/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cgroup_events ABI: the only C definition of what the cgroup watcher hands
 * to userspace.
 *
 * The Rust mirror lives in huatuo_ebpf::cgroup_events and a test checks it
 * against this struct as it appears in the object's BTF, so any change here
 * must be made there too. Largest fields first: no padding.
 */
#ifndef __CGROUP_EVENTS_H
#define __CGROUP_EVENTS_H

/*
 * Longest path kept; longer ones are cut (CGROUP_EVENT_F_TRUNCATED) and
 * userspace resolves their id by searching the hierarchy instead. The
 * deepest runtime layouts (rootless podman under a user slice, kubepods with
 * the systemd driver) stay well under 300 bytes.
 */
#define CGROUP_EVENT_PATH_LEN 512

enum cgroup_event_kind {
	CGROUP_EVENT_MKDIR = 1,
	CGROUP_EVENT_RMDIR = 2,
};

/* cgroup_event.flags */
/* The path did not fit: `path` holds its first CGROUP_EVENT_PATH_LEN-1 bytes. */
#define CGROUP_EVENT_F_TRUNCATED (1U << 0)

/*
 * Record in ring buffer `events`: a cgroup of the unified (v2) hierarchy
 * was created or removed. Other hierarchies are left out: records of every
 * tracer carry v2 ids only.
 */
struct cgroup_event {
	__u64 id;    /* kernfs id: the directory's inode, what bpf_get_current_cgroup_id returns */
	__u32 kind;  /* enum cgroup_event_kind */
	__u32 flags; /* CGROUP_EVENT_F_* */
	char path[CGROUP_EVENT_PATH_LEN]; /* relative to the mount, NUL-terminated */
};

#endif /* __CGROUP_EVENTS_H */
