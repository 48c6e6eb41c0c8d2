//! `cpusys` (autotracing): the host's system-CPU share from /proc/stat; when it is above
//! `sys_percent_threshold` AND rose by more than `sys_percent_delta_threshold` since the previous
//! sample (HuaTuo's rule: 45% and 20 points), on-CPU stacks of the whole host are sampled for
//! `capture_secs` and exported as folded stacks.

use crate::framework::{autotracer, Autotracer, Capture, Captures, Reading, Trigger};
use crate::profiler::{capture_profile, ProfileRequest};
use crate::telemetry::Telemetry;
use anyhow::Context as _;
use huatuo_config::{Config, CpusysConfig};
use huatuo_semconv::autotracing as names;
use opentelemetry::logs::AnyValue;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub const NAME: &str = "cpusys";
const REASON: &str = "system_cpu";

pub struct Cpusys {
    stat: PathBuf,
    /// Latest system share, for the gauge.
    system_percent: Reading,
    captures: Captures,
}

impl Default for Cpusys {
    fn default() -> Self {
        Self {
            stat: PathBuf::from("/proc/stat"),
            system_percent: Reading::default(),
            captures: Captures::default(),
        }
    }
}

autotracer!(Cpusys);

/// CPU times of the previous sample, and the system share they gave.
#[derive(Default)]
pub struct Previous {
    times: Option<CpuTimes>,
    system_percent: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuTimes {
    system: u64,
    total: u64,
}

impl Autotracer for Cpusys {
    const NAME: &'static str = NAME;
    const SPAN: &'static str = names::CPUSYS_CAPTURE;
    type Section = CpusysConfig;
    type Sampler = Previous;

    fn section(config: &Config) -> &CpusysConfig {
        &config.tracers.cpusys
    }

    fn captures(&self) -> &Captures {
        &self.captures
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        self.system_percent.register(
            telemetry,
            names::SYS_PERCENT_GAUGE,
            "Host system CPU share over the last cpusys sampling interval",
            "%",
        );
    }

    fn sampler(&self, _section: &CpusysConfig) -> anyhow::Result<Previous> {
        Ok(Previous::default())
    }

    fn sample(
        &self,
        previous: &mut Previous,
        section: &CpusysConfig,
    ) -> anyhow::Result<Vec<Trigger>> {
        let text = std::fs::read_to_string(&self.stat)
            .with_context(|| format!("reading {}", self.stat.display()))?;
        let now = parse_cpu_line(&text)
            .with_context(|| format!("{}: no aggregate cpu line", self.stat.display()))?;
        let Some(before) = previous.times.replace(now) else {
            return Ok(Vec::new());
        };
        // Counters that went backwards (CPU hotplug) make this interval meaningless.
        let (Some(system), Some(total)) = (
            now.system.checked_sub(before.system),
            now.total.checked_sub(before.total).filter(|t| *t > 0),
        ) else {
            previous.system_percent = None;
            return Ok(Vec::new());
        };
        let percent = system as f64 * 100.0 / total as f64;
        self.system_percent.set(percent);
        let Some(last) = previous.system_percent.replace(percent) else {
            return Ok(Vec::new());
        };
        let delta = percent - last;
        let spike =
            percent > section.sys_percent_threshold && delta > section.sys_percent_delta_threshold;
        Ok(spike
            .then(|| Trigger {
                reason: REASON,
                target: None,
                cgroup_id: None,
                at: SystemTime::now(),
                attributes: vec![
                    (names::SYS_PERCENT, AnyValue::Double(percent)),
                    (names::SYS_PERCENT_DELTA, AnyValue::Double(delta)),
                    (
                        names::SYS_PERCENT_THRESHOLD,
                        AnyValue::Double(section.sys_percent_threshold),
                    ),
                    (
                        names::SYS_PERCENT_DELTA_THRESHOLD,
                        AnyValue::Double(section.sys_percent_delta_threshold),
                    ),
                ],
            })
            .into_iter()
            .collect())
    }

    fn capture(&self, _trigger: &Trigger, section: &CpusysConfig) -> anyhow::Result<Capture> {
        capture_profile(
            NAME,
            &ProfileRequest {
                duration: Duration::from_secs(section.capture_secs),
                frequency_hz: section.frequency_hz,
                cgroup_dir: None,
            },
        )
    }
}

/// System and total jiffies of the aggregate `cpu` line of /proc/stat (total: user, nice,
/// system, idle, iowait, irq, softirq, steal; guest time is already inside user).
fn parse_cpu_line(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    (fields.len() >= 4).then(|| CpuTimes {
        system: fields[2],
        total: fields.iter().sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spike_needs_a_high_share_and_a_fast_rise() {
        let dir = tempfile::tempdir().unwrap();
        let tracer = Cpusys {
            stat: dir.path().join("stat"),
            ..Cpusys::default()
        };
        let config = CpusysConfig::default();
        let mut previous = tracer.sampler(&config).unwrap();
        // (user, system, idle) cumulative jiffies; per interval: 10% sys, 20% sys, 80% sys, 90%.
        let samples = [
            ((0, 0, 0), false),
            ((80, 10, 10), false),
            ((140, 30, 30), false),
            ((150, 110, 40), true),
            ((150, 200, 50), false),
        ];
        for ((user, system, idle), fires) in samples {
            let stat = format!("cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n");
            std::fs::write(&tracer.stat, stat).unwrap();
            let triggers = tracer.sample(&mut previous, &config).unwrap();
            assert_eq!(
                triggers.len(),
                usize::from(fires),
                "at {user} {system} {idle}"
            );
        }
        assert_eq!(tracer.system_percent.get().unwrap(), 90.0);
        std::fs::write(&tracer.stat, "intr 1\n").unwrap();
        let error = tracer
            .sample(&mut previous, &config)
            .unwrap_err()
            .to_string();
        assert!(error.contains("no aggregate cpu line"), "{error}");
    }
}
