use crate::collectors::{patterns, Pattern};
use serde::{Deserialize, Serialize};

/// Disk IO anomalies (autotracing): /proc/diskstats sampled; when a disk's utilisation (with, on
/// NVMe, its bandwidth) or its await is above a threshold on two consecutive samples, its IO is
/// counted per process and cgroup from the block tracepoints for a while, with the tasks stalled
/// in state D. Defaults are HuaTuo's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IotracerConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
    /// Seconds between samples of /proc/diskstats.
    pub interval_secs: u64,
    /// Share of the interval a disk was busy, percent, above which it is saturated.
    pub util_percent_threshold: f64,
    /// On NVMe disks, which serve many requests at once and look busy long before they are
    /// saturated, a busy disk must also read this many MiB/s...
    pub read_mib_per_sec_threshold: f64,
    /// ...or write this many MiB/s.
    pub write_mib_per_sec_threshold: f64,
    /// Average time of a read or write request (queue and service), milliseconds, above which
    /// the disk is slow.
    pub await_ms_threshold: f64,
    /// Seconds of IO counting per capture.
    pub capture_secs: u64,
    /// Processes reported per capture, most bytes first.
    pub top_processes: u32,
    /// Open files on the disk listed per reported process.
    pub top_files: u32,
    /// Stacks of tasks in state D read per capture, at most.
    pub max_stacks: u32,
    /// Regular expressions (unanchored) of the device names watched; empty: every disk.
    pub include_devices: Vec<Pattern>,
    /// Regular expressions of device names never watched, even if included: devices whose IO the block request
    /// tracepoints do not see there (md and device-mapper pass it to other disks, RAM disks
    /// have no requests).
    pub exclude_devices: Vec<Pattern>,
    /// Seconds after a capture of a disk during which its anomalies are only counted.
    pub cooldown_secs: u64,
}

impl Default for IotracerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
            interval_secs: 5,
            util_percent_threshold: 90.0,
            read_mib_per_sec_threshold: 2000.0,
            write_mib_per_sec_threshold: 1500.0,
            await_ms_threshold: 100.0,
            capture_secs: 10,
            top_processes: 10,
            top_files: 5,
            max_stacks: 32,
            include_devices: Vec::new(),
            exclude_devices: patterns(&["^(md|dm-|ram|zram)[0-9]+$"]),
            cooldown_secs: 1800,
        }
    }
}

super::autotracer_section!(IotracerConfig);

impl IotracerConfig {
    /// Whether the include and exclude lists keep device `name`.
    pub fn watches(&self, name: &str) -> bool {
        (self.include_devices.is_empty() || self.include_devices.iter().any(|p| p.is_match(name)))
            && !self.exclude_devices.iter().any(|p| p.is_match(name))
    }
}
