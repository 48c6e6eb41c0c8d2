use super::RingBufferKib;
use serde::{Deserialize, Serialize};

/// A softirq vector, by the kernel's name for it (`irq:softirq_raise`'s format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SoftirqVector {
    Hi,
    Timer,
    NetTx,
    NetRx,
    Block,
    IrqPoll,
    Tasklet,
    Sched,
    Hrtimer,
    Rcu,
}

impl SoftirqVector {
    /// The kernel's number for the vector (`enum` in `linux/interrupt.h`, stable since 4.5).
    pub fn number(self) -> u32 {
        self as u32
    }
}

/// Softirq raise-to-entry latency: a histogram of every wait of the watched vectors, and an
/// event for each wait over the threshold (rate limited: delays come in storms on a saturated
/// CPU).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SoftirqConfig {
    pub enabled: bool,
    /// Vectors measured; each costs a program run per raise and per entry.
    pub vectors: Vec<SoftirqVector>,
    /// A wait at least this long (microseconds) becomes an event; 0 = every wait.
    pub latency_threshold_us: u64,
    /// One histogram series per CPU and vector rather than per vector.
    pub per_cpu: bool,
    /// Also export each event as a span of the wait.
    pub spans: bool,
    /// Log events per second across all CPUs (0 = unlimited); the rest are counted as suppressed.
    pub max_events_per_second: u32,
    /// Kernel-to-agent ring buffer size; a power of two, at least 4 KiB.
    pub ring_buffer_kib: RingBufferKib,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
}

impl Default for SoftirqConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            vectors: vec![SoftirqVector::NetRx, SoftirqVector::NetTx],
            latency_threshold_us: 1000,
            per_cpu: false,
            spans: false,
            max_events_per_second: 20,
            ring_buffer_kib: RingBufferKib(64),
            restart_backoff_secs: 10,
        }
    }
}

super::tracer_section!(SoftirqConfig);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_numbered_as_in_the_kernel() {
        assert_eq!(SoftirqVector::Hi.number(), 0);
        assert_eq!(SoftirqVector::NetRx.number(), 3);
        assert_eq!(SoftirqVector::IrqPoll.number(), 5);
        assert_eq!(SoftirqVector::Rcu.number(), 9);
    }
}
