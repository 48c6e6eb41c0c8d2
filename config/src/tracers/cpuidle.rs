use serde::{Deserialize, Serialize};

/// Container CPU spikes (autotracing): each container's CPU use (cgroup v2 `cpu.stat`) sampled
/// as a percentage of the CPUs it may use; when user, system or total use is above its threshold
/// AND rose by more than its delta since the previous sample, on-CPU stacks of that container are
/// sampled for a while and exported as folded stacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CpuidleConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
    /// Seconds between samples of every container's cpu.stat.
    pub interval_secs: u64,
    /// User CPU, percent of the container's CPUs, above which a capture may start...
    pub user_percent_threshold: f64,
    /// ...when it also rose by more than this many points since the previous sample.
    pub user_percent_delta_threshold: f64,
    /// System CPU, percent of the container's CPUs (with its delta below).
    pub sys_percent_threshold: f64,
    pub sys_percent_delta_threshold: f64,
    /// Total CPU, percent of the container's CPUs (with its delta below).
    pub total_percent_threshold: f64,
    pub total_percent_delta_threshold: f64,
    /// Seconds of stack sampling per capture.
    pub capture_secs: u64,
    /// Stack samples per second per CPU.
    pub frequency_hz: u64,
    /// Seconds after a capture of a container during which its spikes are only counted.
    pub cooldown_secs: u64,
}

impl Default for CpuidleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
            interval_secs: 10,
            user_percent_threshold: 75.0,
            user_percent_delta_threshold: 45.0,
            sys_percent_threshold: 45.0,
            sys_percent_delta_threshold: 20.0,
            total_percent_threshold: 90.0,
            total_percent_delta_threshold: 55.0,
            capture_secs: 10,
            frequency_hz: 99,
            cooldown_secs: 1800,
        }
    }
}

super::autotracer_section!(CpuidleConfig);
