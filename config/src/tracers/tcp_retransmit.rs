use super::RingBufferKib;
use serde::{Deserialize, Serialize};

/// TCP retransmits. Every one is counted in the kernel; events are rate limited because
/// retransmits come in storms when a path or peer fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpRetransmitConfig {
    pub enabled: bool,
    /// Log events per second across all CPUs (0 = unlimited); retransmits beyond it are counted as suppressed.
    pub max_events_per_second: u32,
    /// Kernel-to-agent ring buffer size; a power of two, at least 4 KiB.
    pub ring_buffer_kib: RingBufferKib,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
}

impl Default for TcpRetransmitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_events_per_second: 100,
            ring_buffer_kib: RingBufferKib(64),
            restart_backoff_secs: 10,
        }
    }
}

super::tracer_section!(TcpRetransmitConfig);
