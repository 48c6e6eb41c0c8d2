//! The kernel's BPF run-time statistics, behind `huatuo.bpf.program.runs` and `.run_time`.
//!
//! The kernel counts runs and run time per program only while `kernel.bpf_stats_enabled` is on,
//! and then for every BPF program of the host (two clock reads per run, ~20-40 ns). The agent
//! never turns it on by itself: with `agent.bpf_stats = true` it holds it on through a
//! `BPF_ENABLE_STATS` file descriptor, which the kernel releases, turning the statistics back
//! off unless someone else holds them, when the agent exits in any way, crashes included. The
//! sysctl is never written. Without the option the metrics appear only while the sysctl is 1.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Whether this agent holds the statistics on (the sysctl does not show it: it reads back only
/// what was written to it).
static HELD: AtomicBool = AtomicBool::new(false);

/// Keeps the statistics on while held.
pub struct BpfStatsGuard {
    _fd: OwnedFd,
}

/// Turns the statistics on for the agent's lifetime when `wanted`; a failure (kernel before
/// 5.8, missing privileges) is a warning, as it only costs these two metrics.
pub fn enable(wanted: bool) -> Option<BpfStatsGuard> {
    if !wanted {
        return None;
    }
    match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
        Ok(fd) => {
            HELD.store(true, Ordering::Relaxed);
            tracing::info!("BPF run-time statistics on while the agent runs (agent.bpf_stats)");
            Some(BpfStatsGuard { _fd: fd })
        }
        Err(e) => {
            tracing::warn!(error = %e, "agent.bpf_stats: cannot turn on BPF run-time statistics (needs Linux 5.8 and CAP_SYS_ADMIN)");
            None
        }
    }
}

impl Drop for BpfStatsGuard {
    fn drop(&mut self) {
        HELD.store(false, Ordering::Relaxed);
    }
}

/// Whether the kernel is counting now: held by the agent, or turned on through the sysctl.
/// (Another process holding it through its own file descriptor cannot be seen.)
pub fn kernel_counts() -> bool {
    HELD.load(Ordering::Relaxed)
        || std::fs::read_to_string(SYSCTL).is_ok_and(|value| value.trim() == "1")
}
