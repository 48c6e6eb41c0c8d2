//! From the kernel's per-cgroup wait counters and a capture's competitor table to rates,
//! triggers and log events.

use super::{NAME, REASON};
use crate::attribution::Owner;
use crate::framework::Trigger;
use crate::telemetry::Event;
use huatuo_ebpf::waitrate::{Competitor, EXTERNAL, INNER, KINDS, OTHER, THROTTLE};
use huatuo_semconv::{autotracing as names, net};
use opentelemetry::logs::{AnyValue, Severity};
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

/// Nanoseconds waited, by kind (the index of `enum waitrate_kind`).
pub type WaitNs = [u64; KINDS];

/// The `huatuo.waitrate.kind` of each index of [`WaitNs`] ([`INNER`], [`EXTERNAL`],
/// [`THROTTLE`], [`OTHER`]).
pub const KIND_NAMES: [&str; KINDS] = ["inner", "external", "throttle", "other"];

/// What a cumulative kernel counter added since `before`. A counter lower than before is one
/// that was evicted and created again: all of it is new.
pub fn delta(now: &WaitNs, before: Option<&WaitNs>) -> WaitNs {
    let mut delta = *now;
    if let Some(before) = before {
        if now.iter().zip(before).all(|(n, b)| n >= b) {
            for (d, b) in delta.iter_mut().zip(before) {
                *d -= b;
            }
        }
    }
    delta
}

pub fn add(total: &mut WaitNs, more: &WaitNs) {
    for (t, m) in total.iter_mut().zip(more) {
        *t += m;
    }
}

/// Seconds waited per second of `elapsed`, by kind.
pub fn rates(ns: &WaitNs, elapsed: Duration) -> [f64; KINDS] {
    let elapsed = elapsed.as_nanos().max(1) as f64;
    ns.map(|ns| ns as f64 / elapsed)
}

/// The trigger, with its rate, when the container's wait over `elapsed` is above `threshold`.
pub fn trigger(
    container_id: &str,
    cgroup_id: u64,
    ns: &WaitNs,
    elapsed: Duration,
    threshold: f64,
) -> Option<(f64, Trigger)> {
    let by_kind = rates(ns, elapsed);
    let rate: f64 = by_kind.iter().sum();
    if rate <= threshold {
        return None;
    }
    let double = AnyValue::Double;
    let trigger = Trigger {
        reason: REASON,
        target: Some(container_id.to_string()),
        cgroup_id: Some(cgroup_id),
        at: SystemTime::now(),
        attributes: vec![
            (names::WAIT_RATE, double(rate)),
            (names::WAIT_RATE_THRESHOLD, double(threshold)),
            (names::WAIT_RATE_INNER, double(by_kind[INNER])),
            (names::WAIT_RATE_EXTERNAL, double(by_kind[EXTERNAL])),
            (names::WAIT_RATE_THROTTLE, double(by_kind[THROTTLE])),
            (names::WAIT_RATE_OTHER, double(by_kind[OTHER])),
        ],
    };
    Some((rate, trigger))
}

/// The span attributes of a capture that saw the target wait `ns` in `duration`.
pub fn capture_attributes(
    ns: &WaitNs,
    duration: Duration,
    competitors: usize,
    omitted: usize,
) -> Vec<(&'static str, AnyValue)> {
    let seconds = |ns: u64| AnyValue::Double(ns as f64 / 1e9);
    vec![
        (names::CAPTURE_WAIT_INNER, seconds(ns[INNER])),
        (names::CAPTURE_WAIT_EXTERNAL, seconds(ns[EXTERNAL])),
        (names::CAPTURE_WAIT_THROTTLE, seconds(ns[THROTTLE])),
        (names::CAPTURE_WAIT_OTHER, seconds(ns[OTHER])),
        (
            names::CAPTURE_DURATION,
            AnyValue::Int(duration.as_secs() as i64),
        ),
        (names::COMPETITORS, AnyValue::Int(competitors as i64)),
        (names::COMPETITORS_OMITTED, AnyValue::Int(omitted as i64)),
    ]
}

/// The `max` competitors the target waited behind longest, as events (rank 1 first), and how
/// many were left out. `targets` are the target's cgroups: a competitor in one is `inner`.
pub fn competitor_events(
    mut entries: Vec<(Competitor, u64)>,
    targets: &HashSet<u64>,
    max: usize,
) -> (Vec<Event>, usize) {
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.tid.cmp(&b.0.tid)));
    let omitted = entries.len().saturating_sub(max);
    let events = entries
        .into_iter()
        .take(max)
        .zip(1..)
        .map(|((task, ns), rank)| {
            let kind = if targets.contains(&task.cgroup_id) {
                "inner"
            } else {
                "external"
            };
            let seconds = ns as f64 / 1e9;
            let comm = task.comm().into_owned();
            Event {
                name: names::WAITRATE_COMPETITOR,
                tracer: NAME,
                time: SystemTime::now(),
                severity: Severity::Info,
                body: format!(
                    "#{rank}: {comm} (tid {}, pid {}) held the container's tasks waiting {seconds:.3} s ({kind})",
                    task.tid, task.tgid
                ),
                attributes: vec![
                    (names::RANK, AnyValue::Int(rank)),
                    (names::COMPETITOR_WAIT, AnyValue::Double(seconds)),
                    (names::WAIT_KIND, kind.into()),
                    (net::THREAD_ID, AnyValue::Int(task.tid.into())),
                    (net::PROCESS_PID, AnyValue::Int(task.tgid.into())),
                    (net::THREAD_NAME, comm.into()),
                ],
                owner: Owner::cgroup(task.cgroup_id),
                span: None,
            }
        })
        .collect();
    (events, omitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn competitor(cgroup_id: u64, tid: u32, comm: &str) -> Competitor {
        let mut name = [0u8; 16];
        name[..comm.len()].copy_from_slice(comm.as_bytes());
        Competitor {
            cgroup_id,
            tgid: tid,
            tid,
            comm: name,
        }
    }

    fn attr<'a>(attributes: &'a [(&'static str, AnyValue)], key: &str) -> &'a AnyValue {
        &attributes.iter().find(|(k, _)| *k == key).unwrap().1
    }

    #[test]
    fn kind_names_follow_the_kernel_indices() {
        assert_eq!(KIND_NAMES[INNER], "inner");
        assert_eq!(KIND_NAMES[EXTERNAL], "external");
        assert_eq!(KIND_NAMES[THROTTLE], "throttle");
        assert_eq!(KIND_NAMES[OTHER], "other");
    }

    #[test]
    fn deltas_restart_when_a_counter_went_backwards() {
        assert_eq!(delta(&[5, 7, 0, 1], Some(&[2, 7, 0, 0])), [3, 0, 0, 1]);
        assert_eq!(delta(&[5, 7, 0, 1], None), [5, 7, 0, 1]);
        // Evicted and recreated: what it holds is all new.
        assert_eq!(delta(&[1, 0, 0, 0], Some(&[2, 7, 0, 0])), [1, 0, 0, 0]);
    }

    #[test]
    fn a_container_waiting_more_than_the_threshold_triggers_with_its_split() {
        let second = 1_000_000_000;
        // 2 s of inner and 1 s of external wait over 2 s: 1.5 tasks waiting on average.
        let ns = [2 * second, second, 0, 0];
        let (rate, fired) =
            trigger("c0ffee", 42, &ns, Duration::from_secs(2), 1.0).expect("over 1.0");
        assert_eq!(rate, 1.5);
        assert_eq!(fired.target.as_deref(), Some("c0ffee"));
        assert_eq!(fired.cgroup_id, Some(42));
        assert_eq!(fired.reason, "container_wait");
        let a = &fired.attributes;
        assert_eq!(attr(a, names::WAIT_RATE_INNER), &AnyValue::Double(1.0));
        assert_eq!(attr(a, names::WAIT_RATE_EXTERNAL), &AnyValue::Double(0.5));
        assert_eq!(attr(a, names::WAIT_RATE_THRESHOLD), &AnyValue::Double(1.0));
        assert!(trigger("c0ffee", 42, &ns, Duration::from_secs(2), 1.5).is_none());
    }

    #[test]
    fn competitors_are_ranked_bounded_and_classified() {
        let targets = HashSet::from([7]);
        let entries = vec![
            (competitor(9, 100, "noisy"), 3_000_000_000),
            (competitor(7, 101, "sibling"), 1_000_000_000),
            (competitor(9, 102, "small"), 1_000),
        ];
        let (events, omitted) = competitor_events(entries, &targets, 2);
        assert_eq!(omitted, 1);
        assert_eq!(events.len(), 2);
        let first = &events[0].attributes;
        assert_eq!(attr(first, names::RANK), &AnyValue::Int(1));
        assert_eq!(attr(first, names::WAIT_KIND), &AnyValue::from("external"));
        assert_eq!(attr(first, names::COMPETITOR_WAIT), &AnyValue::Double(3.0));
        assert_eq!(attr(first, net::THREAD_NAME), &AnyValue::from("noisy"));
        assert_eq!(events[0].owner.cgroup_id, Some(9));
        assert_eq!(
            attr(&events[1].attributes, names::WAIT_KIND),
            &AnyValue::from("inner")
        );
    }
}
