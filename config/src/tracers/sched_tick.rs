use super::RingBufferKib;
use serde::{Deserialize, Serialize};

/// Late scheduler ticks. Rate limited per CPU as HuaTuo does: a CPU in trouble misses ticks in
/// runs, and one stack per tick would say the same thing many times over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedTickConfig {
    pub enabled: bool,
    /// A tick is reported when the interval since the previous tick was due (the tick period plus
    /// how late this tick ran) is at least this many microseconds: HuaTuo's tick-interval
    /// threshold. The kernel checks the delay against this less one tick period.
    pub threshold_us: u64,
    /// Log events per CPU per second (0 = unlimited); every late tick is counted whatever the limit.
    pub max_events_per_cpu_per_second: u32,
    /// Also export each late tick as a span covering the delay.
    pub spans: bool,
    /// Kernel-to-agent ring buffer size; a power of two, at least 4 KiB.
    pub ring_buffer_kib: RingBufferKib,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
}

impl Default for SchedTickConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            // HuaTuo's default interval threshold (10 ms).
            threshold_us: 10_000,
            max_events_per_cpu_per_second: 10,
            spans: false,
            ring_buffer_kib: RingBufferKib(64),
            restart_backoff_secs: 10,
        }
    }
}

super::tracer_section!(SchedTickConfig);
