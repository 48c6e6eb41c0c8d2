//! `/proc/net/arp` (entries in the agent's network namespace) and `/proc/net/stat/arp_cache`
//! (entries of the kernel's ARP table, all namespaces).

use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use huatuo_config::Config;
use huatuo_semconv::system as names;

pub struct Arp;

impl Collector for Arp {
    type State = ();
    const NAME: &'static str = "arp";
    const METRICS: &'static [&'static str] = &[names::ARP_ENTRIES, names::ARP_TABLE_ENTRIES];

    fn enabled(config: &Config) -> bool {
        config.collectors.arp.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[(
            "net/arp",
            "kernel without IPv4, or procfs not mounted there?",
        )]
    }

    fn collect(
        &self,
        _: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        let entries = roots
            .read_proc("net/arp")?
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count();
        out.add(names::ARP_ENTRIES, entries as u64, vec![]);
        // One header line, then one line per CPU whose first column, the table's entry count
        // (hexadecimal), is the same on every line.
        if let Some(text) = roots.read_proc_optional("net/stat/arp_cache")? {
            let first = text
                .lines()
                .nth(1)
                .and_then(|l| l.split_ascii_whitespace().next());
            let count = first
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                .ok_or_else(|| super::malformed("net/stat/arp_cache", &text))?;
            out.add(names::ARP_TABLE_ENTRIES, count, vec![]);
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
        let points = collect_fixture(&Arp, "host-6.18");
        assert_eq!(points.value(names::ARP_ENTRIES, &[]), Some(1.0));
        assert_eq!(points.value(names::ARP_TABLE_ENTRIES, &[]), Some(2.0));
        let old = collect_fixture(&Arp, "handmade-old-formats");
        assert_eq!(old.value(names::ARP_ENTRIES, &[]), Some(3.0));
        assert_eq!(old.value(names::ARP_TABLE_ENTRIES, &[]), Some(0x1a as f64));
    }
}
