//! From the raw `dropwatch_event` record to a typed drop, and from a drop to its OTel event.

use crate::attribution::Owner;
use crate::ksyms::KernelSymbols;
use crate::telemetry::Event;
use crate::tracers::net::{self, Endpoints};
use huatuo_ebpf::dropwatch::{DropwatchEvent, FLAG_NO_L3};
use huatuo_semconv::net as names;
use opentelemetry::logs::{AnyValue, Severity};

/// Kernel drop reason names, indexed by `enum skb_drop_reason` value.
#[derive(Default)]
pub struct ReasonNames {
    names: Vec<Option<String>>,
}

impl ReasonNames {
    /// `variants` are the enum's (name, value) pairs from the kernel's BTF.
    pub fn from_variants(variants: impl IntoIterator<Item = (String, i64)>) -> Self {
        let mut names: Vec<Option<String>> = Vec::new();
        for (name, value) in variants {
            let Ok(index) = usize::try_from(value) else {
                continue;
            };
            if index > 4096 || name.ends_with("_MAX") {
                continue;
            }
            if names.len() <= index {
                names.resize(index + 1, None);
            }
            let short = name.strip_prefix("SKB_DROP_REASON_").unwrap_or(&name);
            names[index] = Some(short.to_string());
        }
        Self { names }
    }

    pub fn name(&self, reason: u32, reason_known: bool) -> String {
        if !reason_known {
            return "UNKNOWN".into();
        }
        match self.names.get(reason as usize) {
            Some(Some(name)) => name.clone(),
            // A reason newer than the BTF we read: keep the number rather than guess.
            _ => format!("REASON_{reason}"),
        }
    }
}

/// Everything the OTel event needs that the record alone does not have.
pub struct Context<'a> {
    pub reasons: &'a ReasonNames,
    pub symbols: Option<&'a KernelSymbols>,
    pub clock: crate::kernel::BootClock,
}

/// The OTel mapping of one drop.
pub fn to_event(raw: &DropwatchEvent, ctx: &Context) -> Event {
    let reason = ctx.reasons.name(raw.reason, raw.reason_known());
    let location = match ctx.symbols {
        Some(symbols) => symbols.resolve(raw.location),
        None => format!("0x{:x}", raw.location),
    };
    let transport = net::transport_name(raw.l4_proto);
    let comm = raw.comm().into_owned();
    let mut attributes: Vec<(&'static str, AnyValue)> = vec![
        (names::SKB_DROP_REASON, reason.clone().into()),
        (names::SKB_DROP_LOCATION, location.clone().into()),
        (names::SKB_LEN, i64::from(raw.len).into()),
        (
            names::NETWORK_TYPE,
            net::network_type_name(raw.l3_proto).into(),
        ),
        (names::NETWORK_TRANSPORT, transport.into()),
        (names::PROCESS_PID, i64::from(raw.pid).into()),
        (names::THREAD_ID, i64::from(raw.tid).into()),
        (names::THREAD_NAME, comm.clone().into()),
    ];
    if raw.netns_inum != 0 {
        attributes.push((names::NETNS_INODE, i64::from(raw.netns_inum).into()));
    }
    if raw.ifindex != 0 {
        attributes.push((
            names::NETWORK_INTERFACE_NAME,
            raw.ifname().into_owned().into(),
        ));
    }
    let mut summary = format!("{transport} packet dropped: {reason} at {location}");
    if raw.flags & FLAG_NO_L3 == 0 {
        if let (Some(src), Some(dst)) = (raw.src_addr(), raw.dst_addr()) {
            let has_ports = matches!(raw.l4_proto, 6 | 17 | 132 | 136);
            let ends = Endpoints {
                src,
                dst,
                ports: has_ports.then_some((raw.sport, raw.dport)),
            };
            ends.push_attributes(&mut attributes);
            if has_ports {
                summary = format!("{transport} packet {ends} dropped: {reason} at {location}");
            }
        }
    }
    if let Some(state) = net::tcp_state_name(raw.tcp_state).filter(|_| raw.l4_proto == 6) {
        attributes.push((names::TCP_STATE, state.into()));
    }
    Event {
        name: names::SKB_DROP,
        tracer: super::NAME,
        time: ctx.clock.to_system_time(raw.ts_ns),
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
    use crate::tracers::test_support::{assert_registered, expect_attr as attr, reparse};

    fn udp_drop() -> DropwatchEvent {
        let mut raw: DropwatchEvent = unsafe { std::mem::zeroed() };
        raw.ts_ns = 1_000;
        raw.location = 0xffffffff81a00004;
        raw.cgroup_id = 42;
        raw.netns_inum = 4026531840;
        raw.pid = 1234;
        raw.tid = 1235;
        raw.reason = 2;
        raw.ifindex = 1;
        raw.len = 36;
        raw.l3_proto = net::ETH_P_IP;
        raw.sport = 40000;
        raw.dport = 9;
        raw.l4_proto = 17;
        raw.family = huatuo_ebpf::net::FAMILY_INET;
        raw.saddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        raw.daddr[..4].copy_from_slice(&[127, 0, 0, 2]);
        raw.ifname[..2].copy_from_slice(b"lo");
        raw.comm[..4].copy_from_slice(b"nc\0x");
        raw
    }

    fn reasons() -> ReasonNames {
        ReasonNames::from_variants([
            ("SKB_NOT_DROPPED_YET".to_string(), 0),
            ("SKB_DROP_REASON_NOT_SPECIFIED".to_string(), 1),
            ("SKB_DROP_REASON_NO_SOCKET".to_string(), 2),
            ("SKB_DROP_REASON_MAX".to_string(), 3),
        ])
    }

    #[test]
    fn parses_a_record_byte_for_byte() {
        let (parsed, short) = reparse(&udp_drop());
        assert_eq!(parsed.dport, 9);
        assert_eq!(parsed.pid, 1234);
        assert!(short.contains("expected"), "{short}");
    }

    #[test]
    fn maps_a_udp_drop_to_registered_names() {
        let symbols =
            KernelSymbols::parse("ffffffff81a00000 T __udp4_lib_rcv\n".as_bytes()).unwrap();
        let ctx = Context {
            reasons: &reasons(),
            symbols: Some(&symbols),
            clock: crate::kernel::BootClock::now(),
        };
        let event = to_event(&udp_drop(), &ctx);
        assert_eq!(event.name, names::SKB_DROP);
        assert_registered(&event);
        assert_eq!(
            attr(&event, names::SKB_DROP_REASON),
            &AnyValue::from("NO_SOCKET")
        );
        assert_eq!(
            attr(&event, names::SKB_DROP_LOCATION),
            &AnyValue::from("__udp4_lib_rcv+0x4")
        );
        assert_eq!(
            attr(&event, names::DESTINATION_ADDRESS),
            &AnyValue::from("127.0.0.2")
        );
        assert_eq!(attr(&event, names::DESTINATION_PORT), &AnyValue::Int(9));
        assert_eq!(attr(&event, names::THREAD_NAME), &AnyValue::from("nc"));
        assert_eq!(
            attr(&event, names::NETWORK_INTERFACE_NAME),
            &AnyValue::from("lo")
        );
        assert_eq!(event.owner.cgroup_id, Some(42));
        assert!(
            event.body.contains("127.0.0.1:40000 -> 127.0.0.2:9"),
            "{}",
            event.body
        );
    }

    #[test]
    fn unknown_and_future_reasons_are_named_not_guessed() {
        let names = reasons();
        assert_eq!(names.name(2, false), "UNKNOWN");
        assert_eq!(names.name(77, true), "REASON_77");
        assert_eq!(names.name(3, true), "REASON_3");
    }

    #[test]
    fn ipv6_and_missing_headers() {
        let mut raw = udp_drop();
        raw.family = huatuo_ebpf::net::FAMILY_INET6;
        raw.l3_proto = net::ETH_P_IPV6;
        raw.daddr = std::net::Ipv6Addr::LOCALHOST.octets();
        let ctx = Context {
            reasons: &reasons(),
            symbols: None,
            clock: crate::kernel::BootClock::now(),
        };
        let event = to_event(&raw, &ctx);
        assert_eq!(
            attr(&event, names::DESTINATION_ADDRESS),
            &AnyValue::from("::1")
        );
        assert_eq!(
            attr(&event, names::SKB_DROP_LOCATION),
            &AnyValue::from("0xffffffff81a00004")
        );

        raw.flags = FLAG_NO_L3;
        let event = to_event(&raw, &ctx);
        assert!(!event
            .attributes
            .iter()
            .any(|(k, _)| *k == names::DESTINATION_ADDRESS));
    }
}
