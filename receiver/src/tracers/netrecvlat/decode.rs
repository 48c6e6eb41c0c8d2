//! From the raw `netrecvlat_event` record to its OTel event, and the attributes of the metrics'
//! series.

use crate::attribution::Owner;
use crate::kernel::BootClock;
use crate::telemetry::Event;
use crate::tracers::net::{self, Endpoints};
use huatuo_ebpf::netrecvlat::{NetrecvlatEvent, SkipCause, Stage, STAGES};
use huatuo_semconv::net as names;
use opentelemetry::logs::{AnyValue, Severity};
use opentelemetry::KeyValue;

pub fn stage_name(stage: Option<Stage>) -> &'static str {
    match stage {
        Some(Stage::Netif) => "netif",
        Some(Stage::Tcp) => "tcp",
        Some(Stage::UserCopy) => "user_copy",
        // The object is built with the agent, so only a corrupted record gets here.
        None => "unknown",
    }
}

fn skip_name(cause: SkipCause) -> &'static str {
    match cause {
        SkipCause::NoTimestamp => "no_timestamp",
        SkipCause::ClockStep => "clock_step",
        SkipCause::OtherClock => "other_clock",
    }
}

/// Attributes of row `row` of the latency histogram map: its stage.
pub fn histogram_row_attributes(row: u32) -> Vec<KeyValue> {
    let stage = u8::try_from(row).ok().and_then(Stage::from_raw);
    vec![KeyValue::new(
        names::NET_RX_LATENCY_STAGE,
        stage_name(stage),
    )]
}

/// Attributes of the `huatuo.net.rx_latency.skipped` series of a stage and cause.
pub fn skip_attributes(stage: Stage, cause: SkipCause) -> [KeyValue; 2] {
    [
        KeyValue::new(names::NET_RX_LATENCY_STAGE, stage_name(Some(stage))),
        KeyValue::new(names::NET_RX_LATENCY_SKIP_REASON, skip_name(cause)),
    ]
}

/// How records become events: the thresholds the program was loaded with, and whether events
/// are spans too.
pub struct Mapping {
    pub clock: BootClock,
    pub threshold_ns: [u64; STAGES],
    pub spans: bool,
}

impl Mapping {
    /// The OTel mapping of one late packet.
    pub fn to_event(&self, raw: &NetrecvlatEvent) -> Event {
        let stage = raw.stage();
        let stage_text = stage_name(stage);
        let latency = raw.latency();
        let mut attributes: Vec<(&'static str, AnyValue)> = vec![
            (names::NET_RX_LATENCY_STAGE, stage_text.into()),
            (
                names::NET_RX_LATENCY_DURATION_NS,
                i64::try_from(raw.latency_ns).unwrap_or(i64::MAX).into(),
            ),
            (names::NETWORK_TRANSPORT, "tcp".into()),
            (
                names::NETWORK_TYPE,
                net::family_network_type(raw.family).into(),
            ),
            (names::SKB_LEN, i64::from(raw.len).into()),
        ];
        let threshold = stage.map(|s| self.threshold_ns[s as usize]);
        if let Some(threshold) = threshold {
            attributes.push((
                names::NET_RX_LATENCY_THRESHOLD_NS,
                i64::try_from(threshold).unwrap_or(i64::MAX).into(),
            ));
        }
        let mut summary = String::from("TCP packet");
        if let (Some(src), Some(dst)) = (raw.src_addr(), raw.dst_addr()) {
            let ends = Endpoints {
                src,
                dst,
                ports: Some((raw.sport, raw.dport)),
            };
            ends.push_attributes(&mut attributes);
            summary = format!("{summary} {ends}");
        }
        summary = format!(
            "{summary} reached {stage_text} {:.3} ms after receive",
            latency.as_secs_f64() * 1e3
        );
        if let Some(threshold) = threshold {
            summary = format!("{summary} (threshold {:.3} ms)", threshold as f64 / 1e6);
        }
        if let Some(state) = net::tcp_state_name(raw.state) {
            attributes.push((names::TCP_STATE, state.into()));
            summary = format!("{summary} in {state}");
        }
        if raw.netns_inum != 0 {
            attributes.push((names::NETNS_INODE, i64::from(raw.netns_inum).into()));
        }
        let ifname = raw.ifname();
        if !ifname.is_empty() {
            attributes.push((names::NETWORK_INTERFACE_NAME, ifname.into_owned().into()));
        }
        let mut owner = Owner::cgroup(raw.cgroup_id).with_netns(raw.netns_inum);
        if stage == Some(Stage::UserCopy) && raw.pid != 0 {
            // The reader copying the data is the socket's owner.
            owner = owner.with_task(raw.tid);
            let comm = raw.comm().into_owned();
            summary = format!("{summary}, read by {comm} (pid {})", raw.pid);
            attributes.push((names::PROCESS_PID, i64::from(raw.pid).into()));
            attributes.push((names::THREAD_ID, i64::from(raw.tid).into()));
            attributes.push((names::THREAD_NAME, comm.into()));
        }
        if raw.mono_stamp != 0 {
            attributes.push((names::NET_RX_LATENCY_SENDER_TIMESTAMP, true.into()));
        }
        Event {
            name: names::NET_RX_LATENCY,
            tracer: super::NAME,
            time: self.clock.to_system_time(raw.ts_ns),
            severity: Severity::Warn,
            body: summary,
            attributes,
            owner,
            span: self.spans.then_some(latency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracers::test_support::{assert_registered, attr, reparse};
    use huatuo_ebpf::net::{FAMILY_INET, FAMILY_INET6};
    use huatuo_semconv::{is_registered, Kind as NameKind};
    use std::net::Ipv6Addr;
    use std::time::Duration;

    const TCP_ESTABLISHED: u8 = 1;

    fn mapping(spans: bool) -> Mapping {
        Mapping {
            clock: BootClock::now(),
            threshold_ns: [5_000_000, 10_000_000, 115_000_000],
            spans,
        }
    }

    fn slow_copy() -> NetrecvlatEvent {
        let mut raw = NetrecvlatEvent::from_bytes(&[0; NetrecvlatEvent::SIZE]).unwrap();
        raw.ts_ns = 1_000;
        raw.latency_ns = 120_500_000;
        raw.cgroup_id = 42;
        raw.netns_inum = 4026531840;
        raw.pid = 1234;
        raw.tid = 1235;
        raw.len = 1448;
        raw.sport = 443;
        raw.dport = 40000;
        raw.family = FAMILY_INET;
        raw.state = TCP_ESTABLISHED;
        raw.stage = Stage::UserCopy as u8;
        raw.saddr[..4].copy_from_slice(&[10, 0, 0, 2]);
        raw.daddr[..4].copy_from_slice(&[10, 0, 0, 1]);
        raw.comm[..4].copy_from_slice(b"curl");
        raw
    }

    #[test]
    fn parses_a_record_byte_for_byte() {
        let raw = slow_copy();
        let (parsed, short) = reparse(&raw);
        assert_eq!(parsed, raw);
        assert!(short.contains("expected 112"), "{short}");
    }

    #[test]
    fn maps_a_late_copy_to_registered_names() {
        let event = mapping(false).to_event(&slow_copy());
        assert_registered(&event);
        assert_eq!(event.name, names::NET_RX_LATENCY);
        assert_eq!(event.severity, Severity::Warn);
        let expect = [
            (names::NET_RX_LATENCY_STAGE, AnyValue::from("user_copy")),
            (
                names::NET_RX_LATENCY_DURATION_NS,
                AnyValue::Int(120_500_000),
            ),
            (
                names::NET_RX_LATENCY_THRESHOLD_NS,
                AnyValue::Int(115_000_000),
            ),
            (names::NETWORK_TRANSPORT, AnyValue::from("tcp")),
            (names::NETWORK_TYPE, AnyValue::from("ipv4")),
            (names::SKB_LEN, AnyValue::Int(1448)),
            (names::SOURCE_ADDRESS, AnyValue::from("10.0.0.2")),
            (names::SOURCE_PORT, AnyValue::Int(443)),
            (names::DESTINATION_ADDRESS, AnyValue::from("10.0.0.1")),
            (names::DESTINATION_PORT, AnyValue::Int(40000)),
            (names::TCP_STATE, AnyValue::from("ESTABLISHED")),
            (names::NETNS_INODE, AnyValue::Int(4026531840)),
            (names::PROCESS_PID, AnyValue::Int(1234)),
            (names::THREAD_ID, AnyValue::Int(1235)),
            (names::THREAD_NAME, AnyValue::from("curl")),
        ];
        for (key, value) in &expect {
            assert_eq!(attr(&event, key), Some(value), "{key}");
        }
        assert_eq!(event.attributes.len(), expect.len());
        assert_eq!(event.owner.cgroup_id, Some(42));
        assert_eq!(event.owner.netns_inum, Some(4026531840));
        assert_eq!(event.owner.tid, Some(1235));
        assert_eq!(event.span, None);
        assert_eq!(
            event.body,
            "TCP packet 10.0.0.2:443 -> 10.0.0.1:40000 reached user_copy 120.500 ms after receive \
             (threshold 115.000 ms) in ESTABLISHED, read by curl (pid 1234)"
        );
    }

    #[test]
    fn netif_has_the_device_and_no_socket_or_reader() {
        let mut raw = slow_copy();
        raw.stage = Stage::Netif as u8;
        raw.state = 0;
        raw.cgroup_id = 0;
        raw.latency_ns = 6_000_000;
        raw.family = FAMILY_INET6;
        raw.saddr = "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets();
        raw.daddr = Ipv6Addr::LOCALHOST.octets();
        raw.ifname[..4].copy_from_slice(b"eth0");
        raw.mono_stamp = 1;
        // The kernel leaves the reader empty here; a stray pid must not be reported either.
        let event = mapping(true).to_event(&raw);
        assert_registered(&event);
        assert_eq!(
            attr(&event, names::NETWORK_INTERFACE_NAME),
            Some(&AnyValue::from("eth0"))
        );
        assert_eq!(
            attr(&event, names::NET_RX_LATENCY_SENDER_TIMESTAMP),
            Some(&AnyValue::Boolean(true))
        );
        assert_eq!(attr(&event, names::PROCESS_PID), None);
        assert_eq!(attr(&event, names::TCP_STATE), None);
        // Without a socket owner, the packet's namespace names the container.
        assert_eq!(event.owner.cgroup_id, None);
        assert_eq!(event.owner.netns_inum, Some(4026531840));
        assert_eq!(event.owner.tid, None);
        assert_eq!(event.span, Some(Duration::from_millis(6)));
        assert_eq!(
            event.body,
            "TCP packet [2001:db8::2]:443 -> [::1]:40000 reached netif 6.000 ms after receive \
             (threshold 5.000 ms)"
        );
    }

    #[test]
    fn unknown_stage_is_named_not_guessed() {
        let mut raw = slow_copy();
        raw.stage = 9;
        raw.family = 0;
        let event = mapping(false).to_event(&raw);
        assert_registered(&event);
        assert_eq!(
            attr(&event, names::NET_RX_LATENCY_STAGE),
            Some(&AnyValue::from("unknown"))
        );
        assert_eq!(attr(&event, names::NET_RX_LATENCY_THRESHOLD_NS), None);
        assert_eq!(attr(&event, names::SOURCE_ADDRESS), None);
        assert_eq!(attr(&event, names::PROCESS_PID), None);
    }

    #[test]
    fn metric_attributes_are_bounded_and_registered() {
        let mut all: Vec<KeyValue> = (0..4).flat_map(histogram_row_attributes).collect();
        for stage in Stage::ALL {
            for cause in SkipCause::ALL {
                all.extend(skip_attributes(stage, cause));
            }
        }
        for kv in &all {
            assert!(
                is_registered(kv.key.as_str(), NameKind::Attribute),
                "{} is not registered in semconv",
                kv.key
            );
        }
        let stages: Vec<String> = (0..4)
            .map(|row| histogram_row_attributes(row)[0].value.to_string())
            .collect();
        assert_eq!(stages, ["netif", "tcp", "user_copy", "unknown"]);
        for name in [
            names::NET_RX_LATENCY_DURATION,
            names::NET_RX_LATENCY_SKIPPED,
        ] {
            assert!(is_registered(name, NameKind::Metric), "{name}");
        }
    }
}
