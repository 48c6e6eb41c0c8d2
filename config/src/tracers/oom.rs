use serde::{Deserialize, Serialize};

/// OOM kills. No rate limit: the kernel kills at most a few tasks per OOM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OomConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
}

impl Default for OomConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
        }
    }
}

super::tracer_section!(OomConfig);
