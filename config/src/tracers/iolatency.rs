use serde::{Deserialize, Serialize};

/// Block request latency: per-disk histograms of queue-to-completion (q2c) and
/// issue-to-completion (d2c) times (block tracepoints, counted in the kernel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IolatencyConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
}

impl Default for IolatencyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
        }
    }
}

super::tracer_section!(IolatencyConfig);
