//! `/proc/net/sockstat` (the agent's network namespace) and `net.ipv4.tcp_mem`: sockets by
//! protocol and state, socket buffer memory, and TCP memory against its thresholds.

use super::{malformed, page_size};
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use huatuo_config::Config;
use huatuo_semconv::system as names;
use opentelemetry::KeyValue;

pub struct Sockstat;

impl Collector for Sockstat {
    type State = ();
    const NAME: &'static str = "sockstat";
    const METRICS: &'static [&'static str] = &[
        names::SOCKETS,
        names::SOCKET_MEMORY,
        names::TCP_MEMORY_LIMIT,
        names::TCP_MEMORY_UTILIZATION,
    ];

    fn enabled(config: &Config) -> bool {
        config.collectors.sockstat.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("net/sockstat", "procfs not mounted there?")]
    }

    fn collect(
        &self,
        _: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        let page = page_size();
        let mut tcp_pages = None;
        for line in roots.read_proc("net/sockstat")?.lines() {
            // "TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 188", "sockets: used 53".
            let (protocol, pairs) = line
                .split_once(':')
                .ok_or_else(|| malformed("net/sockstat", line))?;
            let protocol = match protocol {
                "sockets" => "all".to_string(),
                other => other.to_ascii_lowercase(),
            };
            let fields: Vec<&str> = pairs.split_ascii_whitespace().collect();
            if !fields.len().is_multiple_of(2) {
                return Err(malformed("net/sockstat", line));
            }
            for pair in fields.chunks(2) {
                let value: u64 = pair[1]
                    .parse()
                    .map_err(|_| malformed("net/sockstat", line))?;
                let protocol_attr = KeyValue::new(names::SOCKET_PROTOCOL, protocol.clone());
                match pair[0] {
                    // Pages, except FRAG's `memory`, which is bytes.
                    "mem" => {
                        if protocol == "tcp" {
                            tcp_pages = Some(value);
                        }
                        out.add(names::SOCKET_MEMORY, value * page, vec![protocol_attr]);
                    }
                    "memory" => out.add(names::SOCKET_MEMORY, value, vec![protocol_attr]),
                    state => out.add(
                        names::SOCKETS,
                        value,
                        vec![
                            protocol_attr,
                            KeyValue::new(names::SOCKET_STATE, state.to_string()),
                        ],
                    ),
                }
            }
        }
        // A container runtime may hide /proc/sys: then there is no limit to compare with.
        if let Some(text) = roots.read_proc_optional("sys/net/ipv4/tcp_mem")? {
            let limits =
                super::integers(text.split_ascii_whitespace(), "sys/net/ipv4/tcp_mem", &text)?;
            let [low, pressure, high] = limits[..] else {
                return Err(malformed("sys/net/ipv4/tcp_mem", &text));
            };
            for (threshold, pages) in [("low", low), ("pressure", pressure), ("high", high)] {
                out.add(
                    names::TCP_MEMORY_LIMIT,
                    pages * page,
                    vec![KeyValue::new(names::TCP_MEMORY_THRESHOLD, threshold)],
                );
            }
            if let (Some(used), true) = (tcp_pages, high > 0) {
                out.add(
                    names::TCP_MEMORY_UTILIZATION,
                    used as f64 / high as f64,
                    vec![],
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::collector_test_support::collect_fixture;

    const SOCKETS_USED: f64 = 53.0;
    const TCP_INUSE: f64 = 1.0;
    const TCP_MEM_PAGES: f64 = 188.0;
    const TCP_MEM_HIGH_PAGES: f64 = 575802.0;

    #[test]
    fn fixture_values() {
        let points = collect_fixture(&Sockstat, "host-6.18");
        let page = page_size() as f64;
        let sockets = |p, s| {
            points.value(
                names::SOCKETS,
                &[(names::SOCKET_PROTOCOL, p), (names::SOCKET_STATE, s)],
            )
        };
        assert_eq!(sockets("all", "used"), Some(SOCKETS_USED));
        assert_eq!(sockets("tcp", "inuse"), Some(TCP_INUSE));
        let tcp_memory = points.value(names::SOCKET_MEMORY, &[(names::SOCKET_PROTOCOL, "tcp")]);
        assert_eq!(tcp_memory, Some(TCP_MEM_PAGES * page));
        let high = points.value(
            names::TCP_MEMORY_LIMIT,
            &[(names::TCP_MEMORY_THRESHOLD, "high")],
        );
        assert_eq!(high, Some(TCP_MEM_HIGH_PAGES * page));
        assert_eq!(
            points.value(names::TCP_MEMORY_UTILIZATION, &[]),
            Some(TCP_MEM_PAGES / TCP_MEM_HIGH_PAGES)
        );
    }
}
