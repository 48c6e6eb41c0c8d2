use super::RingBufferKib;
use serde::{Deserialize, Serialize};

/// Tasks stalled in direct or memory cgroup reclaim: a histogram of every stall, and an event for
/// each stall over the threshold. Also zone compactions and kswapd, where the kernel has their
/// tracepoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemreclaimConfig {
    pub enabled: bool,
    /// A stall at least this long (milliseconds) becomes an event; 0 = every stall.
    pub stall_threshold_ms: u64,
    /// Also export each event as a span of the stall.
    pub spans: bool,
    /// Log events per second across all CPUs (0 = unlimited); the rest are counted as suppressed.
    pub max_events_per_second: u32,
    /// Kernel-to-agent ring buffer size; a power of two, at least 4 KiB.
    pub ring_buffer_kib: RingBufferKib,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
    /// Count zone compactions (`compaction:mm_compaction_begin/_end`) by who ran them.
    pub compaction: bool,
    /// Count kswapd's time awake and wakes per NUMA node (`vmscan:mm_vmscan_kswapd_wake/_sleep`).
    pub kswapd: bool,
}

impl Default for MemreclaimConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            stall_threshold_ms: 900,
            spans: false,
            max_events_per_second: 20,
            ring_buffer_kib: RingBufferKib(64),
            restart_backoff_secs: 10,
            compaction: true,
            kswapd: true,
        }
    }
}

super::tracer_section!(MemreclaimConfig);
