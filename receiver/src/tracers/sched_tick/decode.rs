//! From the raw `sched_tick_event` record to its OTel event.

use crate::attribution::Owner;
use crate::kernel::BootClock;
use crate::ksyms::KernelSymbols;
use crate::telemetry::Event;
use huatuo_ebpf::sched_tick::SchedTickEvent;
use huatuo_semconv::{net, sched as names};
use opentelemetry::logs::{AnyValue, Severity};
use std::sync::Arc;
use std::time::Duration;

/// What the mapping needs besides the record.
pub struct Context {
    pub symbols: Arc<KernelSymbols>,
    /// On the interval: the tick period plus the delay.
    pub threshold: Duration,
    /// The tick period, 1/CONFIG_HZ.
    pub period: Duration,
    /// Whether each event is also a span covering the delay.
    pub spans: bool,
    pub clock: BootClock,
}

impl Context {
    /// The OTel mapping of one late tick. Warning: the CPU recovered, but everything that waited
    /// for it (the scheduler, timers, RCU) ran that much late.
    pub fn to_event(&self, raw: &SchedTickEvent) -> Event {
        let delay = Duration::from_nanos(raw.delay_ns);
        let comm = raw.comm().into_owned();
        let body = format!(
            "CPU {} ran its scheduler tick {:.3} ms late, interrupting {} ({comm})",
            raw.cpu,
            delay.as_secs_f64() * 1e3,
            raw.tid,
        );
        Event {
            name: names::SCHED_TICK_DELAY,
            tracer: super::NAME,
            time: self.clock.to_system_time(raw.ts_ns),
            severity: Severity::Warn,
            body,
            attributes: vec![
                (names::CPU_LOGICAL_NUMBER, AnyValue::Int(i64::from(raw.cpu))),
                (
                    names::SCHED_TICK_DELAY_DURATION,
                    AnyValue::Double(delay.as_secs_f64()),
                ),
                (
                    names::SCHED_TICK_INTERVAL,
                    AnyValue::Double((self.period + delay).as_secs_f64()),
                ),
                (
                    names::SCHED_TICK_THRESHOLD,
                    AnyValue::Double(self.threshold.as_secs_f64()),
                ),
                (net::THREAD_ID, AnyValue::Int(i64::from(raw.tid))),
                (net::PROCESS_PID, AnyValue::Int(i64::from(raw.pid))),
                (net::THREAD_NAME, comm.into()),
                (
                    names::KERNEL_STACK,
                    self.symbols.format_stack(raw.stack.frames()).into(),
                ),
            ],
            // The idle task belongs to no container.
            owner: match raw.pid {
                0 => Owner::default(),
                _ => Owner::cgroup(raw.cgroup_id).with_task(raw.tid),
            },
            span: self.spans.then_some(delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracers::test_support::{assert_registered, attr, expect_attr, reparse};

    const KALLSYMS: &str = "\
ffffffff81100000 t tick_nohz_handler
ffffffff81200000 T hrtimer_interrupt
ffffffff81300000 T _raw_spin_unlock_irqrestore
";

    fn context(spans: bool) -> Context {
        Context {
            symbols: Arc::new(KernelSymbols::parse(KALLSYMS.as_bytes()).unwrap()),
            threshold: Duration::from_millis(10),
            period: Duration::from_millis(4),
            spans,
            clock: BootClock::now(),
        }
    }

    fn late_tick(pid: u32) -> SchedTickEvent {
        let mut raw: SchedTickEvent = huatuo_ebpf::read_pod(&[0; SchedTickEvent::SIZE]).unwrap();
        raw.ts_ns = 5_000_000_000;
        raw.delay_ns = 12_500_000;
        raw.cgroup_id = 4242;
        raw.pid = pid;
        raw.tid = pid + 1;
        raw.cpu = 3;
        raw.comm[..6].copy_from_slice(b"stress");
        raw.stack.depth = 3;
        raw.stack.ips[..4].copy_from_slice(&[
            0xffffffff81100010,
            0xffffffff81200020,
            0xffffffff81300030,
            0xffffffff81300040, // past depth: not a frame
        ]);
        raw
    }

    #[test]
    fn parses_a_record_byte_for_byte() {
        let raw = late_tick(100);
        let (parsed, short) = reparse(&raw);
        assert_eq!(parsed, raw);
        assert!(
            short.contains(&format!("expected {}", SchedTickEvent::SIZE)),
            "{short}"
        );
    }

    #[test]
    fn maps_a_late_tick_to_registered_names() {
        let event = context(false).to_event(&late_tick(100));
        assert_registered(&event);
        assert_eq!(event.name, names::SCHED_TICK_DELAY);
        assert_eq!(event.severity, Severity::Warn);
        assert_eq!(event.owner.cgroup_id, Some(4242));
        assert_eq!(event.owner.tid, Some(101));
        assert_eq!(event.span, None);
        assert_eq!(
            expect_attr(&event, names::CPU_LOGICAL_NUMBER),
            &AnyValue::Int(3)
        );
        assert_eq!(
            expect_attr(&event, names::SCHED_TICK_DELAY_DURATION),
            &AnyValue::Double(0.0125)
        );
        assert_eq!(
            expect_attr(&event, names::SCHED_TICK_INTERVAL),
            &AnyValue::Double(0.0165)
        );
        assert_eq!(
            expect_attr(&event, names::SCHED_TICK_THRESHOLD),
            &AnyValue::Double(0.01)
        );
        assert_eq!(expect_attr(&event, net::PROCESS_PID), &AnyValue::Int(100));
        assert_eq!(expect_attr(&event, net::THREAD_ID), &AnyValue::Int(101));
        assert_eq!(
            expect_attr(&event, net::THREAD_NAME),
            &AnyValue::from("stress")
        );
        assert_eq!(
            attr(&event, names::KERNEL_STACK),
            Some(&AnyValue::from(
                "tick_nohz_handler+0x10\nhrtimer_interrupt+0x20\n_raw_spin_unlock_irqrestore+0x30"
            ))
        );
        assert_eq!(
            event.body,
            "CPU 3 ran its scheduler tick 12.500 ms late, interrupting 101 (stress)"
        );
    }

    #[test]
    fn the_delay_becomes_a_span_when_asked() {
        let event = context(true).to_event(&late_tick(100));
        assert_eq!(event.span, Some(Duration::from_nanos(12_500_000)));
    }

    #[test]
    fn the_idle_task_has_no_cgroup_and_an_unread_stack_is_empty() {
        let mut raw = late_tick(0);
        raw.stack.depth = 0;
        let event = context(false).to_event(&raw);
        assert_eq!(event.owner.cgroup_id, None);
        assert_eq!(event.owner.tid, None);
        assert_eq!(attr(&event, names::KERNEL_STACK), Some(&AnyValue::from("")));
    }
}
