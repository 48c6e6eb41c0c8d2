use serde::{Deserialize, Serialize};

/// Host anonymous-memory bursts (autotracing): samples anonymous memory into a sliding window and
/// captures the largest processes when it grows fast and is a large share of RAM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemburstConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
    /// Seconds between samples of /proc/meminfo.
    pub interval_secs: u64,
    /// Samples in the sliding window; growth is measured against the oldest one.
    pub window_samples: u32,
    /// Growth over the window that triggers, percent: 100 = anonymous memory doubled.
    pub delta_percent: u32,
    /// Anonymous memory must also exceed this share of MemTotal, percent.
    pub anon_share_percent: u32,
    /// Processes reported per capture, largest resident set first.
    pub top_processes: u32,
    /// Seconds after a capture during which new bursts are only counted.
    pub cooldown_secs: u64,
}

impl Default for MemburstConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
            interval_secs: 10,
            window_samples: 60,
            delta_percent: 100,
            anon_share_percent: 70,
            top_processes: 10,
            cooldown_secs: 1800,
        }
    }
}

super::autotracer_section!(MemburstConfig);
