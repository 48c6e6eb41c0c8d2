use super::RingBufferKib;
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

/// Receive latency of TCP packets, from the kernel's receive stamp to three stages. Thresholds are
/// HuaTuo's (5 ms, 10 ms, 115 ms); events are rate limited because a stalled host makes every
/// packet late at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetrecvlatConfig {
    pub enabled: bool,
    /// Report packets that entered the stack (netif) at least this many µs after their stamp.
    pub netif_threshold_us: NonZeroU32,
    /// Report packets processed by their TCP socket at least this many µs after their stamp.
    pub tcp_threshold_us: NonZeroU32,
    /// Report packets copied to the reading process at least this many µs after their stamp.
    pub user_copy_threshold_us: NonZeroU32,
    /// Hold a socket with RX software timestamps on while the tracer runs, so the kernel stamps
    /// every packet (otherwise only while some other program asked for it).
    pub enable_rx_timestamps: bool,
    /// Also export each event as a span covering the latency.
    pub spans: bool,
    /// Log events per second across all CPUs (0 = unlimited); packets beyond it are counted as suppressed.
    pub max_events_per_second: u32,
    /// Kernel-to-agent ring buffer size; a power of two, at least 4 KiB.
    pub ring_buffer_kib: RingBufferKib,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
}

impl Default for NetrecvlatConfig {
    fn default() -> Self {
        let us = |v| NonZeroU32::new(v).expect("non-zero");
        Self {
            enabled: true,
            netif_threshold_us: us(5_000),
            tcp_threshold_us: us(10_000),
            user_copy_threshold_us: us(115_000),
            enable_rx_timestamps: true,
            spans: false,
            max_events_per_second: 100,
            ring_buffer_kib: RingBufferKib(64),
            restart_backoff_secs: 10,
        }
    }
}

super::tracer_section!(NetrecvlatConfig);
