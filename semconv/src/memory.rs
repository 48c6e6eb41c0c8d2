//! Memory: OOM kills (oom), reclaim stalls, compactions and kswapd (memreclaim), memory cgroups,
//! and the host's memory at the time.

names! {
    /// The OOM killer chose a task to kill (`oom:mark_victim`). `process.pid`, `thread.id` and `thread.name` describe the task whose allocation triggered it; `huatuo.oom.victim.*` the task killed.
    Event OOM_KILL = "huatuo.oom.kill", "event";
    /// Process id of the task killed (the thread id on kernels before 6.9, which report only that).
    Attribute OOM_VICTIM_PID = "huatuo.oom.victim.pid", "int";
    /// Thread id of the task the kernel marked as the victim.
    Attribute OOM_VICTIM_TID = "huatuo.oom.victim.tid", "int";
    /// Kernel task name (`comm`) of the victim (Linux 6.9+).
    Attribute OOM_VICTIM_COMM = "huatuo.oom.victim.comm", "string";
    /// User id owning the victim, in the initial user namespace (Linux 6.9+).
    Attribute OOM_VICTIM_UID = "huatuo.oom.victim.uid", "int";
    /// The victim's `oom_score_adj`, -1000 to 1000 (Linux 6.9+).
    Attribute OOM_VICTIM_OOM_SCORE_ADJ = "huatuo.oom.victim.oom_score_adj", "int";
    /// The victim's virtual memory size in bytes (Linux 6.9+).
    Attribute OOM_VICTIM_MEMORY_VIRTUAL = "huatuo.oom.victim.memory.virtual", "int";
    /// The victim's resident anonymous memory in bytes (Linux 6.9+).
    Attribute OOM_VICTIM_RSS_ANON = "huatuo.oom.victim.memory.rss.anon", "int";
    /// The victim's resident file-backed memory in bytes (Linux 6.9+).
    Attribute OOM_VICTIM_RSS_FILE = "huatuo.oom.victim.memory.rss.file", "int";
    /// The victim's resident shared memory (shmem, tmpfs) in bytes (Linux 6.9+).
    Attribute OOM_VICTIM_RSS_SHMEM = "huatuo.oom.victim.memory.rss.shmem", "int";
    /// Memory of the victim's page tables in bytes (Linux 6.9+).
    Attribute OOM_VICTIM_PAGE_TABLES = "huatuo.oom.victim.memory.page_tables", "int";
    /// Memory cgroup of the task whose allocation triggered the OOM, relative to the memory controller's hierarchy (v1 or v2).
    Attribute OOM_TRIGGER_MEMCG_PATH = "huatuo.oom.trigger.memcg.path", "string";
    /// Memory cgroup of the OOM victim or of the task stalled in reclaim, relative to the memory controller's hierarchy (`/sys/fs/cgroup/memory` on v1, the unified mount on v2).
    Attribute MEMCG_PATH = "huatuo.memcg.path", "string";
    /// Kernel id (directory inode) of that memory cgroup.
    Attribute MEMCG_ID = "huatuo.memcg.id", "int";
    /// Its memory limit in bytes (v1 `memory.limit_in_bytes`, v2 `memory.max`); absent when unlimited.
    Attribute MEMCG_LIMIT = "huatuo.memcg.limit", "int";
    /// Its memory usage in bytes at the kill (read from the kernel on Linux 6.9+; before, from `memory.usage_in_bytes` / `memory.current` just after the kill).
    Attribute MEMCG_USAGE = "huatuo.memcg.usage", "int";
    /// Its highest recorded memory usage in bytes (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    Attribute MEMCG_USAGE_PEAK = "huatuo.memcg.usage.peak", "int";
    /// Times its usage hit the limit (v1 `memory.failcnt`, v2 `max` in `memory.events`).
    Attribute MEMCG_EVENTS_MAX = "huatuo.memcg.events.max", "int";
    /// Times it ran out of memory (v2 `oom` in `memory.events`).
    Attribute MEMCG_EVENTS_OOM = "huatuo.memcg.events.oom", "int";
    /// OOM kills in it so far, this one included (`oom_kill` in v1 `memory.oom_control`, v2 `memory.events`).
    Attribute MEMCG_EVENTS_OOM_KILL = "huatuo.memcg.events.oom_kill", "int";
    /// Host `MemTotal` from `/proc/meminfo`, bytes, just after the kill.
    Attribute HOST_MEMORY_TOTAL = "huatuo.host.memory.total", "int";
    /// Host `MemFree`, bytes.
    Attribute HOST_MEMORY_FREE = "huatuo.host.memory.free", "int";
    /// Host `MemAvailable`, bytes.
    Attribute HOST_MEMORY_AVAILABLE = "huatuo.host.memory.available", "int";
    /// Host `Cached` (page cache), bytes.
    Attribute HOST_MEMORY_CACHED = "huatuo.host.memory.cached", "int";
    /// Host `AnonPages`, bytes.
    Attribute HOST_MEMORY_ANON = "huatuo.host.memory.anon", "int";
    /// Host `Shmem` (shared memory and tmpfs), bytes.
    Attribute HOST_MEMORY_SHMEM = "huatuo.host.memory.shmem", "int";
    /// Host `Slab`, bytes.
    Attribute HOST_MEMORY_SLAB = "huatuo.host.memory.slab", "int";
    /// Host `SwapTotal`, bytes.
    Attribute HOST_SWAP_TOTAL = "huatuo.host.swap.total", "int";
    /// Host `SwapFree`, bytes.
    Attribute HOST_SWAP_FREE = "huatuo.host.swap.free", "int";
    /// OOM kills, by the victim's container and pod (`container.id`, `k8s.pod.uid` and the kubelet's names; none for kills outside containers). The memory cgroup path is on the event only: under container churn it would make series without bound.
    Metric OOM_KILLS = "huatuo.oom.kills", "counter {kill}";
    /// A task was stalled in memory reclaim for at least `stall_threshold_ms`: direct reclaim (`vmscan:mm_vmscan_direct_reclaim_begin/_end`, the page allocator freeing memory on the allocating task's time) or memory cgroup reclaim (`vmscan:mm_vmscan_memcg_reclaim_begin/_end`, a charge over the cgroup's limit). `process.pid`, `thread.id` and `thread.name` describe the task; `huatuo.memcg.*` its memory cgroup.
    Event MEMORY_RECLAIM_STALL = "huatuo.memory.reclaim.stall", "event";
    /// Which reclaim: `direct` or `memcg`.
    Attribute MEMORY_RECLAIM_KIND = "huatuo.memory.reclaim.kind", "string";
    /// Nanoseconds the task spent in the reclaim.
    Attribute MEMORY_RECLAIM_STALL_DURATION = "huatuo.memory.reclaim.stall.duration", "int";
    /// Pages the reclaim freed.
    Attribute MEMORY_RECLAIM_PAGES = "huatuo.memory.reclaim.pages", "int";
    /// Duration of every direct and memory cgroup reclaim a task went through, by `huatuo.memory.reclaim.kind`, counted in the kernel in log2 buckets of microseconds.
    Metric MEMORY_RECLAIM_DURATION = "huatuo.memory.reclaim.duration", "histogram s";
    /// Reclaim stalls at or above `stall_threshold_ms`, by `huatuo.memory.reclaim.kind`, every one counted in the kernel whatever the event rate limit.
    Metric MEMORY_RECLAIM_STALLS = "huatuo.memory.reclaim.stalls", "counter {stall}";
    /// Who ran a compaction: `direct` (the page allocator, on the allocating task's time: a stall), `kcompactd` (the background thread, proactive compaction included) or `manual` (a write to `vm.compact_memory` or a node's `compact` file).
    Attribute MEMORY_COMPACTION_KIND = "huatuo.memory.compaction.kind", "string";
    /// Duration of every compaction of a memory zone (`compaction:mm_compaction_begin/_end`), by `huatuo.memory.compaction.kind`, counted in the kernel in log2 buckets of microseconds; its count is the number of compactions. Absent where the kernel has no compaction tracepoints (no `CONFIG_COMPACTION`).
    Metric MEMORY_COMPACTION_DURATION = "huatuo.memory.compaction.duration", "histogram s";
    /// Time kswapd was awake balancing a NUMA node (`huatuo.numa.node`), from its wake (`vmscan:mm_vmscan_kswapd_wake`) to its sleep (`vmscan:mm_vmscan_kswapd_sleep`), the current run included; its short naps inside a run count as awake. Pages it reclaimed are `pgsteal_kswapd` in `/proc/vmstat`.
    Metric MEMORY_KSWAPD_TIME = "huatuo.memory.kswapd.time", "counter s";
    /// Wakes of kswapd per NUMA node (`huatuo.numa.node`): one per balancing pass.
    Metric MEMORY_KSWAPD_WAKEUPS = "huatuo.memory.kswapd.wakeups", "counter {wakeup}";
}
