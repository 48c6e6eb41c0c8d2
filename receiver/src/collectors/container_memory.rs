//! Per-container memory: usage and limit, `memory.stat` filtered by key
//! (`collectors.container_memory`), and memory events: v2 `memory.events`; v1's equivalents,
//! `memory.failcnt` (times the limit was hit) and `memory.oom_control` (`oom_kill` since Linux
//! 4.13, `under_oom`).

use super::cgroups::{flat_keyed, with, ContainerAttributes, ContainerCgroup, Hierarchy, Version};
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use crate::telemetry::Telemetry;
use huatuo_config::Config;
use huatuo_semconv::container as names;
use opentelemetry::KeyValue;
use std::sync::Arc;

/// v1 reports "no limit" as the largest page counter in bytes (about 2^63 rounded down to a
/// page); anything this large is no limit.
const UNLIMITED: u64 = 1 << 62;

#[derive(Default)]
pub struct ContainerMemory {
    attributes: ContainerAttributes,
}

impl Collector for ContainerMemory {
    type State = ();
    const NAME: &'static str = "container_memory";
    const METRICS: &'static [&'static str] = &[
        names::CONTAINER_MEMORY_USAGE,
        names::CONTAINER_MEMORY_LIMIT,
        names::CONTAINER_MEMORY_STAT,
        names::CONTAINER_MEMORY_EVENTS,
        names::CONTAINER_MEMORY_UNDER_OOM,
    ];

    fn enabled(config: &Config) -> bool {
        config.collectors.container_memory.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    fn bind(&self, telemetry: &Arc<Telemetry>) {
        self.attributes.bind(telemetry);
    }

    fn collect(
        &self,
        config: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        let Some(memory) = Hierarchy::of(roots, "memory", "memory") else {
            return Ok(());
        };
        let filter = &config.collectors.container_memory;
        for container in memory.containers() {
            let attributes = self.attributes.of(&container);
            let event = |out: &mut Points, kind: &str, count: u64| {
                out.add(
                    names::CONTAINER_MEMORY_EVENTS,
                    count,
                    with(
                        &attributes,
                        [KeyValue::new(names::MEMORY_EVENT_TYPE, kind.to_string())],
                    ),
                );
            };
            let (usage_file, limit_file) = match memory.version {
                Version::V2 => ("memory.current", "memory.max"),
                Version::V1 => ("memory.usage_in_bytes", "memory.limit_in_bytes"),
            };
            // Read first: a container gone since the walk has no file and no series.
            let Some(usage) = number(&container, usage_file) else {
                continue;
            };
            out.add(names::CONTAINER_MEMORY_USAGE, usage, attributes.clone());
            // v2 writes "max" when unlimited, which does not parse.
            if let Some(limit) = number(&container, limit_file).filter(|l| *l < UNLIMITED) {
                out.add(names::CONTAINER_MEMORY_LIMIT, limit, attributes.clone());
            }
            if let Some(stat) = container.read("memory.stat") {
                for (key, value) in flat_keyed(&stat).filter(|(key, _)| filter.allows(key)) {
                    out.add(
                        names::CONTAINER_MEMORY_STAT,
                        value,
                        with(
                            &attributes,
                            [KeyValue::new(names::MEMORY_STAT_KEY, key.to_string())],
                        ),
                    );
                }
            }
            match memory.version {
                Version::V2 => {
                    for (kind, count) in
                        flat_keyed(&container.read("memory.events").unwrap_or_default())
                    {
                        event(out, kind, count);
                    }
                }
                Version::V1 => {
                    if let Some(failcnt) = number(&container, "memory.failcnt") {
                        event(out, "failcnt", failcnt);
                    }
                    let oom_control = container.read("memory.oom_control").unwrap_or_default();
                    for (key, value) in flat_keyed(&oom_control) {
                        match key {
                            "oom_kill" => event(out, "oom_kill", value),
                            "under_oom" => out.add(
                                names::CONTAINER_MEMORY_UNDER_OOM,
                                value,
                                attributes.clone(),
                            ),
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A file holding one number; `None` when absent or not a number ("max").
fn number(container: &ContainerCgroup, file: &str) -> Option<u64> {
    container.read(file)?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::cgroups::tests::{id, value};
    use crate::framework::collector_test_support::{collect, collect_fixture, fixture};

    #[test]
    fn v2_fixture_usage_limit_stat_and_events() {
        let points = collect_fixture(&ContainerMemory::default(), "cgroup-v2");
        let app = id("app");
        let of = |metric, filter: &[(&str, &str)]| value(&points, metric, &app, filter);
        assert_eq!(of(names::CONTAINER_MEMORY_USAGE, &[]), Some(209715200.0));
        assert_eq!(of(names::CONTAINER_MEMORY_LIMIT, &[]), Some(536870912.0));
        // "max": no limit series.
        assert_eq!(
            value(&points, names::CONTAINER_MEMORY_LIMIT, &id("pause"), &[]),
            None
        );
        let stat = |key| {
            of(
                names::CONTAINER_MEMORY_STAT,
                &[(names::MEMORY_STAT_KEY, key)],
            )
        };
        assert_eq!(stat("anon"), Some(150994944.0));
        assert_eq!(stat("pgmajfault"), Some(17.0));
        assert_eq!(stat("workingset_refault_file"), Some(12.0));
        // Not in the default include list.
        assert_eq!(stat("thp_fault_alloc"), None);
        let event = |kind| {
            of(
                names::CONTAINER_MEMORY_EVENTS,
                &[(names::MEMORY_EVENT_TYPE, kind)],
            )
        };
        assert_eq!(event("max"), Some(42.0));
        assert_eq!(event("oom_kill"), Some(1.0));
        assert!(points.of(names::CONTAINER_MEMORY_UNDER_OOM).is_empty());
    }

    #[test]
    fn v1_fixture_and_a_user_filter() {
        let points = collect_fixture(&ContainerMemory::default(), "cgroup-v1-hybrid");
        let docker = id("huatuo-fixture-1");
        let of = |metric, filter: &[(&str, &str)]| value(&points, metric, &docker, filter);
        assert_eq!(of(names::CONTAINER_MEMORY_USAGE, &[]), Some(266240.0));
        assert_eq!(of(names::CONTAINER_MEMORY_LIMIT, &[]), Some(268435456.0));
        let other = id("huatuo-fixture-2");
        assert_eq!(
            value(&points, names::CONTAINER_MEMORY_LIMIT, &other, &[]),
            None
        );
        assert_eq!(
            of(
                names::CONTAINER_MEMORY_STAT,
                &[(names::MEMORY_STAT_KEY, "cache")]
            ),
            Some(102400.0)
        );
        assert!(points
            .of(names::CONTAINER_MEMORY_STAT)
            .iter()
            .all(|(_, a)| !a.iter().any(|kv| kv.value.as_str().starts_with("total_"))));
        let event = |kind| {
            of(
                names::CONTAINER_MEMORY_EVENTS,
                &[(names::MEMORY_EVENT_TYPE, kind)],
            )
        };
        assert_eq!(event("failcnt"), Some(0.0));
        assert_eq!(event("oom_kill"), Some(0.0));
        assert_eq!(of(names::CONTAINER_MEMORY_UNDER_OOM, &[]), Some(0.0));

        let mut config = Config::default();
        config.collectors.container_memory.include =
            vec!["^total_rss$".to_string().try_into().unwrap()];
        config.collectors.container_memory.exclude.clear();
        let points = collect(
            &ContainerMemory::default(),
            &config,
            &fixture("cgroup-v1-hybrid"),
            &mut (),
        )
        .unwrap();
        assert_eq!(
            points.of(names::CONTAINER_MEMORY_STAT).len(),
            2,
            "one key, two containers"
        );
    }
}
