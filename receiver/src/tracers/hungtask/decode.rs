//! From the raw `hungtask_event` record (plus what was read from procfs) to its OTel event.

use crate::attribution::Owner;
use crate::kernel::BootClock;
use crate::telemetry::Event;
use huatuo_ebpf::hungtask::HungTaskEvent;
use huatuo_semconv::{net, sched as names};
use opentelemetry::logs::{AnyValue, Severity};

use crate::procfs::BlockedDump;

/// What procfs said about one report.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Process of the hung thread, when the record lacks it (classic tracepoint).
    pub tgid: Option<u32>,
    /// Unified cgroup id of the hung thread, when the record lacks it (classic tracepoint).
    pub cgroup_id: Option<u64>,
    pub timeout_secs: Option<u64>,
    pub stack: Option<String>,
    /// With the number of reports skipped before it; None inside a back-off window.
    pub blocked: Option<(BlockedDump, u64)>,
}

fn int(value: impl Into<u64>) -> AnyValue {
    AnyValue::Int(i64::try_from(value.into()).unwrap_or(i64::MAX))
}

/// The OTel mapping of one report.
/// `hz`: the kernel's jiffy rate, which turns the record's blocked jiffies into seconds.
pub fn to_event(
    raw: &HungTaskEvent,
    snapshot: Snapshot,
    hz: Option<u64>,
    clock: BootClock,
) -> Event {
    let comm = raw.comm().into_owned();
    let mut attributes: Vec<(&'static str, AnyValue)> = vec![
        (net::THREAD_ID, int(raw.tid)),
        (net::THREAD_NAME, comm.clone().into()),
    ];
    let snapshot_cgroup = snapshot.cgroup_id.unwrap_or(0);
    let pid = if raw.has_task() {
        Some(raw.tgid)
    } else {
        snapshot.tgid
    };
    if let Some(pid) = pid {
        attributes.push((net::PROCESS_PID, int(pid)));
    }
    let mut body = format!("task {} ({comm}) blocked in state D", raw.tid);
    if let Some(secs) = snapshot.timeout_secs {
        attributes.push((names::HUNG_TASK_TIMEOUT, int(secs)));
        body.push_str(&format!(" for more than {secs} s"));
    }
    let blocked = hz
        .filter(|_| raw.has_task() && raw.blocked_jiffies != 0)
        .map(|hz| f64::from(raw.blocked_jiffies) / hz as f64);
    if let Some(seconds) = blocked {
        attributes.push((names::HUNG_TASK_BLOCKED, AnyValue::Double(seconds)));
        body.push_str(&format!(" (at least {seconds:.0} s so far)"));
    }
    if let Some(stack) = snapshot.stack {
        if let Some(top) = stack.lines().next() {
            body.push_str(&format!(" in {top}"));
        }
        attributes.push((names::TASK_STACK, stack.into()));
    }
    if let Some((dump, skipped)) = snapshot.blocked {
        let noun = if dump.tasks == 1 { "task" } else { "tasks" };
        body.push_str(&format!("; {} {noun} in state D", dump.tasks));
        attributes.push((names::BLOCKED_TASKS, int(dump.tasks)));
        attributes.push((names::BLOCKED_STACKS_OMITTED, int(dump.omitted)));
        attributes.push((names::BLOCKED_DUMPS_SKIPPED, int(skipped)));
        if !dump.stacks.is_empty() {
            attributes.push((names::BLOCKED_STACKS, dump.stacks.into()));
        }
    }
    Event {
        name: names::HUNG_TASK,
        tracer: super::NAME,
        time: clock.to_system_time(raw.ts_ns),
        severity: Severity::Error,
        body,
        attributes,
        owner: Owner::cgroup(if raw.has_task() {
            raw.cgroup_id
        } else {
            snapshot_cgroup
        })
        .with_task(raw.tid),
        span: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracers::test_support::{assert_registered, attr, reparse};
    use huatuo_ebpf::hungtask::FLAG_TASK;

    fn report(flags: u32) -> HungTaskEvent {
        let mut raw = HungTaskEvent::from_bytes(&[0; HungTaskEvent::SIZE]).unwrap();
        raw.ts_ns = 1_000;
        raw.tid = 4243;
        raw.flags = flags;
        raw.comm[..2].copy_from_slice(b"dd");
        if flags & FLAG_TASK != 0 {
            raw.tgid = 4242;
            raw.cgroup_id = 77;
            raw.blocked_jiffies = 250 * 130;
        }
        raw
    }

    #[test]
    fn parses_a_record_byte_for_byte() {
        let raw = report(FLAG_TASK);
        let (parsed, short) = reparse(&raw);
        assert_eq!(parsed, raw);
        assert!(short.contains("expected 48"), "{short}");
    }

    #[test]
    fn maps_a_report_with_its_dump_to_registered_names() {
        let snapshot = Snapshot {
            tgid: Some(1),
            cgroup_id: Some(1),
            timeout_secs: Some(120),
            stack: Some("rwsem_down_write_slowpath+0x2a5/0x8d0\ndown_write+0x5b/0x60".into()),
            blocked: Some((
                BlockedDump {
                    tasks: 3,
                    stacks: "3 tasks: 1 (a), 2 (b), 3 (c)\nf".into(),
                    omitted: 0,
                },
                4,
            )),
        };
        let event = to_event(&report(FLAG_TASK), snapshot, Some(250), BootClock::now());
        assert_registered(&event);
        assert_eq!(event.name, names::HUNG_TASK);
        assert_eq!(event.severity, Severity::Error);
        // The record's own cgroup wins over procfs.
        assert_eq!(event.owner.cgroup_id, Some(77));
        for (key, value) in [
            (net::THREAD_ID, 4243),
            // The task's own thread group wins over procfs.
            (net::PROCESS_PID, 4242),
            (names::HUNG_TASK_TIMEOUT, 120),
            (names::BLOCKED_TASKS, 3),
            (names::BLOCKED_STACKS_OMITTED, 0),
            (names::BLOCKED_DUMPS_SKIPPED, 4),
        ] {
            assert_eq!(attr(&event, key), Some(&AnyValue::Int(value)), "{key}");
        }
        assert_eq!(attr(&event, net::THREAD_NAME), Some(&AnyValue::from("dd")));
        assert_eq!(
            attr(&event, names::HUNG_TASK_BLOCKED),
            Some(&AnyValue::Double(130.0))
        );
        assert_eq!(
            event.body,
            "task 4243 (dd) blocked in state D for more than 120 s (at least 130 s so far) in \
             rwsem_down_write_slowpath+0x2a5/0x8d0; 3 tasks in state D"
        );
    }

    #[test]
    fn without_hz_the_blocked_time_is_left_out() {
        let event = to_event(
            &report(FLAG_TASK),
            Snapshot::default(),
            None,
            BootClock::now(),
        );
        assert_eq!(attr(&event, names::HUNG_TASK_BLOCKED), None);
        assert_eq!(event.body, "task 4243 (dd) blocked in state D");
    }

    #[test]
    fn the_tracepoint_record_leans_on_procfs() {
        let snapshot = Snapshot {
            tgid: Some(4242),
            cgroup_id: Some(88),
            ..Snapshot::default()
        };
        let event = to_event(&report(0), snapshot, Some(250), BootClock::now());
        assert_eq!(event.owner.cgroup_id, Some(88));
        assert_eq!(event.owner.tid, Some(4243));
        assert_eq!(attr(&event, net::PROCESS_PID), Some(&AnyValue::Int(4242)));
        for key in [
            names::HUNG_TASK_TIMEOUT,
            names::HUNG_TASK_BLOCKED,
            names::TASK_STACK,
            names::BLOCKED_TASKS,
            names::BLOCKED_STACKS,
        ] {
            assert_eq!(attr(&event, key), None, "{key}");
        }
        assert_eq!(event.body, "task 4243 (dd) blocked in state D");
    }
}
