use super::RingBufferKib;
use serde::{Deserialize, Serialize};

/// Tasks stalled in direct or memory cgroup reclaim: a histogram of every stall, and an event for
/// each stall over the threshold.
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
        }
    }
}

super::tracer_section!(MemreclaimConfig);
