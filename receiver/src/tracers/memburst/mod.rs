//! `memburst` (autotracing): host anonymous memory sampled into a sliding window; when it has
//! grown by `delta_percent` over the window AND exceeds `anon_share_percent` of RAM, a capture
//! lists the processes with the largest resident sets, with their containers.

use crate::attribution::{unified_root, Owner};
use crate::framework::{autotracer, Autotracer, Capture, Captures, Reading, Trigger};
use crate::procfs::Procfs;
use crate::telemetry::{Event, Telemetry};
use huatuo_config::{Config, MemburstConfig};
use huatuo_semconv::{autotracing as names, net};
use opentelemetry::logs::{AnyValue, Severity};
use std::collections::VecDeque;
use std::time::SystemTime;

pub const NAME: &str = "memburst";
const REASON: &str = "anon_growth";

#[derive(Default)]
pub struct Memburst {
    procfs: Procfs,
    /// Latest growth ratio, for the gauge.
    growth: Reading,
    captures: Captures,
}

autotracer!(Memburst);

pub struct Window {
    samples: VecDeque<u64>,
}

impl Autotracer for Memburst {
    const NAME: &'static str = NAME;
    const SPAN: &'static str = names::MEMBURST_CAPTURE;
    type Section = MemburstConfig;
    type Sampler = Window;

    fn section(config: &Config) -> &MemburstConfig {
        &config.tracers.memburst
    }

    fn captures(&self) -> &Captures {
        &self.captures
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        self.growth.register(
            telemetry,
            names::ANON_GROWTH,
            "Host anonymous memory now divided by its value at the oldest sample of memburst's window",
            "1",
        );
    }

    fn sampler(&self, section: &MemburstConfig) -> anyhow::Result<Window> {
        anyhow::ensure!(
            section.window_samples >= 2,
            "tracers.memburst.window_samples must be at least 2, is {}",
            section.window_samples
        );
        Ok(Window {
            samples: VecDeque::with_capacity(section.window_samples as usize),
        })
    }

    fn sample(
        &self,
        window: &mut Window,
        section: &MemburstConfig,
    ) -> anyhow::Result<Vec<Trigger>> {
        let [active, inactive, total] =
            self.procfs
                .meminfo_bytes(&["Active(anon)", "Inactive(anon)", "MemTotal"])?[..]
        else {
            unreachable!("three fields asked, three returned")
        };
        let anon = active + inactive;
        if window.samples.len() == section.window_samples as usize {
            window.samples.pop_front();
        }
        window.samples.push_back(anon);
        let oldest = window.samples[0];
        self.growth.set(anon as f64 / oldest.max(1) as f64);
        Ok(is_burst(&window.samples, total, section)
            .then(|| Trigger {
                reason: REASON,
                target: None,
                cgroup_id: None,
                at: SystemTime::now(),
                attributes: vec![
                    (names::ANON_BYTES, int(anon)),
                    (names::ANON_OLDEST_BYTES, int(oldest)),
                    (
                        names::WINDOW_SECONDS,
                        int(u64::from(section.window_samples) * section.interval_secs),
                    ),
                    (names::GROWTH_THRESHOLD, int(section.delta_percent)),
                    (names::SHARE_THRESHOLD, int(section.anon_share_percent)),
                ],
            })
            .into_iter()
            .collect())
    }

    fn capture(&self, _trigger: &Trigger, section: &MemburstConfig) -> anyhow::Result<Capture> {
        // SAFETY: sysconf has no preconditions.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        let mut processes = self.procfs.resident_sets(page_size);
        processes.sort_by_key(|p| std::cmp::Reverse(p.2));
        processes.truncate(section.top_processes as usize);
        let unified = unified_root();
        let events = processes
            .into_iter()
            .zip(1u32..)
            .map(|((pid, comm, rss), rank)| Event {
                name: names::MEMBURST_PROCESS,
                tracer: NAME,
                time: SystemTime::now(),
                severity: Severity::Warn,
                body: format!("#{rank}: {comm} (pid {pid}) resident {} MiB", rss >> 20),
                attributes: vec![
                    (net::PROCESS_PID, int(pid)),
                    (names::PROCESS_EXECUTABLE_NAME, comm.into()),
                    (names::PROCESS_RSS, int(rss)),
                    (names::RANK, int(rank)),
                ],
                owner: unified
                    .as_deref()
                    .and_then(|root| self.procfs.cgroup_id(pid, root))
                    .map_or_else(Owner::default, Owner::cgroup)
                    .with_task(pid),
                span: None,
            })
            .collect();
        Ok(Capture {
            attributes: Vec::new(),
            events,
        })
    }
}

/// HuaTuo's rule: the window is full, the newest sample is at least (1 + delta) times the
/// oldest, and it is above the share of RAM.
fn is_burst(samples: &VecDeque<u64>, mem_total: u64, section: &MemburstConfig) -> bool {
    let (Some(&oldest), Some(&newest)) = (samples.front(), samples.back()) else {
        return false;
    };
    let full = samples.len() == section.window_samples as usize;
    let grown =
        u128::from(newest) * 100 >= u128::from(oldest) * u128::from(100 + section.delta_percent);
    let large =
        u128::from(newest) * 100 >= u128::from(mem_total) * u128::from(section.anon_share_percent);
    full && grown && large
}

fn int(value: impl Into<u64>) -> AnyValue {
    AnyValue::Int(i64::try_from(value.into()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(window_samples: u32) -> MemburstConfig {
        MemburstConfig {
            window_samples,
            ..MemburstConfig::default()
        }
    }

    #[test]
    fn a_burst_needs_a_full_window_growth_and_a_large_share() {
        let gib = 1 << 30;
        let window = |s: &[u64]| s.iter().copied().collect::<VecDeque<u64>>();
        let config = section(3);
        // Doubled within the window and 80% of 10 GiB.
        assert!(is_burst(
            &window(&[4 * gib, 5 * gib, 8 * gib]),
            10 * gib,
            &config
        ));
        assert!(
            !is_burst(&window(&[4 * gib, 8 * gib]), 10 * gib, &config),
            "window not full"
        );
        assert!(
            !is_burst(&window(&[5 * gib, 6 * gib, 8 * gib]), 10 * gib, &config),
            "grew 60%"
        );
        assert!(
            !is_burst(&window(&[3 * gib, 5 * gib, 6 * gib]), 10 * gib, &config),
            "60% of RAM"
        );
    }

    #[test]
    fn samples_the_host_and_fires_on_a_forged_burst() {
        let dir = tempfile::tempdir().unwrap();
        let meminfo = |anon_kib: u64| {
            format!(
                "MemTotal:       1000000 kB\nActive(anon):   {anon_kib} kB\nInactive(anon):        0 kB\n"
            )
        };
        let tracer = Memburst {
            procfs: Procfs::at(dir.path()),
            growth: Reading::default(),
            captures: Captures::default(),
        };
        let config = MemburstConfig {
            anon_share_percent: 50,
            ..section(2)
        };
        let mut window = tracer.sampler(&config).unwrap();
        for (anon_kib, fires) in [(300_000, false), (700_000, true), (800_000, false)] {
            std::fs::write(dir.path().join("meminfo"), meminfo(anon_kib)).unwrap();
            let triggers = tracer.sample(&mut window, &config).unwrap();
            assert_eq!(triggers.len(), usize::from(fires), "anon {anon_kib} kB");
        }
        assert!(tracer.sampler(&section(1)).is_err());
        std::fs::write(dir.path().join("meminfo"), "MemTotal: 1 kB\n").unwrap();
        let error = tracer.sample(&mut window, &config).unwrap_err().to_string();
        assert!(error.contains("Active(anon)"), "{error}");
    }
}
