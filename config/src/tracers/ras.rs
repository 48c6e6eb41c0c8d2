use serde::{Deserialize, Serialize};

/// Hardware errors the kernel reports (machine checks, EDAC, PCIe AER, ARM and firmware records).
/// Rate limited because a failing DIMM can report corrected errors in storms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RasConfig {
    pub enabled: bool,
    /// Log events per second across all CPUs (0 = unlimited); every error is counted whatever the limit.
    pub max_events_per_second: u32,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
}

impl Default for RasConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_events_per_second: 100,
            restart_backoff_secs: 10,
        }
    }
}

super::tracer_section!(RasConfig);
