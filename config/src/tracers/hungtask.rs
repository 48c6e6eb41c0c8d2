use serde::{Deserialize, Serialize};

/// Hung tasks. Reports are rare (one per blocked task per check interval), so there is no rate
/// limit; the expensive part, the stacks of every blocked task, is backed off instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HungtaskConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
    /// Stacks of tasks in state D read per report, at most (0 = only the hung task's own).
    pub max_blocked_stacks: u32,
    /// After a report carrying the blocked tasks' stacks, later reports within this many seconds
    /// carry none (0 = every report does).
    pub backoff_secs: u64,
}

impl Default for HungtaskConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
            max_blocked_stacks: 32,
            backoff_secs: 600,
        }
    }
}

super::tracer_section!(HungtaskConfig);
