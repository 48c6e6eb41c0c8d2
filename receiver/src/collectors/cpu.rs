//! `/proc/stat`: CPU time by mode (host total), utilisation since the previous cycle, task
//! counts, context switches, process creations and softirqs.

use super::{integers, malformed};
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use huatuo_config::Config;
use huatuo_semconv::system as names;
use opentelemetry::KeyValue;

/// `cpu.mode` of each column of the `cpu` line, in order. `interrupt` is hard IRQ time. Guest
/// time (columns 9 and 10) is already counted in `user` and `nice`, so it is not added again.
const MODES: [&str; 8] = [
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "interrupt",
    "softirq",
    "steal",
];

/// Columns of the `softirq` line after the total, in the kernel's order.
const SOFTIRQS: [&str; 10] = [
    "HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU",
];

pub struct Cpu;

/// Ticks per mode at the previous cycle, for utilisation.
#[derive(Default)]
pub struct CpuState {
    previous: Option<[u64; MODES.len()]>,
}

impl Collector for Cpu {
    type State = CpuState;
    const NAME: &'static str = "cpu";
    const METRICS: &'static [&'static str] = &[
        names::SYSTEM_CPU_TIME,
        names::SYSTEM_CPU_UTILIZATION,
        names::CPU_TASKS,
        names::CPU_CONTEXT_SWITCHES,
        names::SYSTEM_PROCESS_CREATED,
        names::CPU_SOFTIRQS,
    ];

    fn enabled(config: &Config) -> bool {
        config.collectors.cpu.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("stat", "procfs not mounted there?")]
    }

    fn collect(
        &self,
        _: &Config,
        roots: &Roots,
        state: &mut CpuState,
        out: &mut Points,
    ) -> anyhow::Result<()> {
        let text = roots.read_proc("stat")?;
        let mut ticks = None;
        for line in text.lines() {
            let mut fields = line.split_ascii_whitespace();
            let Some(key) = fields.next() else { continue };
            let single = |out: &mut Points, metric, attributes| -> anyhow::Result<()> {
                let value = integers(line.split_ascii_whitespace().skip(1), "stat", line)?;
                out.add(
                    metric,
                    *value.first().ok_or_else(|| malformed("stat", line))?,
                    attributes,
                );
                Ok(())
            };
            match key {
                "cpu" => {
                    let values = integers(fields, "stat", line)?;
                    // Kernels since 2.6.11 have at least 8 columns; older ones lack the last.
                    if values.len() < 4 {
                        return Err(malformed("stat", line));
                    }
                    let mut modes = [0; MODES.len()];
                    for (mode, value) in modes.iter_mut().zip(&values) {
                        *mode = *value;
                    }
                    ticks = Some(modes);
                }
                "ctxt" => single(out, names::CPU_CONTEXT_SWITCHES, vec![])?,
                "processes" => single(out, names::SYSTEM_PROCESS_CREATED, vec![])?,
                "procs_running" => single(out, names::CPU_TASKS, state_attr("runnable"))?,
                // nr_iowait, not nr_uninterruptible (see the attribute's registration).
                "procs_blocked" => single(out, names::CPU_TASKS, state_attr("iowait"))?,
                "softirq" => {
                    let counts = integers(fields, "stat", line)?;
                    for (kind, count) in SOFTIRQS.iter().zip(counts.iter().skip(1)) {
                        out.add(
                            names::CPU_SOFTIRQS,
                            *count,
                            vec![KeyValue::new(names::SOFTIRQ_TYPE, *kind)],
                        );
                    }
                }
                _ => {}
            }
        }
        let ticks = ticks.ok_or_else(|| anyhow::anyhow!("/proc/stat has no cpu line"))?;
        let per_second = clock_ticks_per_second();
        for (mode, value) in MODES.iter().zip(ticks) {
            out.add(
                names::SYSTEM_CPU_TIME,
                value as f64 / per_second,
                vec![KeyValue::new(names::CPU_MODE, *mode)],
            );
        }
        if let Some(previous) = state.previous {
            // Saturating: a CPU going offline takes its ticks out of the total.
            let deltas: Vec<u64> = ticks
                .iter()
                .zip(previous)
                .map(|(now, before)| now.saturating_sub(before))
                .collect();
            let elapsed: u64 = deltas.iter().sum();
            if elapsed > 0 {
                for (mode, delta) in MODES.iter().zip(deltas) {
                    out.add(
                        names::SYSTEM_CPU_UTILIZATION,
                        delta as f64 / elapsed as f64,
                        vec![KeyValue::new(names::CPU_MODE, *mode)],
                    );
                }
            }
        }
        state.previous = Some(ticks);
        Ok(())
    }
}

fn state_attr(state: &'static str) -> Vec<KeyValue> {
    vec![KeyValue::new(names::TASK_STATE, state)]
}

/// USER_HZ, the unit of `/proc/stat` times (100 on every mainstream architecture).
pub(super) fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        hz if hz > 0 => hz as f64,
        _ => 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::collector_test_support::{collect, collect_fixture, fixture};

    #[test]
    fn fixture_values() {
        let points = collect_fixture(&Cpu, "host-6.18");
        let mode = |m| points.value(names::SYSTEM_CPU_TIME, &[(names::CPU_MODE, m)]);
        assert_eq!(mode("user"), Some(10529.12));
        assert_eq!(mode("system"), Some(1581.47));
        assert_eq!(mode("softirq"), Some(180.56));
        assert_eq!(mode("steal"), Some(1250.02));
        let tasks = |s| points.value(names::CPU_TASKS, &[(names::TASK_STATE, s)]);
        assert_eq!(tasks("runnable"), Some(19.0));
        assert_eq!(tasks("iowait"), Some(0.0));
        assert_eq!(
            points.value(names::CPU_CONTEXT_SWITCHES, &[]),
            Some(8708817.0)
        );
        assert_eq!(
            points.value(names::SYSTEM_PROCESS_CREATED, &[]),
            Some(276235.0)
        );
        let net_rx = points.value(names::CPU_SOFTIRQS, &[(names::SOFTIRQ_TYPE, "NET_RX")]);
        assert_eq!(net_rx, Some(78344396.0));
        assert!(
            points.of(names::SYSTEM_CPU_UTILIZATION).is_empty(),
            "utilisation needs a previous cycle"
        );
    }

    #[test]
    fn utilisation_is_the_share_of_ticks_since_the_previous_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots {
            procfs: dir.path().to_path_buf(),
            ..fixture("host-6.18")
        };
        let write =
            |cpu: &str| std::fs::write(dir.path().join("stat"), format!("{cpu}\n")).unwrap();
        let mut state = CpuState::default();
        write("cpu  100 0 100 800 0 0 0 0 0 0");
        collect(&Cpu, &Config::default(), &roots, &mut state).unwrap();
        write("cpu  400 0 200 1100 100 0 0 0 0 0");
        let points = collect(&Cpu, &Config::default(), &roots, &mut state).unwrap();
        let share = |m| points.value(names::SYSTEM_CPU_UTILIZATION, &[(names::CPU_MODE, m)]);
        assert_eq!(share("user"), Some(0.375));
        assert_eq!(share("system"), Some(0.125));
        assert_eq!(share("idle"), Some(0.375));
        assert_eq!(share("iowait"), Some(0.125));
        assert_eq!(share("steal"), Some(0.0));
    }

    #[test]
    fn old_kernels_with_fewer_columns_and_garbage_is_an_error() {
        let points = collect_fixture(&Cpu, "handmade-old-formats");
        let steal = points.value(names::SYSTEM_CPU_TIME, &[(names::CPU_MODE, "steal")]);
        assert_eq!(steal, Some(0.0));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stat"), "cpu  1 2 x 4\n").unwrap();
        let roots = Roots {
            procfs: dir.path().to_path_buf(),
            ..fixture("host-6.18")
        };
        let err = collect(&Cpu, &Config::default(), &roots, &mut CpuState::default()).unwrap_err();
        assert!(err.to_string().contains("/proc/stat"), "{err}");
    }
}
