//! `/proc/net/snmp` and `/proc/net/netstat` (the agent's network namespace): pairs of lines,
//! `Proto: Field1 Field2 ...` then `Proto: value1 value2 ...`, reported by `Proto_Field` keys
//! passing `collectors.netstat`'s filters (by default Ip, Tcp, TcpExt, Udp).

use super::malformed;
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use huatuo_config::Config;
use huatuo_semconv::system as names;
use opentelemetry::KeyValue;

/// Keys that are levels or settings; every other key is a counter.
const LEVELS: &[&str] = &[
    "Ip_Forwarding",
    "Ip_DefaultTTL",
    "Tcp_RtoAlgorithm",
    "Tcp_RtoMin",
    "Tcp_RtoMax",
    "Tcp_MaxConn",
    "Tcp_CurrEstab",
];

pub struct Netstat;

impl Collector for Netstat {
    type State = ();
    const NAME: &'static str = "netstat";
    const METRICS: &'static [&'static str] = &[names::NETSTAT_EVENTS, names::NETSTAT_CURRENT];

    fn enabled(config: &Config) -> bool {
        config.collectors.netstat.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("net/snmp", "procfs not mounted there?")]
    }

    fn collect(
        &self,
        config: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        for file in ["net/snmp", "net/netstat"] {
            if let Some(text) = roots.read_proc_optional(file)? {
                parse(file, &text, &config.collectors, out)?;
            }
        }
        Ok(())
    }
}

fn parse(
    file: &str,
    text: &str,
    config: &huatuo_config::CollectorsConfig,
    out: &mut Points,
) -> anyhow::Result<()> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    while let Some(header) = lines.next() {
        let values = lines.next().ok_or_else(|| malformed(file, header))?;
        let (protocol, fields) = header
            .split_once(':')
            .ok_or_else(|| malformed(file, header))?;
        let (value_protocol, values) = values
            .split_once(':')
            .ok_or_else(|| malformed(file, values))?;
        if protocol != value_protocol {
            return Err(malformed(file, values));
        }
        let fields: Vec<&str> = fields.split_ascii_whitespace().collect();
        let values: Vec<&str> = values.split_ascii_whitespace().collect();
        if fields.len() != values.len() {
            return Err(malformed(file, header));
        }
        for (field, value) in fields.iter().zip(values) {
            let key = format!("{protocol}_{field}");
            if !config.netstat.allows(&key) {
                continue;
            }
            let bad = || malformed(file, &format!("{key} {value}"));
            if LEVELS.contains(&key.as_str()) {
                // Tcp_MaxConn is -1 (no limit).
                let value: i64 = value.parse().map_err(|_| bad())?;
                out.add(names::NETSTAT_CURRENT, value as f64, key_attr(key));
            } else {
                let value: u64 = value.parse().map_err(|_| bad())?;
                out.add(names::NETSTAT_EVENTS, value, key_attr(key));
            }
        }
    }
    Ok(())
}

fn key_attr(key: String) -> Vec<KeyValue> {
    vec![KeyValue::new(names::NETSTAT_KEY, key)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::collector_test_support::collect_fixture;

    #[test]
    fn fixture_values() {
        let points = collect_fixture(&Netstat, "host-6.18");
        let key = |metric, k| points.value(metric, &[(names::NETSTAT_KEY, k)]);
        assert_eq!(key(names::NETSTAT_EVENTS, "Tcp_RetransSegs"), Some(13.0));
        assert_eq!(key(names::NETSTAT_CURRENT, "Tcp_MaxConn"), Some(-1.0));
        assert_eq!(key(names::NETSTAT_EVENTS, "Udp_NoPorts"), Some(74506934.0));
        assert!(key(names::NETSTAT_EVENTS, "TcpExt_ListenDrops").is_some());
        assert!(
            key(names::NETSTAT_EVENTS, "Icmp_InMsgs").is_none(),
            "not in the default filter"
        );
        assert!(key(names::NETSTAT_EVENTS, "UdpLite_InDatagrams").is_none());
    }

    #[test]
    fn mismatched_lines_are_errors() {
        let config = huatuo_config::CollectorsConfig::default();
        let mut out = Points::default();
        assert!(parse("net/snmp", "Tcp: A B\nTcp: 1\n", &config, &mut out).is_err());
        assert!(parse("net/snmp", "Tcp: A B\nUdp: 1 2\n", &config, &mut out).is_err());
        assert!(parse("net/snmp", "Tcp: A B\n", &config, &mut out).is_err());
        assert!(parse("net/snmp", "Tcp: A B\nTcp: 1 2\n", &config, &mut out).is_ok());
    }
}
