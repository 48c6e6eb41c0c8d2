//! `/proc/net/dev` (the agent's network namespace: run it in the host's): bytes, packets, drops
//! and errors per interface and direction. Interfaces are filtered by `collectors.netdev`.

use super::{integers, malformed};
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use huatuo_config::Config;
use huatuo_semconv::{net as net_names, system as names};
use opentelemetry::KeyValue;

pub struct Netdev;

impl Collector for Netdev {
    type State = ();
    const NAME: &'static str = "netdev";
    const METRICS: &'static [&'static str] = &[
        names::SYSTEM_NETWORK_IO,
        names::SYSTEM_NETWORK_PACKET_COUNT,
        names::SYSTEM_NETWORK_PACKET_DROPPED,
        names::SYSTEM_NETWORK_ERRORS,
        names::NETWORK_LINK_ERRORS,
        names::NETWORK_MULTICAST,
    ];

    fn enabled(config: &Config) -> bool {
        config.collectors.netdev.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("net/dev", "procfs not mounted there?")]
    }

    fn collect(
        &self,
        config: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        for (name, v) in parse_net_dev(&roots.read_proc("net/dev")?, "net/dev")? {
            if !config.collectors.netdev.allows(name) {
                continue;
            }
            let attrs = |direction: &'static str| {
                vec![
                    KeyValue::new(net_names::NETWORK_INTERFACE_NAME, name.to_string()),
                    KeyValue::new(names::NETWORK_IO_DIRECTION, direction),
                ]
            };
            let with_type = |direction, error_type: &'static str| {
                let mut attributes = attrs(direction);
                attributes.push(KeyValue::new(names::ERROR_TYPE, error_type));
                attributes
            };
            for (direction, c) in [("receive", &v[..8]), ("transmit", &v[8..])] {
                out.add(names::SYSTEM_NETWORK_IO, c[0], attrs(direction));
                out.add(names::SYSTEM_NETWORK_PACKET_COUNT, c[1], attrs(direction));
                out.add(names::SYSTEM_NETWORK_ERRORS, c[2], attrs(direction));
                out.add(names::SYSTEM_NETWORK_PACKET_DROPPED, c[3], attrs(direction));
                out.add(
                    names::NETWORK_LINK_ERRORS,
                    c[4],
                    with_type(direction, "fifo"),
                );
            }
            // Receive: frame, compressed, multicast; transmit: colls, carrier, compressed.
            out.add(
                names::NETWORK_LINK_ERRORS,
                v[5],
                with_type("receive", "frame"),
            );
            out.add(names::NETWORK_MULTICAST, v[7], attrs("receive"));
            out.add(
                names::NETWORK_LINK_ERRORS,
                v[13],
                with_type("transmit", "collisions"),
            );
            out.add(
                names::NETWORK_LINK_ERRORS,
                v[14],
                with_type("transmit", "carrier"),
            );
        }
        Ok(())
    }
}

/// Interfaces and their 16 counters (8 receive, 8 transmit) from a `net/dev` file (`file` names it
/// in errors).
pub(super) fn parse_net_dev<'a>(
    text: &'a str,
    file: &str,
) -> anyhow::Result<Vec<(&'a str, Vec<u64>)>> {
    // Two header lines, then `name: 8 receive counters 8 transmit counters`.
    text.lines()
        .skip(2)
        .map(|line| {
            let (name, counters) = line.split_once(':').ok_or_else(|| malformed(file, line))?;
            let v = integers(counters.split_ascii_whitespace(), file, line)?;
            if v.len() != 16 {
                return Err(malformed(file, line));
            }
            Ok((name.trim(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::collector_test_support::collect_fixture;

    const ETH0_RX_BYTES: f64 = 456603235.0;
    const ETH0_TX_PACKETS: f64 = 10663.0;

    #[test]
    fn fixture_values() {
        let points = collect_fixture(&Netdev, "host-6.18");
        let eth0 = |metric, direction| {
            points.value(
                metric,
                &[
                    (net_names::NETWORK_INTERFACE_NAME, "eth0"),
                    (names::NETWORK_IO_DIRECTION, direction),
                ],
            )
        };
        assert_eq!(
            eth0(names::SYSTEM_NETWORK_IO, "receive"),
            Some(ETH0_RX_BYTES)
        );
        assert_eq!(
            eth0(names::SYSTEM_NETWORK_PACKET_COUNT, "transmit"),
            Some(ETH0_TX_PACKETS)
        );
        assert_eq!(
            eth0(names::SYSTEM_NETWORK_PACKET_DROPPED, "receive"),
            Some(0.0)
        );
        let interfaces = points.of(names::SYSTEM_NETWORK_IO).len() / 2;
        assert_eq!(interfaces, 4, "lo, ifb0, ifb1, eth0");
    }

    #[test]
    fn old_format_without_space_after_the_name_and_excluded_veths() {
        let points = collect_fixture(&Netdev, "handmade-old-formats");
        let errors = points.value(
            names::SYSTEM_NETWORK_ERRORS,
            &[
                (net_names::NETWORK_INTERFACE_NAME, "eth0"),
                (names::NETWORK_IO_DIRECTION, "receive"),
            ],
        );
        assert_eq!(errors, Some(7.0));
        assert!(points
            .of(names::SYSTEM_NETWORK_IO)
            .iter()
            .all(|(_, a)| !a[0].value.as_str().starts_with("veth")));
    }
}
