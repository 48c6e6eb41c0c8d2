//! `softlockup`: every CPU the kernel's soft-lockup watchdog reports, read from the kernel's own
//! log records in `/dev/kmsg`, as one log event (CPU, seconds stuck, the task, its stack and the
//! kernel log that followed, optionally every CPU's backtrace), and a counter of every report.
//!
//! No BPF: the watchdog's report is a kernel log record, and `add_taint`, the kprobe HuaTuo uses,
//! cannot be attached here. Only records of the kernel facility count: `/dev/kmsg` accepts lines
//! from user space but never gives them facility 0, so a forged report is ignored (and counted).
//!
//! The reader starts at the end of the kernel's buffer: reports logged before the agent started
//! were already seen by a previous run, or are history `dmesg` shows better. A run restarted after
//! a failure resumes after the last record the previous run read, so nothing in between is lost
//! while the buffer holds it; records the kernel overwrote before they were read are counted as
//! dropped (`kmsg_overwritten`).

mod kmsg;
mod report;

use crate::framework::{
    section_tracer_methods, Backoff, BackoffPolicy, RunError, Tracer, TracerContext, Unsupported,
    UserCounter,
};
use crate::kernel::{BootClock, KernelEnv};
use crate::procfs::Procfs;
use crate::telemetry::Telemetry;
use anyhow::Context as _;
use futures::future::BoxFuture;
use huatuo_config::{Config, SoftlockupConfig};
use huatuo_semconv::sched as names;
use kmsg::{Reader, Record, Start};
use opentelemetry::KeyValue;
use report::{parse_lockup, Report, Snapshot};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const NAME: &str = "softlockup";

/// Present when the kernel has a soft-lockup detector (CONFIG_SOFTLOCKUP_DETECTOR).
const SOFT_WATCHDOG: &str = "/proc/sys/kernel/soft_watchdog";
/// When set, the kernel prints every CPU's backtrace itself after a report.
const KERNEL_ALL_CPU_BACKTRACE: &str = "/proc/sys/kernel/softlockup_all_cpu_backtrace";
const TAINTED: &str = "/proc/sys/kernel/tainted";
/// TAINT_SOFTLOCKUP, shown as `L`.
const TAINT_SOFTLOCKUP_BIT: u32 = 14;
const SYSRQ_TRIGGER: &str = "/proc/sysrq-trigger";

pub struct Softlockup {
    reports: UserCounter,
    forged: UserCounter,
    /// Sequence number of the last kernel log record read, for a restarted run to resume after.
    resume_after: Mutex<Option<u64>>,
}

impl Default for Softlockup {
    fn default() -> Self {
        Self {
            reports: UserCounter::new(
                names::SOFT_LOCKUPS,
                "Soft lockup reports of the kernel's watchdog, by CPU",
                "{report}",
            ),
            forged: UserCounter::new(
                names::SOFT_LOCKUP_FORGED,
                "Soft lockup reports written to /dev/kmsg from user space, ignored",
                "{record}",
            ),
            resume_after: Mutex::new(None),
        }
    }
}

fn section(config: &Config) -> &SoftlockupConfig {
    &config.tracers.softlockup
}

impl Tracer for Softlockup {
    section_tracer_methods!(NAME, section);

    fn probe(&self, _kernel: &KernelEnv) -> Result<(), Unsupported> {
        if !Path::new(kmsg::PATH).exists() {
            return Err(Unsupported(format!(
                "{} missing: kernel built without CONFIG_PRINTK",
                kmsg::PATH
            )));
        }
        if !Path::new(SOFT_WATCHDOG).exists() {
            return Err(Unsupported(format!(
                "{SOFT_WATCHDOG} missing: kernel built without CONFIG_SOFTLOCKUP_DETECTOR"
            )));
        }
        Ok(())
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        self.reports.get(&telemetry.meter);
        self.forged.get(&telemetry.meter);
    }

    fn run(self: Arc<Self>, ctx: TracerContext) -> BoxFuture<'static, Result<(), RunError>> {
        Box::pin(async move {
            let resume = *self.lock_resume();
            let start = resume.map_or(Start::End, Start::After);
            let overwritten = Arc::new(AtomicU64::new(0));
            let mut reader = Reader::open(start, overwritten.clone()).map_err(|e| {
                let reason = format!("opening {}: {e}", kmsg::PATH);
                match e.raw_os_error() {
                    Some(libc::EPERM | libc::EACCES) => RunError::Unsupported(Unsupported(
                        format!("{reason} (reading the kernel log needs CAP_SYSLOG)"),
                    )),
                    _ => RunError::Failed(anyhow::anyhow!(reason)),
                }
            })?;
            ctx.stats.kernel.attach(move || {
                Ok(HashMap::from([(
                    "kmsg_overwritten",
                    overwritten.load(Ordering::Relaxed),
                )]))
            });
            if read_number(SOFT_WATCHDOG) == Some(0) {
                tracing::warn!(
                    tracer = NAME,
                    "kernel.soft_watchdog is 0: the kernel detects no soft lockups"
                );
            }
            tracing::info!(tracer = NAME, source = kmsg::PATH, "attached");
            let result = self.follow(&mut reader, &ctx).await;
            *self.lock_resume() = reader.last_sequence();
            ctx.stats.kernel.detach();
            result.map_err(RunError::Failed)
        })
    }
}

impl Softlockup {
    fn lock_resume(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.resume_after.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the kernel log until cancelled; a report goes out once its window of following
    /// records has closed (or at cancellation, with what it has).
    async fn follow(&self, reader: &mut Reader, ctx: &TracerContext) -> anyhow::Result<()> {
        let config = section(&ctx.config);
        let mut follower = Follower {
            config,
            reports: self.reports.get(&ctx.telemetry.meter),
            forged: self.forged.get(&ctx.telemetry.meter),
            backoff: Backoff::new(BackoffPolicy {
                initial: Duration::from_secs(config.backoff_initial_secs),
                max: Duration::from_secs(config.backoff_max_secs),
                reset_after: Duration::from_secs(config.backoff_reset_secs),
            }),
            pending: None,
        };
        let clock = BootClock::now();
        let emit = |report: Report| {
            let event = report::to_event(&report, snapshot(&report), clock, config.spans);
            ctx.telemetry.emit(event);
        };
        loop {
            let deadline = follower.pending.as_ref().map(|(_, deadline)| *deadline);
            tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => {
                    if let Some((report, _)) = follower.pending.take() {
                        emit(report);
                    }
                    return Ok(());
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(far_future)),
                    if deadline.is_some() =>
                {
                    if let Some((report, _)) = follower.pending.take() {
                        emit(report);
                    }
                }
                record = reader.next() => {
                    let record = record.with_context(|| format!("reading {}", kmsg::PATH))?;
                    ctx.stats.record_received();
                    if let Some(finished) = follower.on_record(record) {
                        emit(finished);
                    }
                }
            }
        }
    }
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400)
}

/// The state of one run between records.
struct Follower<'a> {
    config: &'a SoftlockupConfig,
    reports: opentelemetry::metrics::Counter<u64>,
    forged: opentelemetry::metrics::Counter<u64>,
    backoff: Backoff,
    /// The report collecting its following records, and when its window closes.
    pending: Option<(Report, tokio::time::Instant)>,
}

impl Follower<'_> {
    /// Takes one record; returns a report it finished, if any.
    fn on_record(&mut self, record: Record) -> Option<Report> {
        let lockup = parse_lockup(&record.message);
        if !record.is_from_kernel() {
            if lockup.is_some() {
                self.forged.add(1, &[]);
                tracing::warn!(
                    tracer = NAME,
                    facility = record.facility,
                    message = %record.message,
                    "ignored a soft lockup report written to /dev/kmsg from user space"
                );
            }
            return None;
        }
        let Some(lockup) = lockup else {
            if let Some((report, _)) = self.pending.as_mut() {
                report.push(&record);
            }
            return None;
        };
        // A new report closes the window of the previous one.
        let finished = self.pending.take().map(|(report, _)| report);
        self.reports.add(
            1,
            &[KeyValue::new(
                names::CPU_LOGICAL_NUMBER,
                i64::from(lockup.cpu),
            )],
        );
        match self.backoff.admit(Instant::now()) {
            None => tracing::debug!(tracer = NAME, cpu = lockup.cpu, "report held back"),
            Some(held_back) => {
                if self.config.all_cpu_backtrace && read_number(KERNEL_ALL_CPU_BACKTRACE) != Some(1)
                {
                    request_all_cpu_backtrace();
                }
                let max_bytes = self.config.max_log_kib as usize * 1024;
                let window = Duration::from_millis(self.config.backtrace_window_ms);
                self.pending = Some((
                    Report::new(lockup, &record, held_back, max_bytes),
                    tokio::time::Instant::now() + window,
                ));
            }
        }
        finished
    }
}

/// sysrq `l`: the kernel logs a backtrace of every active CPU, which the open window collects.
fn request_all_cpu_backtrace() {
    if let Err(e) = std::fs::write(SYSRQ_TRIGGER, "l") {
        tracing::warn!(
            tracer = NAME,
            error = %e,
            "could not request all-CPU backtraces from {SYSRQ_TRIGGER}"
        );
    }
}

/// What the report's record cannot say, read when it goes out: the stuck thread's process and
/// cgroup (only if the thread id still names a task of that name), and the taint.
fn snapshot(report: &Report) -> Snapshot {
    let lockup = &report.lockup;
    let same_task = lockup.tid != 0
        && std::fs::read_to_string(format!("/proc/{}/comm", lockup.tid))
            .is_ok_and(|comm| comm.trim_end_matches('\n') == lockup.comm);
    Snapshot {
        tgid: same_task
            .then(|| Procfs::default().tgid(lockup.tid))
            .flatten(),
        cgroup_id: same_task
            .then(|| crate::attribution::task_cgroup_id(lockup.tid))
            .flatten(),
        tainted: read_number(TAINTED).map(|t| t & (1 << TAINT_SOFTLOCKUP_BIT) != 0),
    }
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::SdkMeterProvider;

    fn record(priority: u32, sequence: u64, message: &str) -> Record {
        Record::parse(format!("{priority},{sequence},{sequence}000,-;{message}\n").as_bytes())
            .unwrap()
    }

    const LOCKUP: &str = "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:812]";

    #[test]
    fn collects_kernel_records_after_a_report_and_backs_off_repeats() {
        let meter = SdkMeterProvider::default().meter("test");
        let config = SoftlockupConfig::default();
        let mut follower = Follower {
            config: &config,
            reports: meter.u64_counter("reports").build(),
            forged: meter.u64_counter("forged").build(),
            backoff: Backoff::new(BackoffPolicy {
                initial: Duration::from_secs(600),
                max: Duration::from_secs(600),
                reset_after: Duration::from_secs(3600),
            }),
            pending: None,
        };
        // Forged (user facility, whatever level it claims): nothing starts.
        assert!(follower.on_record(record(8, 1, LOCKUP)).is_none());
        assert!(follower.pending.is_none());
        // Kernel records before any report are not collected.
        assert!(follower.on_record(record(4, 2, "Call Trace:")).is_none());
        assert!(follower.pending.is_none());

        assert!(follower.on_record(record(0, 3, LOCKUP)).is_none());
        assert!(follower.on_record(record(4, 4, "Call Trace:")).is_none());
        // A user line in the window is not part of the kernel's report.
        assert!(follower
            .on_record(record(14, 5, " injected_frame+0x0/0x0"))
            .is_none());
        assert!(follower
            .on_record(record(4, 6, " spin_loop+0x10/0x20"))
            .is_none());

        // The CPU is still stuck: the next report closes the first one and is held back.
        let first = follower
            .on_record(record(0, 7, LOCKUP))
            .expect("first report");
        assert_eq!(first.stack().as_deref(), Some("spin_loop+0x10/0x20"));
        assert_eq!(first.kernel_log().lines().count(), 3);
        assert_eq!(first.held_back, 0);
        assert!(follower.pending.is_none(), "held back by the back-off");
    }
}
