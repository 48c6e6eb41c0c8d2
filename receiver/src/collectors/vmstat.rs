//! `/proc/vmstat`: every key passing `collectors.vmstat`'s filters, as a counter (events) or a
//! gauge (levels), plus page faults and swap operations under their OTel names.

use super::malformed;
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use huatuo_config::Config;
use huatuo_semconv::system as names;
use opentelemetry::KeyValue;

/// `nr_*` keys that count events rather than hold a level.
const NR_COUNTERS: &[&str] = &[
    "nr_dirtied",
    "nr_written",
    "nr_throttled_written",
    "nr_vmscan_write",
    "nr_vmscan_immediate_reclaim",
    "nr_foll_pin_acquired",
    "nr_foll_pin_released",
];

pub struct Vmstat;

impl Collector for Vmstat {
    type State = ();
    const NAME: &'static str = "vmstat";
    const METRICS: &'static [&'static str] = &[
        names::VMSTAT_EVENTS,
        names::VMSTAT_LEVELS,
        names::SYSTEM_PAGING_FAULTS,
        names::SYSTEM_PAGING_OPERATIONS,
    ];

    fn enabled(config: &Config) -> bool {
        config.collectors.vmstat.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("vmstat", "procfs not mounted there?")]
    }

    fn collect(
        &self,
        config: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        let filter = &config.collectors.vmstat;
        let (mut faults, mut major_faults) = (None, None);
        for line in roots.read_proc("vmstat")?.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            // Levels summed over per-CPU deltas can dip below zero for a moment.
            let value: i64 = value
                .trim()
                .parse()
                .map_err(|_| malformed("vmstat", line))?;
            let value = value.max(0) as u64;
            match key {
                "pgfault" => faults = Some(value),
                "pgmajfault" => major_faults = Some(value),
                "pswpin" | "pswpout" => out.add(
                    names::SYSTEM_PAGING_OPERATIONS,
                    value,
                    vec![KeyValue::new(
                        names::SYSTEM_PAGING_DIRECTION,
                        if key == "pswpin" { "in" } else { "out" },
                    )],
                ),
                _ => {}
            }
            if !filter.allows(key) {
                continue;
            }
            let metric = if is_level(key) {
                names::VMSTAT_LEVELS
            } else {
                names::VMSTAT_EVENTS
            };
            out.add(
                metric,
                value,
                vec![KeyValue::new(names::VMSTAT_KEY, key.to_string())],
            );
        }
        if let (Some(all), Some(major)) = (faults, major_faults) {
            for (kind, value) in [("major", major), ("minor", all.saturating_sub(major))] {
                out.add(
                    names::SYSTEM_PAGING_FAULTS,
                    value,
                    vec![KeyValue::new(names::SYSTEM_PAGING_FAULT_TYPE, kind)],
                );
            }
        }
        Ok(())
    }
}

fn is_level(key: &str) -> bool {
    (key.starts_with("nr_") && !NR_COUNTERS.contains(&key)) || key == "workingset_nodes"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::collector_test_support::{collect, fixture};
    use huatuo_config::{Pattern, VmstatCollectorConfig};

    const NR_FREE_PAGES: f64 = 1313701.0;
    const PGFAULT: f64 = 287185473.0;

    fn with_filter(include: &[&str], exclude: &[&str]) -> Config {
        let patterns = |texts: &[&str]| {
            texts
                .iter()
                .map(|t| Pattern::try_from(t.to_string()).unwrap())
                .collect()
        };
        let mut config = Config::default();
        config.collectors.vmstat = VmstatCollectorConfig {
            enabled: true,
            include: patterns(include),
            exclude: patterns(exclude),
        };
        config
    }

    fn run(config: &Config) -> Points {
        collect(&Vmstat, config, &fixture("host-6.18"), &mut ()).unwrap()
    }

    #[test]
    fn events_are_counters_levels_are_gauges() {
        let points = run(&Config::default());
        let key = |metric, k| points.value(metric, &[(names::VMSTAT_KEY, k)]);
        assert_eq!(
            key(names::VMSTAT_LEVELS, "nr_free_pages"),
            Some(NR_FREE_PAGES)
        );
        assert_eq!(key(names::VMSTAT_EVENTS, "pgfault"), Some(PGFAULT));
        assert!(key(names::VMSTAT_EVENTS, "nr_dirtied").is_some());
        assert!(key(names::VMSTAT_LEVELS, "nr_dirtied").is_none());
        let minor = points.value(
            names::SYSTEM_PAGING_FAULTS,
            &[(names::SYSTEM_PAGING_FAULT_TYPE, "minor")],
        );
        let major = points.value(
            names::SYSTEM_PAGING_FAULTS,
            &[(names::SYSTEM_PAGING_FAULT_TYPE, "major")],
        );
        assert_eq!(minor.unwrap() + major.unwrap(), PGFAULT);
    }

    #[test]
    fn filters_select_keys_but_not_the_paging_metrics() {
        let points = run(&with_filter(&["^pg", "^nr_free"], &["^pgsteal"]));
        let keys: Vec<String> = [names::VMSTAT_EVENTS, names::VMSTAT_LEVELS]
            .iter()
            .flat_map(|m| points.of(m))
            .map(|(_, attributes)| attributes[0].value.as_str().to_string())
            .collect();
        assert!(keys.contains(&"pgfault".to_string()));
        assert!(keys.contains(&"nr_free_pages".to_string()));
        assert!(
            keys.iter()
                .all(|k| (k.starts_with("pg") || k.starts_with("nr_free"))
                    && !k.starts_with("pgsteal")),
            "{keys:?}"
        );
        assert_eq!(points.of(names::SYSTEM_PAGING_FAULTS).len(), 2);
    }
}
