//! From the raw `tcp_retransmit_event` record to its OTel event, and from a kernel counter key to
//! the counter's attributes.

use crate::attribution::Owner;
use crate::kernel::BootClock;
use crate::telemetry::Event;
use crate::tracers::net::{self, Endpoints};
use huatuo_ebpf::tcp_retransmit::{CountKey, Kind, Reason, TcpRetransmitEvent};
use huatuo_semconv::net as names;
use opentelemetry::logs::{AnyValue, Severity};
use opentelemetry::KeyValue;

fn kind_name(kind: Option<Kind>) -> &'static str {
    match kind {
        Some(Kind::Data) => "data",
        Some(Kind::Synack) => "synack",
        // The object is built with the agent, so only a corrupted record gets here.
        None => "unknown",
    }
}

fn reason_name(reason: Option<Reason>) -> &'static str {
    match reason {
        Some(Reason::Timeout) => "timeout",
        Some(Reason::FastRetransmit) => "fast_retransmit",
        Some(Reason::LossProbe) => "loss_probe",
        Some(Reason::DuplicateSyn) => "duplicate_syn",
        Some(Reason::Other) => "other",
        None => "unknown",
    }
}

/// Attributes of the `huatuo.tcp.retransmits` series a kernel counter key is reported under:
/// bounded (no addresses, ports or pids), so the series count stays small.
pub fn count_attributes(key: &CountKey) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(names::TCP_RETRANSMIT_KIND, kind_name(Some(key.kind))),
        KeyValue::new(names::TCP_RETRANSMIT_REASON, reason_name(Some(key.reason))),
        KeyValue::new(names::NETWORK_TYPE, net::family_network_type(key.family)),
    ];
    if let Some(state) = net::tcp_state_name(key.state) {
        attributes.push(KeyValue::new(names::TCP_STATE, state));
    }
    attributes
}

/// The OTel mapping of one retransmit.
pub fn to_event(raw: &TcpRetransmitEvent, clock: BootClock) -> Event {
    let kind = kind_name(raw.kind());
    let reason = reason_name(raw.reason());
    let mut attributes: Vec<(&'static str, AnyValue)> = vec![
        (names::TCP_RETRANSMIT_KIND, kind.into()),
        (names::TCP_RETRANSMIT_REASON, reason.into()),
        (names::NETWORK_TRANSPORT, "tcp".into()),
        (
            names::NETWORK_TYPE,
            net::family_network_type(raw.family).into(),
        ),
    ];
    let mut summary = format!("TCP {kind} retransmit ({reason})");
    if let (Some(src), Some(dst)) = (raw.src_addr(), raw.dst_addr()) {
        let ends = Endpoints {
            src,
            dst,
            ports: Some((raw.sport, raw.dport)),
        };
        ends.push_attributes(&mut attributes);
        summary = format!("{summary} {ends}");
    }
    if let Some(state) = net::tcp_state_name(raw.state) {
        attributes.push((names::TCP_STATE, state.into()));
        summary = format!("{summary} in {state}");
    }
    if raw.kind() == Some(Kind::Data) {
        attributes.push((names::SKB_LEN, i64::from(raw.len).into()));
    }
    if raw.netns_inum != 0 {
        attributes.push((names::NETNS_INODE, i64::from(raw.netns_inum).into()));
    }
    Event {
        name: names::TCP_RETRANSMIT,
        tracer: super::NAME,
        time: clock.to_system_time(raw.ts_ns),
        severity: Severity::Warn,
        body: summary,
        attributes,
        owner: Owner::cgroup(raw.cgroup_id).with_netns(raw.netns_inum),
        span: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracers::test_support::{assert_registered, attr, reparse};
    use huatuo_ebpf::net::{FAMILY_INET, FAMILY_INET6};
    use huatuo_semconv::{is_registered, Kind as NameKind};
    use std::net::Ipv6Addr;

    const TCP_ESTABLISHED: u8 = 1;
    const TCP_NEW_SYN_RECV: u8 = 12;

    fn data_timeout() -> TcpRetransmitEvent {
        let mut raw = TcpRetransmitEvent::from_bytes(&[0; TcpRetransmitEvent::SIZE]).unwrap();
        raw.ts_ns = 1_000;
        raw.cgroup_id = 42;
        raw.netns_inum = 4026531840;
        raw.len = 1448;
        raw.sport = 40000;
        raw.dport = 443;
        raw.family = FAMILY_INET;
        raw.state = TCP_ESTABLISHED;
        raw.kind = Kind::Data as u8;
        raw.reason = Reason::Timeout as u8;
        raw.saddr[..4].copy_from_slice(&[10, 0, 0, 1]);
        raw.daddr[..4].copy_from_slice(&[10, 0, 0, 2]);
        raw
    }

    #[test]
    fn parses_a_record_byte_for_byte() {
        let raw = data_timeout();
        let (parsed, short) = reparse(&raw);
        assert_eq!(parsed, raw);
        assert!(short.contains("expected 64"), "{short}");
    }

    #[test]
    fn maps_a_data_retransmit_to_registered_names() {
        let event = to_event(&data_timeout(), BootClock::now());
        assert_registered(&event);
        assert_eq!(event.name, names::TCP_RETRANSMIT);
        assert_eq!(event.severity, Severity::Warn);
        let expect = [
            (names::TCP_RETRANSMIT_KIND, AnyValue::from("data")),
            (names::TCP_RETRANSMIT_REASON, AnyValue::from("timeout")),
            (names::NETWORK_TRANSPORT, AnyValue::from("tcp")),
            (names::NETWORK_TYPE, AnyValue::from("ipv4")),
            (names::SOURCE_ADDRESS, AnyValue::from("10.0.0.1")),
            (names::SOURCE_PORT, AnyValue::Int(40000)),
            (names::DESTINATION_ADDRESS, AnyValue::from("10.0.0.2")),
            (names::DESTINATION_PORT, AnyValue::Int(443)),
            (names::TCP_STATE, AnyValue::from("ESTABLISHED")),
            (names::SKB_LEN, AnyValue::Int(1448)),
            (names::NETNS_INODE, AnyValue::Int(4026531840)),
        ];
        for (key, value) in &expect {
            assert_eq!(attr(&event, key), Some(value), "{key}");
        }
        assert_eq!(event.attributes.len(), expect.len());
        assert_eq!(event.owner.cgroup_id, Some(42));
        assert_eq!(
            event.body,
            "TCP data retransmit (timeout) 10.0.0.1:40000 -> 10.0.0.2:443 in ESTABLISHED"
        );
    }

    #[test]
    fn synack_over_ipv6_without_netns_or_cgroup() {
        let mut raw = data_timeout();
        raw.kind = Kind::Synack as u8;
        raw.reason = Reason::DuplicateSyn as u8;
        raw.state = TCP_NEW_SYN_RECV;
        raw.len = 0;
        raw.family = FAMILY_INET6;
        raw.saddr = Ipv6Addr::LOCALHOST.octets();
        raw.daddr = "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets();
        raw.netns_inum = 0;
        raw.cgroup_id = 0;
        let event = to_event(&raw, BootClock::now());
        assert_registered(&event);
        assert_eq!(
            attr(&event, names::TCP_RETRANSMIT_REASON),
            Some(&AnyValue::from("duplicate_syn"))
        );
        assert_eq!(
            attr(&event, names::NETWORK_TYPE),
            Some(&AnyValue::from("ipv6"))
        );
        assert_eq!(attr(&event, names::SKB_LEN), None);
        assert_eq!(attr(&event, names::NETNS_INODE), None);
        assert_eq!(event.owner.cgroup_id, None);
        assert_eq!(
            event.body,
            "TCP synack retransmit (duplicate_syn) [::1]:40000 -> [2001:db8::2]:443 in NEW_SYN_RECV"
        );
    }

    #[test]
    fn unknown_values_are_named_not_guessed() {
        let mut raw = data_timeout();
        raw.family = 0;
        raw.state = 0;
        raw.kind = 9;
        raw.reason = 9;
        let event = to_event(&raw, BootClock::now());
        assert_registered(&event);
        assert_eq!(event.body, "TCP unknown retransmit (unknown)");
        assert_eq!(
            attr(&event, names::NETWORK_TYPE),
            Some(&AnyValue::from("other"))
        );
        assert_eq!(attr(&event, names::SOURCE_ADDRESS), None);
        assert_eq!(attr(&event, names::TCP_STATE), None);
    }

    #[test]
    fn counter_attributes_are_bounded_and_registered() {
        let key = CountKey {
            kind: Kind::Data,
            reason: Reason::FastRetransmit,
            state: TCP_ESTABLISHED,
            family: FAMILY_INET6,
        };
        let attributes = count_attributes(&key);
        for kv in &attributes {
            assert!(
                is_registered(kv.key.as_str(), NameKind::Attribute),
                "{} is not registered in semconv",
                kv.key
            );
        }
        let pairs: Vec<(String, String)> = attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        assert_eq!(
            pairs,
            [
                (names::TCP_RETRANSMIT_KIND, "data"),
                (names::TCP_RETRANSMIT_REASON, "fast_retransmit"),
                (names::NETWORK_TYPE, "ipv6"),
                (names::TCP_STATE, "ESTABLISHED"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        // A state beyond the kernel's counters (slot 0) has no name: the attribute is left out.
        let unknown = count_attributes(&CountKey { state: 0, ..key });
        assert_eq!(unknown.len(), 3);
        assert!(is_registered(names::TCP_RETRANSMITS, NameKind::Metric));
    }
}
