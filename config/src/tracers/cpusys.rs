use serde::{Deserialize, Serialize};

/// Host system-CPU spikes (autotracing): /proc/stat sampled; when the share of CPU time spent in
/// the kernel is above a threshold AND rose fast since the previous sample, on-CPU stacks of the
/// whole host are sampled for a while and exported as folded stacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CpusysConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
    /// Seconds between samples of /proc/stat.
    pub interval_secs: u64,
    /// System CPU, percent of all CPUs' time, above which a capture may start.
    pub sys_percent_threshold: f64,
    /// ...and its rise since the previous sample, percentage points, above which it does.
    pub sys_percent_delta_threshold: f64,
    /// Seconds of stack sampling per capture.
    pub capture_secs: u64,
    /// Stack samples per second per CPU.
    pub frequency_hz: u64,
    /// Seconds after a capture during which new spikes are only counted.
    pub cooldown_secs: u64,
}

impl Default for CpusysConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
            interval_secs: 10,
            sys_percent_threshold: 45.0,
            sys_percent_delta_threshold: 20.0,
            capture_secs: 10,
            frequency_hz: 99,
            cooldown_secs: 1800,
        }
    }
}

super::autotracer_section!(CpusysConfig);
