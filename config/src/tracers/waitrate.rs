use crate::ConfigError;
use serde::{Deserialize, Serialize};

/// Run-queue wait (autotracing, with always-on kernel counters): how long each container's tasks
/// wait for a CPU, split into inner (behind its own tasks), external (behind other cgroups),
/// throttle (CFS bandwidth) and other, counted in the kernel from scheduler tracepoints and
/// exported as cumulative counters. When a container's wait rate (wait seconds per second) is
/// above the threshold, the tasks it waited behind are recorded for a while.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WaitrateConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
    /// Seconds between reads of the kernel counters (the rate is over this interval).
    pub interval_secs: u64,
    /// Wait seconds per second of wall time (the average number of the container's tasks
    /// waiting for a CPU) above which a capture is triggered.
    pub threshold: f64,
    /// Seconds the kernel records competitors during a capture.
    pub capture_secs: u64,
    /// Competitor tasks reported per capture, those the container waited behind longest.
    pub max_competitors: usize,
    /// Seconds after a capture of a container during which its triggers are only counted.
    pub cooldown_secs: u64,
}

impl Default for WaitrateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
            interval_secs: 10,
            threshold: 2.0,
            capture_secs: 5,
            max_competitors: 10,
            cooldown_secs: 1800,
        }
    }
}

impl WaitrateConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| {
            Err(ConfigError::Invalid {
                key: format!("tracers.waitrate.{key}"),
                reason,
            })
        };
        // The sampling timer and the rate over an interval need a non-zero interval.
        if self.interval_secs == 0 {
            return invalid("interval_secs", "must be at least 1".into());
        }
        if self.capture_secs == 0 {
            return invalid("capture_secs", "must be at least 1".into());
        }
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return invalid(
                "threshold",
                format!("{} must be a number of at least 0", self.threshold),
            );
        }
        Ok(())
    }
}

super::autotracer_section!(WaitrateConfig);
