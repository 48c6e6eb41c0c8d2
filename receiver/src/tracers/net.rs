//! What the network tracers say the same way: OTel values for protocols, address families and TCP
//! states, and a packet's or connection's end points as attributes and text.

use huatuo_ebpf::net::{FAMILY_INET, FAMILY_INET6};
use huatuo_semconv::net as names;
use opentelemetry::logs::AnyValue;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Ethertype of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;

/// `network.transport` of an IPPROTO_* number.
pub fn transport_name(l4_proto: u8) -> &'static str {
    match l4_proto {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        58 => "icmpv6",
        132 => "sctp",
        136 => "udplite",
        _ => "other",
    }
}

/// `network.type` of an ethertype.
pub fn network_type_name(l3_proto: u16) -> &'static str {
    match l3_proto {
        ETH_P_IP => "ipv4",
        ETH_P_IPV6 => "ipv6",
        _ => "other",
    }
}

/// `network.type` of a socket address family.
pub fn family_network_type(family: u8) -> &'static str {
    network_type_name(match family {
        FAMILY_INET => ETH_P_IP,
        FAMILY_INET6 => ETH_P_IPV6,
        _ => 0,
    })
}

/// Name of a kernel `TCP_*` state (`ESTABLISHED`, ...); None for 0 and unknown values.
pub fn tcp_state_name(state: u8) -> Option<&'static str> {
    const STATES: [&str; 13] = [
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
        "NEW_SYN_RECV",
        "BOUND_INACTIVE",
    ];
    STATES.get(usize::from(state).checked_sub(1)?).copied()
}

/// Source and destination of a packet or connection; ports only where the protocol has them.
pub struct Endpoints {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// (source, destination).
    pub ports: Option<(u16, u16)>,
}

impl Endpoints {
    /// `source.address`, `destination.address`, and the ports when known.
    pub fn push_attributes(&self, attributes: &mut Vec<(&'static str, AnyValue)>) {
        attributes.push((names::SOURCE_ADDRESS, self.src.to_string().into()));
        attributes.push((names::DESTINATION_ADDRESS, self.dst.to_string().into()));
        if let Some((sport, dport)) = self.ports {
            attributes.push((names::SOURCE_PORT, i64::from(sport).into()));
            attributes.push((names::DESTINATION_PORT, i64::from(dport).into()));
        }
    }
}

/// `10.0.0.1:40000 -> 10.0.0.2:80`, `[::1]:40000 -> [::1]:80`, or without ports `10.0.0.1 -> 10.0.0.2`.
impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ports {
            Some((sport, dport)) => write!(
                f,
                "{} -> {}",
                SocketAddr::new(self.src, sport),
                SocketAddr::new(self.dst, dport)
            ),
            None => write!(f, "{} -> {}", self.src, self.dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn tcp_state_names_follow_the_kernel_enum() {
        assert_eq!(tcp_state_name(1), Some("ESTABLISHED"));
        assert_eq!(tcp_state_name(10), Some("LISTEN"));
        assert_eq!(tcp_state_name(12), Some("NEW_SYN_RECV"));
        assert_eq!(tcp_state_name(0), None);
        assert_eq!(tcp_state_name(14), None);
    }

    #[test]
    fn protocol_and_family_names() {
        assert_eq!(transport_name(6), "tcp");
        assert_eq!(transport_name(250), "other");
        assert_eq!(network_type_name(0x86dd), "ipv6");
        assert_eq!(family_network_type(FAMILY_INET), "ipv4");
        assert_eq!(family_network_type(FAMILY_INET6), "ipv6");
        assert_eq!(family_network_type(1), "other");
    }

    #[test]
    fn endpoints_as_text_and_attributes() {
        let v6 = Endpoints {
            src: Ipv6Addr::LOCALHOST.into(),
            dst: "2001:db8::1".parse().unwrap(),
            ports: Some((40000, 443)),
        };
        assert_eq!(v6.to_string(), "[::1]:40000 -> [2001:db8::1]:443");
        let v4 = Endpoints {
            src: Ipv4Addr::LOCALHOST.into(),
            dst: Ipv4Addr::new(10, 0, 0, 2).into(),
            ports: None,
        };
        assert_eq!(v4.to_string(), "127.0.0.1 -> 10.0.0.2");
        let mut attributes = Vec::new();
        v4.push_attributes(&mut attributes);
        let keys: Vec<_> = attributes.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [names::SOURCE_ADDRESS, names::DESTINATION_ADDRESS]);
        v6.push_attributes(&mut attributes);
        assert_eq!(attributes.len(), 6);
        assert!(attributes.contains(&(names::DESTINATION_PORT, AnyValue::Int(443))));
    }
}
