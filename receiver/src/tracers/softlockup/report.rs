//! A soft lockup report as the kernel's watchdog logs it, and its OTel event.
//!
//! The watchdog (kernel/watchdog.c) logs, at level EMERG and with the `watchdog: ` prefix (older
//! kernels: `NMI watchdog: `),
//! `BUG: soft lockup - CPU#<cpu> stuck for <seconds>s! [<comm>:<pid>]`, then in one block the
//! modules, the registers and the call trace of the stuck CPU; all-CPU backtraces, when asked
//! for, come after. The pid is the thread's (the kernel's `task_pid_nr`).

use super::kmsg::Record;
use crate::attribution::Owner;
use crate::kernel::BootClock;
use crate::telemetry::Event;
use huatuo_semconv::{net, sched as names};
use opentelemetry::logs::{AnyValue, Severity};
use std::time::Duration;

/// Frames of the stuck task's stack kept, innermost first.
pub const MAX_STACK_FRAMES: usize = 64;

const MARKER: &str = "BUG: soft lockup - CPU#";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockup {
    pub cpu: u32,
    pub stuck_secs: u64,
    pub comm: String,
    pub tid: u32,
}

/// The lockup a watchdog line reports; None for any other line.
pub fn parse_lockup(message: &str) -> Option<Lockup> {
    let rest = &message[message.find(MARKER)? + MARKER.len()..];
    let (cpu, rest) = rest.split_once(" stuck for ")?;
    let (secs, rest) = rest.split_once("s! [")?;
    // The comm may hold any character, ':' and ']' included: the pid is after the last ':'.
    let task = rest.trim_end().strip_suffix(']')?;
    let (comm, tid) = task.rsplit_once(':')?;
    Some(Lockup {
        cpu: cpu.parse().ok()?,
        stuck_secs: secs.parse().ok()?,
        comm: comm.to_owned(),
        tid: tid.parse().ok()?,
    })
}

/// A report being assembled: the watchdog's line and the kernel records that follow it, up to
/// a size bound.
#[derive(Debug)]
pub struct Report {
    pub lockup: Lockup,
    pub timestamp_us: u64,
    /// Reports held back by the back-off since the previous one that went out.
    pub held_back: u64,
    lines: Vec<(u64, String)>,
    bytes: usize,
    max_bytes: usize,
    omitted: u64,
}

impl Report {
    pub fn new(lockup: Lockup, record: &Record, held_back: u64, max_bytes: usize) -> Self {
        let mut report = Self {
            lockup,
            timestamp_us: record.timestamp_us,
            held_back,
            lines: Vec::new(),
            bytes: 0,
            max_bytes,
            omitted: 0,
        };
        report.push(record);
        report
    }

    /// Adds a kernel record that followed, unless the log is full (then it is counted).
    pub fn push(&mut self, record: &Record) {
        let size = record.message.len() + LINE_PREFIX_BYTES;
        if self.bytes + size > self.max_bytes {
            self.omitted += 1;
            return;
        }
        self.bytes += size;
        self.lines
            .push((record.timestamp_us, record.message.clone()));
    }

    /// The records, one per line with their kernel time as `dmesg` shows it.
    pub fn kernel_log(&self) -> String {
        let mut log = String::with_capacity(self.bytes);
        for (us, message) in &self.lines {
            log.push_str(&format!(
                "[{:>5}.{:06}] {message}\n",
                us / 1_000_000,
                us % 1_000_000
            ));
        }
        log.pop();
        log
    }

    /// The stuck task's stack from the first call trace after the watchdog's line: the
    /// interrupted kernel instruction, then the task context only (the watchdog's own interrupt
    /// frames left out) without the frames the unwinder marks unreliable (`? `), at most
    /// [`MAX_STACK_FRAMES`].
    pub fn stack(&self) -> Option<String> {
        let messages: Vec<&str> = self.lines.iter().map(|(_, m)| m.as_str()).collect();
        let start = messages
            .iter()
            .position(|m| m.trim().eq_ignore_ascii_case("Call Trace:"))?
            + 1;
        // Where the CPU was interrupted, from the registers the watchdog printed: the unwinder
        // marks that frame unreliable, yet it is the one that spins.
        let interrupted = messages[..start]
            .iter()
            .find_map(|m| m.strip_prefix("RIP: 0010:"));
        let mut frames: Vec<&str> = Vec::new();
        for message in &messages[start..] {
            // Frames and context markers are indented; the first line that is not ends the trace.
            if !message.starts_with(' ') {
                break;
            }
            match message.trim() {
                "<TASK>" => frames.clear(),
                "</TASK>" => break,
                marker if marker.starts_with('<') && marker.ends_with('>') => {}
                unreliable if unreliable.starts_with("? ") => {}
                frame => frames.push(frame),
            }
        }
        if let Some(rip) = interrupted {
            frames.insert(0, rip);
        }
        frames.truncate(MAX_STACK_FRAMES);
        (!frames.is_empty()).then(|| frames.join("\n"))
    }
}

/// `[12345.123456] ` before each line of the log.
const LINE_PREFIX_BYTES: usize = 16;

/// What was read about the task and the kernel when the report went out.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The stuck thread's process, if it still runs under the same name.
    pub tgid: Option<u32>,
    pub cgroup_id: Option<u64>,
    /// Whether the kernel is tainted TAINT_SOFTLOCKUP ('L'), which the watchdog sets right after
    /// its report; None when `/proc/sys/kernel/tainted` is unreadable.
    pub tainted: Option<bool>,
}

fn int(value: impl Into<u64>) -> AnyValue {
    AnyValue::Int(i64::try_from(value.into()).unwrap_or(i64::MAX))
}

pub fn to_event(report: &Report, snapshot: Snapshot, clock: BootClock, span: bool) -> Event {
    let lockup = &report.lockup;
    let mut attributes: Vec<(&'static str, AnyValue)> = vec![
        (names::CPU_LOGICAL_NUMBER, int(lockup.cpu)),
        (names::SOFT_LOCKUP_DURATION, int(lockup.stuck_secs)),
        (net::THREAD_ID, int(lockup.tid)),
        (net::THREAD_NAME, lockup.comm.clone().into()),
        (names::SOFT_LOCKUP_KERNEL_LOG, report.kernel_log().into()),
        (names::SOFT_LOCKUP_KERNEL_LOG_OMITTED, int(report.omitted)),
        (names::SOFT_LOCKUP_HELD_BACK, int(report.held_back)),
    ];
    if let Some(tgid) = snapshot.tgid {
        attributes.push((net::PROCESS_PID, int(tgid)));
    }
    if let Some(tainted) = snapshot.tainted {
        attributes.push((names::SOFT_LOCKUP_TAINTED, AnyValue::Boolean(tainted)));
    }
    let mut body = format!(
        "soft lockup: CPU {} stuck for {} s running {} (tid {})",
        lockup.cpu, lockup.stuck_secs, lockup.comm, lockup.tid
    );
    if let Some(stack) = report.stack() {
        if let Some(top) = stack.lines().next() {
            body.push_str(&format!(" in {top}"));
        }
        attributes.push((names::SOFT_LOCKUP_STACK, stack.into()));
    }
    let duration = Duration::from_secs(lockup.stuck_secs);
    Event {
        name: names::SOFT_LOCKUP,
        tracer: super::NAME,
        time: clock.to_system_time(report.timestamp_us.saturating_mul(1_000)),
        severity: Severity::Error,
        body,
        attributes,
        // The idle task (pid 0) belongs to no cgroup.
        owner: Owner {
            cgroup_id: snapshot.cgroup_id.filter(|_| lockup.tid != 0),
            ..Owner::default()
        }
        .with_task(lockup.tid),
        span: span.then_some(duration),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracers::test_support::{assert_registered, attr};

    /// A soft lockup as a 6.12 x86-64 kernel logs it (a module spinning with preemption off),
    /// one `/dev/kmsg` record per line.
    const KERNEL_6_12: &[&str] = &[
        "0,1804,6024171035,-;watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:812]",
        "4,1805,6024171052,-;Modules linked in: spin(O) nft_chain_nat xt_MASQUERADE nf_nat",
        "4,1806,6024171060,-;CPU: 1 UID: 0 PID: 812 Comm: spin Tainted: G           O       6.12.0 #1",
        "4,1807,6024171061,-;Tainted: [O]=OOT_MODULE",
        "4,1808,6024171062,-;Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.3 04/01/2014",
        "4,1809,6024171063,-;RIP: 0010:spin_init+0x1d/0xff0 [spin]",
        "4,1810,6024171064,-;Code: 90 90 90 90 f3 0f 1e fa 0f 1f 44 00 00 55 48 89 e5 <eb> fe 66 0f 1f 44 00 00",
        "4,1811,6024171065,-;RSP: 0018:ffffb2c180a4bc88 EFLAGS: 00000246",
        "4,1812,6024171066,-;RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000000",
        "4,1813,6024171067,-;Call Trace:",
        "4,1814,6024171068,-; <IRQ>",
        "4,1815,6024171069,-; ? show_regs+0x6c/0x80",
        "4,1816,6024171070,-; ? watchdog_timer_fn+0x1e9/0x270",
        "4,1817,6024171071,-; ? __hrtimer_run_queues+0x10f/0x2a0",
        "4,1818,6024171072,-; </IRQ>",
        "4,1819,6024171073,-; <TASK>",
        "4,1820,6024171074,-; ? spin_init+0x1d/0xff0 [spin]",
        "4,1821,6024171075,-; do_one_initcall+0x5e/0x340",
        "4,1822,6024171076,-; do_init_module+0x97/0x290",
        "4,1823,6024171077,-; __do_sys_finit_module+0x2c4/0x3b0",
        "4,1824,6024171078,-; do_syscall_64+0x82/0x190",
        "4,1825,6024171079,-; entry_SYSCALL_64_after_hwframe+0x76/0x7e",
        "4,1826,6024171080,-;RIP: 0033:0x7f5a1c12a779",
        "4,1827,6024171081,-; </TASK>",
    ];

    fn records(lines: &[&str]) -> Vec<Record> {
        lines
            .iter()
            .map(|l| Record::parse(format!("{l}\n").as_bytes()).unwrap())
            .collect()
    }

    fn report(lines: &[&str], max_bytes: usize) -> Report {
        let records = records(lines);
        let lockup = parse_lockup(&records[0].message).unwrap();
        let mut report = Report::new(lockup, &records[0], 3, max_bytes);
        for record in &records[1..] {
            report.push(record);
        }
        report
    }

    #[test]
    fn parses_the_watchdog_line_of_every_kernel_generation() {
        let expected = Lockup {
            cpu: 1,
            stuck_secs: 22,
            comm: "spin".into(),
            tid: 812,
        };
        for line in [
            "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:812]",
            // 4.x kernels.
            "NMI watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:812]",
        ] {
            assert_eq!(parse_lockup(line).as_ref(), Some(&expected), "{line}");
        }
        // Task names are arbitrary: kernel threads have ':' and '/', user tasks anything.
        let odd =
            parse_lockup("watchdog: BUG: soft lockup - CPU#0 stuck for 104s! [kworker/0:1:29]")
                .unwrap();
        assert_eq!(
            (odd.comm.as_str(), odd.tid, odd.cpu),
            ("kworker/0:1", 29, 0)
        );
        let bracket =
            parse_lockup("watchdog: BUG: soft lockup - CPU#3 stuck for 5s! [a]b:c:7]").unwrap();
        assert_eq!((bracket.comm.as_str(), bracket.tid), ("a]b:c", 7));

        for other in [
            "watchdog: Watchdog detected hard LOCKUP on cpu 1",
            "INFO: task dd:1234 blocked for more than 120 seconds.",
            "watchdog: BUG: soft lockup - CPU#x stuck for 22s! [spin:812]",
            "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:812",
        ] {
            assert_eq!(parse_lockup(other), None, "{other}");
        }
    }

    #[test]
    fn extracts_the_stuck_task_stack_and_the_log() {
        let report = report(KERNEL_6_12, 64 * 1024);
        assert_eq!(
            report.stack().as_deref(),
            Some(
                "spin_init+0x1d/0xff0 [spin]\ndo_one_initcall+0x5e/0x340\ndo_init_module+0x97/0x290\n\
                 __do_sys_finit_module+0x2c4/0x3b0\ndo_syscall_64+0x82/0x190\n\
                 entry_SYSCALL_64_after_hwframe+0x76/0x7e"
            )
        );
        let log = report.kernel_log();
        assert_eq!(log.lines().count(), KERNEL_6_12.len());
        assert!(log.starts_with(
            "[ 6024.171035] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:812]\n\
             [ 6024.171052] Modules linked in:"
        ));
        assert!(log.ends_with("[ 6024.171081]  </TASK>"), "{log}");
    }

    #[test]
    fn older_kernels_without_task_markers_keep_every_reliable_frame() {
        let report = report(
            &[
                "0,10,2000000,-;NMI watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [stress:99]",
                "4,11,2000001,-;Call Trace:",
                "4,12,2000002,-; ? apic_timer_interrupt+0xf/0x20",
                "4,13,2000003,-; spin_loop+0x10/0x20",
                "4,14,2000004,-; do_syscall_64+0x5b/0x1b0",
                "4,15,2000005,-;Code: 00 00",
            ],
            64 * 1024,
        );
        assert_eq!(
            report.stack().as_deref(),
            Some("spin_loop+0x10/0x20\ndo_syscall_64+0x5b/0x1b0")
        );
    }

    #[test]
    fn the_log_is_bounded_and_what_does_not_fit_is_counted() {
        let report = report(KERNEL_6_12, 400);
        let log = report.kernel_log();
        assert!(log.len() <= 400, "{}", log.len());
        assert!(report.omitted > 0);
        assert_eq!(
            report.omitted as usize + log.lines().count(),
            KERNEL_6_12.len()
        );
    }

    #[test]
    fn maps_a_report_to_registered_names() {
        let report = report(KERNEL_6_12, 64 * 1024);
        let snapshot = Snapshot {
            tgid: Some(812),
            cgroup_id: Some(42),
            tainted: Some(true),
        };
        let event = to_event(&report, snapshot, BootClock::now(), true);
        assert_registered(&event);
        assert_eq!(event.name, names::SOFT_LOCKUP);
        assert_eq!(event.severity, Severity::Error);
        assert_eq!(event.owner.cgroup_id, Some(42));
        assert_eq!(event.span, Some(Duration::from_secs(22)));
        for (key, value) in [
            (names::CPU_LOGICAL_NUMBER, 1),
            (names::SOFT_LOCKUP_DURATION, 22),
            (net::THREAD_ID, 812),
            (net::PROCESS_PID, 812),
            (names::SOFT_LOCKUP_HELD_BACK, 3),
            (names::SOFT_LOCKUP_KERNEL_LOG_OMITTED, 0),
        ] {
            assert_eq!(attr(&event, key), Some(&AnyValue::Int(value)), "{key}");
        }
        assert_eq!(
            attr(&event, names::SOFT_LOCKUP_TAINTED),
            Some(&AnyValue::Boolean(true))
        );
        assert_eq!(
            event.body,
            "soft lockup: CPU 1 stuck for 22 s running spin (tid 812) in spin_init+0x1d/0xff0 [spin]"
        );
        let without_span = to_event(&report, Snapshot::default(), BootClock::now(), false);
        assert_eq!(without_span.span, None);
        assert_eq!(attr(&without_span, net::PROCESS_PID), None);
    }
}
