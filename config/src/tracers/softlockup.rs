use serde::{Deserialize, Serialize};

/// Soft lockups, from the kernel's own log records. The watchdog reports a CPU that stays stuck
/// again every period; the back-off (HuaTuo's: 10 min doubling to 3 h, starting over after an
/// hour without reports) keeps that from flooding, while the counter still counts every report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SoftlockupConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
    /// Ask the kernel for every CPU's backtrace (sysrq `l`) when a report goes out.
    pub all_cpu_backtrace: bool,
    /// Kernel log records that follow a report are collected into it for this long.
    pub backtrace_window_ms: u64,
    /// Size bound of the collected kernel log.
    pub max_log_kib: u32,
    /// After an event, reports within this window are held back; the window doubles with each
    /// event up to `backoff_max_secs` (0 = every report is an event).
    pub backoff_initial_secs: u64,
    pub backoff_max_secs: u64,
    /// A report after this long without any starts over from `backoff_initial_secs`.
    pub backoff_reset_secs: u64,
    /// Also export each event as a span covering the time the CPU was stuck.
    pub spans: bool,
}

impl Default for SoftlockupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
            all_cpu_backtrace: false,
            backtrace_window_ms: 2000,
            max_log_kib: 64,
            backoff_initial_secs: 600,
            backoff_max_secs: 10800,
            backoff_reset_secs: 3600,
            spans: false,
        }
    }
}

super::tracer_section!(SoftlockupConfig);
