use serde::{Deserialize, Serialize};

/// Run-queue latency: a host-wide histogram of how long runnable tasks wait for a CPU
/// (scheduler tracepoints, counted in the kernel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunqlatConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
}

impl Default for RunqlatConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
        }
    }
}

super::tracer_section!(RunqlatConfig);
