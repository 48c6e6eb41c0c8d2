//! From the raw `memreclaim_event` record to its OTel event.

use crate::attribution::Owner;
use crate::kernel::BootClock;
use crate::telemetry::Event;
use huatuo_ebpf::memreclaim::{Kind, MemreclaimEvent};
use huatuo_semconv::{memory as names, net};
use opentelemetry::logs::{AnyValue, Severity};
use std::time::Duration;

/// The OTel mapping of one stall, given its memory cgroup's path when known; a span of the stall
/// too when `span`. Warning: the task made no progress while the kernel freed memory for it.
pub fn to_event(
    raw: &MemreclaimEvent,
    memcg_path: Option<String>,
    clock: BootClock,
    span: bool,
) -> Event {
    let kind = Kind::from_raw(raw.kind).map_or("unknown", Kind::name);
    let comm = raw.comm().into_owned();
    let mut body = format!(
        "pid {} ({comm}) stalled {} ms in {kind} reclaim, {} pages freed",
        raw.pid,
        raw.duration_ns / 1_000_000,
        raw.nr_reclaimed
    );
    let mut attributes: Vec<(&'static str, AnyValue)> = vec![
        (names::MEMORY_RECLAIM_KIND, kind.into()),
        (
            names::MEMORY_RECLAIM_STALL_DURATION,
            AnyValue::Int(i64::try_from(raw.duration_ns).unwrap_or(i64::MAX)),
        ),
        (
            names::MEMORY_RECLAIM_PAGES,
            AnyValue::Int(i64::try_from(raw.nr_reclaimed).unwrap_or(i64::MAX)),
        ),
        (net::PROCESS_PID, AnyValue::Int(raw.pid.into())),
        (net::THREAD_ID, AnyValue::Int(raw.tid.into())),
        (net::THREAD_NAME, comm.into()),
    ];
    if raw.memcg_id != 0 {
        attributes.push((
            names::MEMCG_ID,
            AnyValue::Int(i64::try_from(raw.memcg_id).unwrap_or(i64::MAX)),
        ));
    }
    if let Some(path) = memcg_path {
        body.push_str(&format!(" (memory cgroup {path})"));
        attributes.push((names::MEMCG_PATH, path.into()));
    }
    Event {
        name: names::MEMORY_RECLAIM_STALL,
        tracer: super::NAME,
        time: clock.to_system_time(raw.ts_ns),
        severity: Severity::Warn,
        body,
        attributes,
        owner: Owner::cgroup(raw.cgroup_id).with_task(raw.tid),
        span: span.then(|| Duration::from_nanos(raw.duration_ns)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracers::test_support::{assert_registered, attr, reparse};

    fn stall(kind: Kind) -> MemreclaimEvent {
        let mut raw: MemreclaimEvent = huatuo_ebpf::read_pod(&[0; MemreclaimEvent::SIZE]).unwrap();
        raw.ts_ns = 9_000;
        raw.duration_ns = 1_250_000_000;
        raw.nr_reclaimed = 32;
        raw.cgroup_id = 77;
        raw.memcg_id = 4242;
        raw.pid = 900;
        raw.tid = 901;
        raw.kind = kind as u32;
        raw.comm[..5].copy_from_slice(b"mysql");
        raw
    }

    #[test]
    fn parses_a_record_byte_for_byte() {
        let raw = stall(Kind::Memcg);
        let (parsed, short) = reparse(&raw);
        assert_eq!(parsed, raw);
        assert!(short.contains("expected 72"), "{short}");
    }

    #[test]
    fn maps_a_stall_to_registered_names() {
        let event = to_event(
            &stall(Kind::Memcg),
            Some("/db".to_owned()),
            BootClock::now(),
            false,
        );
        assert_registered(&event);
        assert_eq!(event.name, names::MEMORY_RECLAIM_STALL);
        assert_eq!(event.severity, Severity::Warn);
        assert_eq!(event.owner.cgroup_id, Some(77));
        assert_eq!(event.owner.tid, Some(901));
        assert_eq!(event.span, None);
        for (key, value) in [
            (names::MEMORY_RECLAIM_KIND, AnyValue::from("memcg")),
            (
                names::MEMORY_RECLAIM_STALL_DURATION,
                AnyValue::Int(1_250_000_000),
            ),
            (names::MEMORY_RECLAIM_PAGES, AnyValue::Int(32)),
            (net::PROCESS_PID, AnyValue::Int(900)),
            (net::THREAD_ID, AnyValue::Int(901)),
            (net::THREAD_NAME, AnyValue::from("mysql")),
            (names::MEMCG_ID, AnyValue::Int(4242)),
            (names::MEMCG_PATH, AnyValue::from("/db")),
        ] {
            assert_eq!(attr(&event, key), Some(&value), "{key}");
        }
        assert_eq!(
            event.body,
            "pid 900 (mysql) stalled 1250 ms in memcg reclaim, 32 pages freed (memory cgroup /db)"
        );
    }

    #[test]
    fn a_direct_stall_without_memcg_can_be_a_span() {
        let mut raw = stall(Kind::Direct);
        raw.memcg_id = 0;
        let event = to_event(&raw, None, BootClock::now(), true);
        assert_eq!(event.span, Some(Duration::from_millis(1250)));
        assert_eq!(
            attr(&event, names::MEMORY_RECLAIM_KIND),
            Some(&AnyValue::from("direct"))
        );
        assert_eq!(attr(&event, names::MEMCG_ID), None);
        assert_eq!(attr(&event, names::MEMCG_PATH), None);
        assert!(!event.body.contains("memory cgroup"), "{}", event.body);
    }
}
