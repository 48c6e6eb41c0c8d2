/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * runqlat ABI: the rows of the `runqlat_hist` histogram map (huatuo_hist.bpf.h
 * layout), mirrored in huatuo_ebpf::runqlat.
 */
#ifndef __RUNQLAT_H
#define __RUNQLAT_H

/*
 * Row 0 is the whole host. Rows are the place for per-container histograms
 * later (a row per cgroup, assigned by the agent), which is why this is a
 * row index and not a single histogram.
 */
#define RUNQLAT_ROW_HOST 0
#define RUNQLAT_ROWS 1

/*
 * Tasks waiting for a CPU tracked at once. Only runnable-but-not-running
 * tasks have an entry, so this is the host's run-queue depth summed over
 * CPUs; a task that finds it full is counted as counter_map_full.
 */
#define RUNQLAT_MAX_QUEUED 16384

#endif /* __RUNQLAT_H */
