use serde::{Deserialize, Serialize};

/// Transmit queue timeouts. No rate limit: the watchdog reports a device at most once per
/// `watchdog_timeo` (seconds), and only before resetting it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetdevTxqueueTimeoutConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
}

impl Default for NetdevTxqueueTimeoutConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
        }
    }
}

super::tracer_section!(NetdevTxqueueTimeoutConfig);
