/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A task's memory cgroup, for tracers that report one (oom, memreclaim).
 * Include after huatuo.bpf.h.
 */
#ifndef __HUATUO_MEMCG_BPF_H
#define __HUATUO_MEMCG_BPF_H

/*
 * The task's css of the memory controller, whose cgroup is the memory
 * cgroup the task is charged to (on v2, the nearest ancestor with the
 * controller enabled). NULL without CONFIG_MEMCG.
 */
static __always_inline struct cgroup_subsys_state *
memory_css(struct task_struct *task)
{
	struct cgroup_subsys_state *css = NULL;
	struct css_set *cset;
	int id;

	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return NULL;
	/* Controller ids depend on the kernel's configuration. */
	id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	cset = BPF_CORE_READ(task, cgroups);
	if (!cset)
		return NULL;
	bpf_core_read(&css, sizeof(css), &cset->subsys[id]);
	return css;
}

/* The kernfs id of the css's cgroup directory, i.e. its inode number. */
static __always_inline __u64 css_cgroup_id(struct cgroup_subsys_state *css)
{
	return css ? BPF_CORE_READ(css, cgroup, kn, id) : 0;
}

#endif /* __HUATUO_MEMCG_BPF_H */
