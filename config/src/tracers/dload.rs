use serde::{Deserialize, Serialize};

/// D-state load (autotracing): a load average of the tasks in uninterruptible sleep, per
/// container and for the host; above the threshold, the stacks of those tasks are captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DloadConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
    /// Seconds between counts of the tasks in state D.
    pub interval_secs: u64,
    /// 1-minute D-state load average (tasks) above which a capture is triggered.
    pub threshold: f64,
    /// Stacks read per capture, at most.
    pub max_stacks: u32,
    /// Seconds after a capture of a container (or the host) during which its triggers are only counted.
    pub cooldown_secs: u64,
}

impl Default for DloadConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
            interval_secs: 10,
            threshold: 5.0,
            max_stacks: 32,
            cooldown_secs: 1800,
        }
    }
}

super::autotracer_section!(DloadConfig);
