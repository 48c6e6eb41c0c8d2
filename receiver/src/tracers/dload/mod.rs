//! `dload` (autotracing): a load average of the tasks in state D (uninterruptible sleep), per
//! container and for the host, from /proc, so it works on cgroup v1 and v2 alike. Above the
//! threshold, a capture reads the kernel stacks of that target's D-state tasks.

use crate::attribution::unified_root;
use crate::attribution::Owner;
use crate::container::parse_cgroup_path;
use crate::framework::{autotracer, Autotracer, Capture, Captures, Trigger};
use crate::procfs::{wait_reasons, BlockedDump, BlockedTask, Procfs};
use crate::telemetry::{Event, Telemetry};
use huatuo_config::{Config, DloadConfig};
use huatuo_semconv::{autotracing as names, container as container_names};
use opentelemetry::logs::{AnyValue, Severity};
use opentelemetry::KeyValue;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub const NAME: &str = "dload";
const REASON: &str = "dstate_load";
/// Averaging period of the load, as the kernel's 1-minute load average.
const PERIOD_SECS: f64 = 60.0;

/// A container id, or `None` for the host.
type Target = Option<String>;

#[derive(Default)]
pub struct Dload {
    procfs: Procfs,
    /// Latest load per target, for the gauge.
    loads: Arc<Mutex<HashMap<Target, f64>>>,
    captures: Captures,
}

autotracer!(Dload);

/// The running averages.
#[derive(Default)]
pub struct Loads {
    by_target: HashMap<Target, f64>,
}

/// Where a D-state task belongs.
struct Placement {
    container: Target,
    cgroup_id: Option<u64>,
}

impl Autotracer for Dload {
    const NAME: &'static str = NAME;
    const SPAN: &'static str = names::DLOAD_CAPTURE;
    type Section = DloadConfig;
    type Sampler = Loads;

    fn section(config: &Config) -> &DloadConfig {
        &config.tracers.dload
    }

    fn captures(&self) -> &Captures {
        &self.captures
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        let loads = self.loads.clone();
        telemetry
            .meter
            .f64_observable_gauge(names::DLOAD_LOAD)
            .with_description(
                "1-minute load average of the tasks in state D, by container (none: the host)",
            )
            .with_unit("{task}")
            .with_callback(move |observer| {
                for (target, load) in loads.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    let attributes: Vec<KeyValue> = target
                        .iter()
                        .map(|id| KeyValue::new(container_names::CONTAINER_ID, id.clone()))
                        .collect();
                    observer.observe(*load, &attributes);
                }
            })
            .build();
    }

    fn sampler(&self, _section: &DloadConfig) -> anyhow::Result<Loads> {
        Ok(Loads::default())
    }

    fn sample(&self, loads: &mut Loads, section: &DloadConfig) -> anyhow::Result<Vec<Trigger>> {
        let unified = unified_root();
        let mut counts: HashMap<Target, (u64, Option<u64>)> = HashMap::new();
        counts.insert(None, (0, None));
        for task in self.procfs.tasks_in_d_state() {
            counts.entry(None).or_default().0 += 1;
            let placement = self.place(&task, unified.as_deref());
            if placement.container.is_some() {
                let entry = counts.entry(placement.container).or_default();
                entry.0 += 1;
                entry.1 = entry.1.or(placement.cgroup_id);
            }
        }
        let decay = (-(section.interval_secs.max(1) as f64) / PERIOD_SECS).exp();
        for load in loads.by_target.values_mut() {
            *load *= decay;
        }
        for (target, (tasks, _)) in &counts {
            *loads.by_target.entry(target.clone()).or_default() += *tasks as f64 * (1.0 - decay);
        }
        // A container whose tasks left state D long ago no longer needs a series.
        loads
            .by_target
            .retain(|target, load| target.is_none() || *load >= 0.01);
        *self.loads.lock().unwrap_or_else(|e| e.into_inner()) = loads.by_target.clone();

        let mut triggers: Vec<(f64, Trigger)> = loads
            .by_target
            .iter()
            .filter(|(_, load)| **load > section.threshold)
            .map(|(target, load)| {
                let (tasks, cgroup_id) = counts.get(target).copied().unwrap_or_default();
                let trigger = Trigger {
                    reason: REASON,
                    target: target.clone(),
                    cgroup_id,
                    at: SystemTime::now(),
                    attributes: vec![
                        (names::DLOAD_AVG, AnyValue::Double(*load)),
                        (names::DLOAD_THRESHOLD, AnyValue::Double(section.threshold)),
                        (names::DLOAD_TASKS, AnyValue::Int(tasks as i64)),
                    ],
                };
                (*load, trigger)
            })
            .collect();
        triggers.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(triggers.into_iter().map(|(_, t)| t).collect())
    }

    fn capture(&self, trigger: &Trigger, section: &DloadConfig) -> anyhow::Result<Capture> {
        let unified = unified_root();
        let of_target: Vec<BlockedTask> = self
            .procfs
            .tasks_in_d_state()
            .into_iter()
            .filter(|task| {
                trigger.target.is_none()
                    || self.place(task, unified.as_deref()).container == trigger.target
            })
            .collect();
        let pids: HashSet<u32> = of_target.iter().map(|task| task.pid).collect();
        let max_stacks = section.max_stacks as usize;
        let dump = self
            .procfs
            .blocked_in(max_stacks, |pid| pids.contains(&pid));
        // Bounded like the stacks: as many tasks, each a short function name.
        let reasons = wait_reasons(&of_target[..of_target.len().min(max_stacks)]);
        let whose = trigger.target.as_deref().unwrap_or("the host");
        let mut event = stacks_event(
            names::DLOAD_STACKS,
            NAME,
            dump,
            whose,
            Owner {
                cgroup_id: trigger.cgroup_id,
                ..Owner::default()
            },
        );
        event
            .attributes
            .push((names::DLOAD_WAIT_REASONS, reasons.into()));
        Ok(Capture {
            attributes: Vec::new(),
            events: vec![event],
        })
    }
}

/// A log record `name` of `tracer` carrying the stacks of tasks in state D, with the attributes
/// of `huatuo.dload.stacks` whichever tracer read them.
pub fn stacks_event(
    name: &'static str,
    tracer: &'static str,
    dump: BlockedDump,
    whose: &str,
    owner: Owner,
) -> Event {
    Event {
        name,
        tracer,
        time: SystemTime::now(),
        severity: Severity::Warn,
        body: format!("{} tasks in state D in {whose}", dump.tasks),
        attributes: vec![
            (names::DLOAD_TASKS, AnyValue::Int(dump.tasks as i64)),
            (names::DLOAD_OMITTED, AnyValue::Int(dump.omitted as i64)),
            (names::DLOAD_STACK_TEXT, dump.stacks.into()),
        ],
        owner,
        span: None,
    }
}

impl Dload {
    fn place(&self, task: &BlockedTask, unified: Option<&std::path::Path>) -> Placement {
        let path = self.procfs.unified_cgroup(task.pid);
        Placement {
            container: path
                .as_deref()
                .and_then(|p| parse_cgroup_path(p).container_id),
            cgroup_id: unified.and_then(|root| self.procfs.cgroup_id(task.pid, root)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTAINER: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A fake /proc: pid 10 in a docker container, pid 20 on the host, both with a task in D.
    fn fake_proc() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (pid, cgroup, comm) in [
            (10, format!("/system.slice/docker-{CONTAINER}.scope"), "db"),
            (20, "/user.slice".to_string(), "sync"),
        ] {
            let task = dir.path().join(format!("{pid}/task/{pid}"));
            std::fs::create_dir_all(&task).unwrap();
            std::fs::write(task.join("stat"), format!("{pid} ({comm}) D 1 {pid} 0\n")).unwrap();
            std::fs::write(task.join("stack"), "[<0>] io_schedule+0x1/0x2\n").unwrap();
            std::fs::write(task.join("wchan"), "io_schedule").unwrap();
            std::fs::write(
                dir.path().join(format!("{pid}/cgroup")),
                format!("0::{cgroup}\n"),
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn averages_per_container_and_for_the_host_and_captures_each_apart() {
        let dir = fake_proc();
        let tracer = Dload {
            procfs: Procfs::at(dir.path()),
            loads: Arc::default(),
            captures: Captures::default(),
        };
        let config = DloadConfig {
            interval_secs: 1,
            threshold: 0.02,
            ..DloadConfig::default()
        };
        let mut loads = tracer.sampler(&config).unwrap();
        // One sample adds 1 - e^(-1/60) ~ 0.0165 per task: the host (2 tasks) is over 0.02 at
        // once, the container (1 task) from the second sample.
        let first = tracer.sample(&mut loads, &config).unwrap();
        assert_eq!(
            first.iter().map(|t| t.target.clone()).collect::<Vec<_>>(),
            [None]
        );
        let second = tracer.sample(&mut loads, &config).unwrap();
        let targets: Vec<_> = second.iter().map(|t| t.target.clone()).collect();
        assert_eq!(
            targets,
            [None, Some(CONTAINER.to_string())],
            "largest load first"
        );
        assert_eq!(
            tracer.loads.lock().unwrap().len(),
            2,
            "one gauge series each"
        );

        let text = |trigger: &Trigger, key: &str| {
            let capture = tracer.capture(trigger, &config).unwrap();
            let value = capture.events[0]
                .attributes
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone());
            match value {
                Some(AnyValue::String(s)) => s.to_string(),
                other => panic!("{key}: {other:?}"),
            }
        };
        let stacks = |trigger: &Trigger| text(trigger, names::DLOAD_STACK_TEXT);
        assert_eq!(text(&second[0], names::DLOAD_WAIT_REASONS), "io_schedule 2");
        assert_eq!(text(&second[1], names::DLOAD_WAIT_REASONS), "io_schedule 1");
        let host = stacks(&second[0]);
        assert!(
            host.contains("10 (db)") && host.contains("20 (sync)"),
            "{host}"
        );
        let container = stacks(&second[1]);
        assert!(
            container.contains("10 (db)") && !container.contains("sync"),
            "{container}"
        );
    }
}
