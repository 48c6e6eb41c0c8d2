//! `/proc/buddyinfo`: free blocks by NUMA node, zone and order.

use super::{integers, malformed};
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use huatuo_config::Config;
use huatuo_semconv::system as names;
use opentelemetry::KeyValue;

pub struct Buddyinfo;

impl Collector for Buddyinfo {
    type State = ();
    const NAME: &'static str = "buddyinfo";
    const METRICS: &'static [&'static str] = &[names::BUDDYINFO_BLOCKS];

    fn enabled(config: &Config) -> bool {
        config.collectors.buddyinfo.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("buddyinfo", "procfs not mounted there?")]
    }

    fn collect(
        &self,
        _: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        for line in roots.read_proc("buddyinfo")?.lines() {
            // "Node 0, zone   Normal  49986  28685 ..."
            let mut fields = line.split_ascii_whitespace();
            let (Some("Node"), Some(node), Some("zone"), Some(zone)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(malformed("buddyinfo", line));
            };
            let node: i64 = node
                .trim_end_matches(',')
                .parse()
                .map_err(|_| malformed("buddyinfo", line))?;
            for (order, blocks) in integers(fields, "buddyinfo", line)?.into_iter().enumerate() {
                out.add(
                    names::BUDDYINFO_BLOCKS,
                    blocks,
                    vec![
                        KeyValue::new(names::NUMA_NODE, node),
                        KeyValue::new(names::MEMORY_ZONE, zone.to_string()),
                        KeyValue::new(names::MEMORY_ORDER, order as i64),
                    ],
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

    #[test]
    fn fixture_values() {
        let points = collect_fixture(&Buddyinfo, "host-6.18");
        let blocks = |zone, order| {
            points.value(
                names::BUDDYINFO_BLOCKS,
                &[
                    (names::NUMA_NODE, "0"),
                    (names::MEMORY_ZONE, zone),
                    (names::MEMORY_ORDER, order),
                ],
            )
        };
        assert_eq!(points.of(names::BUDDYINFO_BLOCKS).len(), 3 * 11);
        assert_eq!(blocks("DMA", "10"), Some(3.0));
        assert_eq!(blocks("DMA32", "10"), Some(752.0));
        let two_nodes = collect_fixture(&Buddyinfo, "handmade-old-formats");
        assert_eq!(
            two_nodes.value(
                names::BUDDYINFO_BLOCKS,
                &[
                    (names::NUMA_NODE, "1"),
                    (names::MEMORY_ZONE, "Normal"),
                    (names::MEMORY_ORDER, "0")
                ],
            ),
            Some(4321.0)
        );
    }
}
