use super::RingBufferKib;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolFilter {
    All,
    Tcp,
    Udp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropwatchConfig {
    pub enabled: bool,
    /// Which drops become log events; every drop is counted whatever the filter.
    pub protocol_filter: ProtocolFilter,
    /// Log events per second across all CPUs (0 = unlimited); drops beyond it are counted as suppressed.
    pub max_events_per_second: u32,
    /// Kernel-to-agent ring buffer size; a power of two, at least 4 KiB.
    pub ring_buffer_kib: RingBufferKib,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
}

impl Default for DropwatchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            protocol_filter: ProtocolFilter::All,
            max_events_per_second: 100,
            ring_buffer_kib: RingBufferKib(256),
            restart_backoff_secs: 10,
        }
    }
}

super::tracer_section!(DropwatchConfig);
