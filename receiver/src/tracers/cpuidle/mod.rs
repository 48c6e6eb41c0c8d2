//! `cpuidle` (autotracing): every container's CPU use from its cgroup v2 `cpu.stat`, as a
//! percentage of the CPUs it may use. HuaTuo's rule: user above 75% and up 45 points, OR system
//! above 45% and up 20, OR total above 90% and up 55, since the previous sample; of the
//! containers spiking, the one furthest over its thresholds is captured: its on-CPU stacks
//! (descendant cgroups included) for `capture_secs`, as folded stacks.
//!
//! Containers are found in the unified (v2) hierarchy, where the profiler can filter on them;
//! on hosts without one the tracer is unsupported.

use crate::attribution::unified_root;
use crate::container::container_dirs;
use crate::framework::{autotracer, Autotracer, Capture, Captures, Trigger, Unsupported};
use crate::kernel::KernelEnv;
use crate::profiler::{capture_profile, online_cpus, parse_cpu_list, ProfileRequest};
use crate::telemetry::Telemetry;
use anyhow::Context as _;
use huatuo_config::{Config, CpuidleConfig};
use huatuo_semconv::{autotracing as names, container as container_names};
use opentelemetry::logs::AnyValue;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub const NAME: &str = "cpuidle";
const REASON: &str = "container_cpu";
/// Bound on cgroup directories visited per sample.
const MAX_CGROUPS_VISITED: usize = 20_000;

#[derive(Default)]
pub struct Cpuidle {
    /// Latest (user, system, total) percents by container, for the gauge.
    readings: Arc<Mutex<HashMap<String, [f64; 3]>>>,
    captures: Captures,
}

autotracer!(Cpuidle);

/// What the previous sample saw of each container.
#[derive(Default)]
pub struct Previous {
    by_container: HashMap<String, Seen>,
}

struct Seen {
    usage: CpuUsage,
    at: Instant,
    percents: Option<[f64; 3]>,
}

/// Cumulative microseconds of `cpu.stat`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuUsage {
    user: u64,
    system: u64,
    total: u64,
}

struct Container {
    id: String,
    dir: PathBuf,
}

impl Autotracer for Cpuidle {
    const NAME: &'static str = NAME;
    const SPAN: &'static str = names::CPUIDLE_CAPTURE;
    type Section = CpuidleConfig;
    type Sampler = Previous;

    fn section(config: &Config) -> &CpuidleConfig {
        &config.tracers.cpuidle
    }

    fn captures(&self) -> &Captures {
        &self.captures
    }

    fn probe(&self, _kernel: &KernelEnv) -> Result<(), Unsupported> {
        unified_root()
            .map(|_| ())
            .ok_or_else(|| Unsupported("no cgroup v2 hierarchy is mounted".into()))
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        let readings = self.readings.clone();
        telemetry
            .meter
            .f64_observable_gauge(names::CONTAINER_CPU_PERCENT)
            .with_description(
                "Container CPU use over the last cpuidle interval, percent of the CPUs it may use",
            )
            .with_unit("%")
            .with_callback(move |observer| {
                for (id, percents) in readings.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    for (mode, percent) in ["user", "system", "total"].into_iter().zip(percents) {
                        observer.observe(
                            *percent,
                            &[
                                KeyValue::new(container_names::CONTAINER_ID, id.clone()),
                                KeyValue::new(huatuo_semconv::system::CPU_MODE, mode),
                            ],
                        );
                    }
                }
            })
            .build();
    }

    fn sampler(&self, _section: &CpuidleConfig) -> anyhow::Result<Previous> {
        Ok(Previous::default())
    }

    fn sample(
        &self,
        previous: &mut Previous,
        section: &CpuidleConfig,
    ) -> anyhow::Result<Vec<Trigger>> {
        let root = unified_root().context("no cgroup v2 hierarchy is mounted")?;
        let host_cpus = online_cpus()?.len().max(1) as f64;
        let now = Instant::now();
        let mut seen = HashMap::new();
        let mut readings = HashMap::new();
        let mut spikes: Vec<(f64, Trigger)> = Vec::new();
        for container in containers(&root) {
            let Some(usage) = read_usage(&container.dir) else {
                continue;
            };
            let before = previous.by_container.remove(&container.id);
            let mut percents = None;
            if let Some(before) = &before {
                let capacity = capacity(&container.dir).unwrap_or(host_cpus);
                let elapsed = now.duration_since(before.at).as_micros() as f64 * capacity;
                let percent = |now: u64, then: u64| {
                    now.checked_sub(then)
                        .map(|d| d as f64 * 100.0 / elapsed.max(1.0))
                };
                // A counter going backwards (a recreated cgroup) only primes the next sample.
                if let (Some(user), Some(system), Some(total)) = (
                    percent(usage.user, before.usage.user),
                    percent(usage.system, before.usage.system),
                    percent(usage.total, before.usage.total),
                ) {
                    let current = [user, system, total];
                    readings.insert(container.id.clone(), current);
                    if let Some(last) = before.percents {
                        if let Some(trigger) = spike(&container, current, last, capacity, section) {
                            spikes.push(trigger);
                        }
                    }
                    percents = Some(current);
                }
            }
            seen.insert(
                container.id,
                Seen {
                    usage,
                    at: now,
                    percents,
                },
            );
        }
        previous.by_container = seen;
        *self.readings.lock().unwrap_or_else(|e| e.into_inner()) = readings;
        // The most anomalous first: the runner captures one per sample.
        spikes.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.target.cmp(&b.1.target))
        });
        Ok(spikes.into_iter().map(|(_, trigger)| trigger).collect())
    }

    fn capture(&self, trigger: &Trigger, section: &CpuidleConfig) -> anyhow::Result<Capture> {
        let root = unified_root().context("no cgroup v2 hierarchy is mounted")?;
        let id = trigger.target.as_deref().context("a container trigger")?;
        let container = containers(&root)
            .into_iter()
            .find(|c| c.id == id)
            .with_context(|| format!("container {id} is gone"))?;
        capture_profile(
            NAME,
            &ProfileRequest {
                duration: Duration::from_secs(section.capture_secs),
                frequency_hz: section.frequency_hz,
                cgroup_dir: Some(container.dir),
            },
        )
    }
}

/// The trigger, with its score (how far over the thresholds), when the container spikes.
fn spike(
    container: &Container,
    [user, system, total]: [f64; 3],
    [last_user, last_system, last_total]: [f64; 3],
    capacity: f64,
    c: &CpuidleConfig,
) -> Option<(f64, Trigger)> {
    let over = |value: f64, last: f64, threshold: f64, delta_threshold: f64| {
        let delta = value - last;
        (value > threshold && delta > delta_threshold)
            .then_some((value - threshold) + (delta - delta_threshold))
    };
    let scores = [
        over(
            user,
            last_user,
            c.user_percent_threshold,
            c.user_percent_delta_threshold,
        ),
        over(
            system,
            last_system,
            c.sys_percent_threshold,
            c.sys_percent_delta_threshold,
        ),
        over(
            total,
            last_total,
            c.total_percent_threshold,
            c.total_percent_delta_threshold,
        ),
    ];
    if scores.iter().all(Option::is_none) {
        return None;
    }
    let score = scores.iter().flatten().sum();
    let double = AnyValue::Double;
    let trigger = Trigger {
        reason: REASON,
        target: Some(container.id.clone()),
        cgroup_id: std::fs::metadata(&container.dir).ok().map(|m| m.ino()),
        at: SystemTime::now(),
        attributes: vec![
            (names::USER_PERCENT, double(user)),
            (names::USER_PERCENT_DELTA, double(user - last_user)),
            (
                names::USER_PERCENT_THRESHOLD,
                double(c.user_percent_threshold),
            ),
            (
                names::USER_PERCENT_DELTA_THRESHOLD,
                double(c.user_percent_delta_threshold),
            ),
            (names::SYS_PERCENT, double(system)),
            (names::SYS_PERCENT_DELTA, double(system - last_system)),
            (
                names::SYS_PERCENT_THRESHOLD,
                double(c.sys_percent_threshold),
            ),
            (
                names::SYS_PERCENT_DELTA_THRESHOLD,
                double(c.sys_percent_delta_threshold),
            ),
            (names::TOTAL_PERCENT, double(total)),
            (names::TOTAL_PERCENT_DELTA, double(total - last_total)),
            (
                names::TOTAL_PERCENT_THRESHOLD,
                double(c.total_percent_threshold),
            ),
            (
                names::TOTAL_PERCENT_DELTA_THRESHOLD,
                double(c.total_percent_delta_threshold),
            ),
            (names::CPU_CAPACITY, double(capacity)),
        ],
    };
    Some((score, trigger))
}

/// Container cgroups of the hierarchy at `root`: the outermost directories whose path names a
/// container (their sub-cgroups belong to them).
fn containers(root: &Path) -> Vec<Container> {
    let (found, truncated) = container_dirs(root, MAX_CGROUPS_VISITED);
    if truncated {
        tracing::warn!(
            tracer = NAME,
            limit = MAX_CGROUPS_VISITED,
            "too many cgroups; some containers are not watched"
        );
    }
    found
        .into_iter()
        .map(|c| Container {
            id: c.id,
            dir: c.dir,
        })
        .collect()
}

fn read_usage(dir: &Path) -> Option<CpuUsage> {
    let stat = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
    let field = |name: &str| {
        stat.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    Some(CpuUsage {
        user: field("user_usec")?,
        system: field("system_usec")?,
        total: field("usage_usec")?,
    })
}

/// CPUs the cgroup may use: its CFS quota (`cpu.max`), else its cpuset; `None`: unbounded.
fn capacity(dir: &Path) -> Option<f64> {
    let quota = std::fs::read_to_string(dir.join("cpu.max"))
        .ok()
        .and_then(|max| {
            let (quota, period) = max.trim().split_once(' ')?;
            Some(quota.parse::<f64>().ok()? / period.parse::<f64>().ok()?)
        });
    quota.or_else(|| {
        let cpus = std::fs::read_to_string(dir.join("cpuset.cpus.effective")).ok()?;
        let count = parse_cpu_list(cpus.trim()).ok()?.len();
        (count > 0).then_some(count as f64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn finds_containers_and_their_capacity() {
        let root = tempfile::tempdir().unwrap();
        let pod = root
            .path()
            .join(format!("kubepods.slice/cri-containerd-{ID}.scope"));
        std::fs::create_dir_all(pod.join("nested")).unwrap();
        std::fs::create_dir_all(root.path().join("system.slice/sshd.service")).unwrap();
        std::fs::write(pod.join("cpu.max"), "150000 100000\n").unwrap();
        std::fs::write(
            pod.join("cpu.stat"),
            "usage_usec 30\nuser_usec 20\nsystem_usec 10\n",
        )
        .unwrap();
        let found = containers(root.path());
        assert_eq!(found.len(), 1, "the container, not its sub-cgroup");
        assert_eq!(found[0].id, ID);
        assert_eq!(capacity(&found[0].dir), Some(1.5));
        assert_eq!(
            read_usage(&found[0].dir),
            Some(CpuUsage {
                user: 20,
                system: 10,
                total: 30
            })
        );
        std::fs::write(pod.join("cpu.max"), "max 100000\n").unwrap();
        std::fs::write(pod.join("cpuset.cpus.effective"), "0-3\n").unwrap();
        assert_eq!(capacity(&found[0].dir), Some(4.0));
    }

    #[test]
    fn spikes_follow_huatuos_rule_and_score_the_excess() {
        let container = Container {
            id: ID.into(),
            dir: PathBuf::from("/nonexistent"),
        };
        let config = CpuidleConfig::default();
        // User 80% after 30%: over 75 and up 50 > 45.
        let (score, trigger) = spike(
            &container,
            [80.0, 5.0, 85.0],
            [30.0, 5.0, 35.0],
            2.0,
            &config,
        )
        .unwrap();
        assert_eq!(score, (80.0 - 75.0) + (50.0 - 45.0));
        assert_eq!(trigger.target.as_deref(), Some(ID));
        // High but steady: no spike.
        assert!(spike(
            &container,
            [95.0, 5.0, 99.0],
            [90.0, 5.0, 95.0],
            2.0,
            &config
        )
        .is_none());
        // System 50% after 10%.
        assert!(spike(
            &container,
            [10.0, 50.0, 60.0],
            [5.0, 10.0, 15.0],
            2.0,
            &config
        )
        .is_some());
    }
}
