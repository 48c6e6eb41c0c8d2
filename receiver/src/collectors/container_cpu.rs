//! Per-container CPU: time by mode and CFS bandwidth throttling. v2 `cpu.stat` has both (in µs);
//! v1 splits them: `cpuacct.stat` (user and system in clock ticks) and the cpu controller's
//! `cpu.stat` (throttling in ns). Burst counters exist since Linux 5.14 and are reported only
//! when the kernel has them.

use super::cgroups::{flat_keyed, with, ContainerAttributes, Hierarchy, Version};
use super::cpu::clock_ticks_per_second;
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use crate::telemetry::Telemetry;
use huatuo_config::Config;
use huatuo_semconv::{container as names, system as system_names};
use opentelemetry::KeyValue;
use std::sync::Arc;

#[derive(Default)]
pub struct ContainerCpu {
    attributes: ContainerAttributes,
}

/// The metric of a throttling key of `cpu.stat`, and for times the divisor to seconds: v2 counts
/// in µs, v1 in ns.
fn throttling(version: Version, key: &str) -> Option<(&'static str, Option<f64>)> {
    Some(match (version, key) {
        (_, "nr_periods") => (names::CONTAINER_CPU_PERIODS, None),
        (_, "nr_throttled") => (names::CONTAINER_CPU_THROTTLED_PERIODS, None),
        (_, "nr_bursts") => (names::CONTAINER_CPU_BURSTS, None),
        (Version::V2, "throttled_usec") => (names::CONTAINER_CPU_THROTTLED_TIME, Some(1e6)),
        (Version::V1, "throttled_time") => (names::CONTAINER_CPU_THROTTLED_TIME, Some(1e9)),
        (Version::V2, "burst_usec") => (names::CONTAINER_CPU_BURST_TIME, Some(1e6)),
        (Version::V1, "burst_time") => (names::CONTAINER_CPU_BURST_TIME, Some(1e9)),
        _ => return None,
    })
}

impl Collector for ContainerCpu {
    type State = ();
    const NAME: &'static str = "container_cpu";
    const METRICS: &'static [&'static str] = &[
        names::CONTAINER_CPU_TIME,
        names::CONTAINER_CPU_PERIODS,
        names::CONTAINER_CPU_THROTTLED_PERIODS,
        names::CONTAINER_CPU_THROTTLED_TIME,
        names::CONTAINER_CPU_BURSTS,
        names::CONTAINER_CPU_BURST_TIME,
    ];

    fn enabled(config: &Config) -> bool {
        config.collectors.container_cpu.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    fn bind(&self, telemetry: &Arc<Telemetry>) {
        self.attributes.bind(telemetry);
    }

    fn collect(
        &self,
        _: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        let mode = |attributes: &[KeyValue], mode: &'static str| {
            with(attributes, [KeyValue::new(system_names::CPU_MODE, mode)])
        };
        let cpu = Hierarchy::of(roots, "cpu", "cpu");
        if let Some(cpu) = &cpu {
            for container in cpu.containers() {
                let Some(stat) = container.read("cpu.stat") else {
                    continue;
                };
                let attributes = self.attributes.of(&container);
                for (key, value) in flat_keyed(&stat) {
                    let v2_mode = match (cpu.version, key) {
                        (Version::V2, "user_usec") => Some("user"),
                        (Version::V2, "system_usec") => Some("system"),
                        _ => None,
                    };
                    if let Some(name) = v2_mode {
                        out.add(
                            names::CONTAINER_CPU_TIME,
                            value as f64 / 1e6,
                            mode(&attributes, name),
                        );
                    }
                    match throttling(cpu.version, key) {
                        Some((metric, None)) => out.add(metric, value, attributes.clone()),
                        Some((metric, Some(divisor))) => {
                            out.add(metric, value as f64 / divisor, attributes.clone())
                        }
                        None => {}
                    }
                }
            }
        }
        if cpu.as_ref().is_some_and(|c| c.version == Version::V2) {
            return Ok(());
        }
        // v1: time by mode is the cpuacct controller's, often mounted apart from cpu.
        let Some(cpuacct) = Hierarchy::of(roots, "cpu", "cpuacct") else {
            return Ok(());
        };
        let per_second = clock_ticks_per_second();
        for container in cpuacct.containers() {
            let Some(stat) = container.read("cpuacct.stat") else {
                continue;
            };
            let attributes = self.attributes.of(&container);
            for (key, ticks) in flat_keyed(&stat) {
                let mode_name = match key {
                    "user" => "user",
                    "system" => "system",
                    _ => continue,
                };
                out.add(
                    names::CONTAINER_CPU_TIME,
                    ticks as f64 / per_second,
                    mode(&attributes, mode_name),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::cgroups::tests::{id, value};
    use crate::framework::collector_test_support::collect_fixture;

    #[test]
    fn v2_fixture_time_throttling_and_bursts() {
        let points = collect_fixture(&ContainerCpu::default(), "cgroup-v2");
        let app = id("app");
        let time = |id: &str, mode| {
            value(
                &points,
                names::CONTAINER_CPU_TIME,
                id,
                &[(system_names::CPU_MODE, mode)],
            )
        };
        assert_eq!(time(&app, "user"), Some(2.0));
        assert_eq!(time(&app, "system"), Some(0.5));
        assert_eq!(time(&id("podman"), "user"), Some(0.6));
        let of = |metric| value(&points, metric, &app, &[]);
        assert_eq!(of(names::CONTAINER_CPU_PERIODS), Some(400.0));
        assert_eq!(of(names::CONTAINER_CPU_THROTTLED_PERIODS), Some(120.0));
        assert_eq!(of(names::CONTAINER_CPU_THROTTLED_TIME), Some(3.0));
        assert_eq!(of(names::CONTAINER_CPU_BURSTS), Some(5.0));
        assert_eq!(of(names::CONTAINER_CPU_BURST_TIME), Some(0.04));
        // A kernel without burst accounting: no burst series rather than zeros.
        assert_eq!(
            value(&points, names::CONTAINER_CPU_BURSTS, &id("podman"), &[]),
            None
        );
        // The pod's sandbox carries the pod too; system services are not containers.
        assert_eq!(points.of(names::CONTAINER_CPU_TIME).len(), 6);
        assert!(points
            .of(names::CONTAINER_CPU_TIME)
            .iter()
            .all(|(_, a)| a.iter().any(|kv| kv.key.as_str() == names::CONTAINER_ID)));
    }

    #[test]
    fn v1_fixture_from_cpuacct_and_cpu() {
        let points = collect_fixture(&ContainerCpu::default(), "cgroup-v1-hybrid");
        let docker = id("huatuo-fixture-1");
        let ticks = clock_ticks_per_second();
        let time = |mode| {
            value(
                &points,
                names::CONTAINER_CPU_TIME,
                &docker,
                &[(system_names::CPU_MODE, mode)],
            )
        };
        assert_eq!(time("user"), Some(22.0 / ticks));
        assert_eq!(time("system"), Some(1.0 / ticks));
        let of = |metric| value(&points, metric, &docker, &[]);
        assert_eq!(of(names::CONTAINER_CPU_PERIODS), Some(16.0));
        assert_eq!(of(names::CONTAINER_CPU_THROTTLED_PERIODS), Some(11.0));
        assert_eq!(of(names::CONTAINER_CPU_THROTTLED_TIME), Some(0.57822268));
        assert_eq!(of(names::CONTAINER_CPU_BURSTS), Some(0.0));
        let pod = points.value(
            names::CONTAINER_CPU_TIME,
            &[
                (names::K8S_POD_UID, "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"),
                (system_names::CPU_MODE, "user"),
            ],
        );
        assert_eq!(pod, Some(11.0 / ticks));
    }
}
