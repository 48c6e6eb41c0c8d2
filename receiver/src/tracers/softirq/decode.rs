//! From the raw `softirq_event` record to its OTel event.

use crate::attribution::Owner;
use crate::kernel::BootClock;
use crate::telemetry::Event;
use huatuo_ebpf::softirq::SoftirqEvent;
use huatuo_semconv::{net, sched as names};
use opentelemetry::logs::{AnyValue, Severity};
use std::time::Duration;

/// The OTel mapping of one delayed softirq; a span of the wait too when `span`. Warning: work on
/// that CPU (network receive, timers...) was held up.
pub fn to_event(raw: &SoftirqEvent, clock: BootClock, span: bool) -> Event {
    let vector = raw.vector_name();
    let comm = raw.comm().into_owned();
    let body = format!(
        "{vector} softirq on CPU {} started {} us after being raised; running: {comm} (pid {})",
        raw.cpu,
        raw.latency_ns / 1000,
        raw.pid
    );
    Event {
        name: names::SOFTIRQ_DELAY,
        tracer: super::NAME,
        time: clock.to_system_time(raw.ts_ns),
        severity: Severity::Warn,
        body,
        attributes: vec![
            (names::CPU_LOGICAL_NUMBER, AnyValue::Int(raw.cpu.into())),
            (names::SOFTIRQ_VECTOR, vector.into_owned().into()),
            (
                names::SOFTIRQ_DELAY_DURATION,
                AnyValue::Int(i64::try_from(raw.latency_ns).unwrap_or(i64::MAX)),
            ),
            (net::PROCESS_PID, AnyValue::Int(raw.pid.into())),
            (net::THREAD_ID, AnyValue::Int(raw.tid.into())),
            (net::THREAD_NAME, comm.into()),
        ],
        owner: Owner::cgroup(raw.cgroup_id).with_task(raw.tid),
        span: span.then(|| Duration::from_nanos(raw.latency_ns)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracers::test_support::{assert_registered, attr, reparse};

    fn delay() -> SoftirqEvent {
        let mut raw: SoftirqEvent = huatuo_ebpf::read_pod(&[0; SoftirqEvent::SIZE]).unwrap();
        raw.ts_ns = 5_000;
        raw.latency_ns = 2_345_678;
        raw.cgroup_id = 42;
        raw.cpu = 1;
        raw.vector = 3;
        raw.pid = 700;
        raw.tid = 701;
        raw.comm[..4].copy_from_slice(b"java");
        raw
    }

    #[test]
    fn parses_a_record_byte_for_byte() {
        let raw = delay();
        let (parsed, short) = reparse(&raw);
        assert_eq!(parsed, raw);
        assert!(short.contains("expected 56"), "{short}");
    }

    #[test]
    fn maps_a_delay_to_registered_names() {
        let event = to_event(&delay(), BootClock::now(), false);
        assert_registered(&event);
        assert_eq!(event.name, names::SOFTIRQ_DELAY);
        assert_eq!(event.severity, Severity::Warn);
        assert_eq!(event.owner.cgroup_id, Some(42));
        assert_eq!(event.owner.tid, Some(701));
        assert_eq!(event.span, None);
        for (key, value) in [
            (names::CPU_LOGICAL_NUMBER, AnyValue::Int(1)),
            (names::SOFTIRQ_VECTOR, AnyValue::from("NET_RX")),
            (names::SOFTIRQ_DELAY_DURATION, AnyValue::Int(2_345_678)),
            (net::PROCESS_PID, AnyValue::Int(700)),
            (net::THREAD_ID, AnyValue::Int(701)),
            (net::THREAD_NAME, AnyValue::from("java")),
        ] {
            assert_eq!(attr(&event, key), Some(&value), "{key}");
        }
        assert_eq!(
            event.body,
            "NET_RX softirq on CPU 1 started 2345 us after being raised; running: java (pid 700)"
        );
    }

    #[test]
    fn a_span_covers_the_wait_and_idle_has_no_cgroup() {
        let mut raw = delay();
        raw.cgroup_id = 0;
        raw.vector = 14;
        let event = to_event(&raw, BootClock::now(), true);
        assert_eq!(event.span, Some(Duration::from_nanos(2_345_678)));
        assert_eq!(event.owner.cgroup_id, None);
        assert_eq!(
            attr(&event, names::SOFTIRQ_VECTOR),
            Some(&AnyValue::from("14"))
        );
    }
}
