//! What the benchmarks measure about the agent process: CPU time, peak memory, and the kernel's
//! run-time statistics of the BPF programs it holds (with `kernel.bpf_stats_enabled` turned on
//! for the measurement and restored).

use anyhow::Context as _;
use std::collections::HashMap;

const BPF_STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command; utime and stime are the 12th and 13th of those.
    let rest = stat.rsplit_once(')').context("malformed /proc/pid/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

pub fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    status_mib(pid, "VmHWM:")
}

/// Resident memory now, where [`peak_rss_mib`] is the high-water mark.
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    status_mib(pid, "VmRSS:")
}

fn status_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib / 1024.0)
}

/// Runs and nanoseconds spent in BPF programs, as the kernel counts them with bpf_stats on.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProgramRuns {
    pub runs: u64,
    pub nanos: u64,
}

impl ProgramRuns {
    /// What ran between `earlier` and `self`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            runs: self.runs - earlier.runs,
            nanos: self.nanos - earlier.nanos,
        }
    }

    pub fn ns_per_run(self) -> f64 {
        if self.runs == 0 {
            return f64::NAN;
        }
        self.nanos as f64 / self.runs as f64
    }
}

/// Runs summed over the BPF programs the process holds whose name (the kernel keeps its first
/// 15 bytes) starts with one of `prefixes`; every program when `prefixes` is empty.
pub fn bpf_prog_stats(pid: u32, prefixes: &[&str]) -> anyhow::Result<ProgramRuns> {
    // The agent may hold several fds of one program (it keeps one for its own statistics):
    // count each program once, by id.
    let mut programs = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))? {
        let Ok(info) = std::fs::read_to_string(entry?.path()) else {
            continue;
        };
        if !info.contains("prog_type:") {
            continue;
        }
        let field = |name: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let runs = ProgramRuns {
            runs: field("run_cnt:"),
            nanos: field("run_time_ns:"),
        };
        programs.insert(field("prog_id:") as u32, runs);
    }
    if !prefixes.is_empty() {
        let names = program_names()?;
        programs.retain(|id, _| {
            names.get(id).is_some_and(|name| {
                prefixes
                    .iter()
                    .any(|p| name.starts_with(&p[..p.len().min(15)]))
            })
        });
    }
    Ok(programs
        .values()
        .fold(ProgramRuns::default(), |total, p| ProgramRuns {
            runs: total.runs + p.runs,
            nanos: total.nanos + p.nanos,
        }))
}

/// Every loaded BPF program's name, by id.
fn program_names() -> anyhow::Result<HashMap<u32, String>> {
    let mut names = HashMap::new();
    for program in aya::programs::loaded_programs() {
        let program = program.context("listing loaded BPF programs")?;
        names.insert(
            program.id(),
            program.name_as_str().unwrap_or_default().to_owned(),
        );
    }
    Ok(names)
}

/// Turns on kernel BPF run-time accounting for the benchmark and restores the previous value.
pub struct BpfStats(String);

impl BpfStats {
    pub fn enable() -> anyhow::Result<Self> {
        let previous = std::fs::read_to_string(BPF_STATS_SYSCTL)
            .with_context(|| format!("reading {BPF_STATS_SYSCTL} (run as root)"))?;
        std::fs::write(BPF_STATS_SYSCTL, "1")?;
        Ok(Self(previous.trim().to_string()))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(BPF_STATS_SYSCTL, &self.0);
    }
}

/// (run_cnt, run_time_ns) of every loaded BPF program whose name starts with one of `names`
/// (the kernel keeps 15 characters of a name), by the name given, from `bpftool prog show`:
/// the cost of one tracer's programs, whatever else the agent runs.
pub fn bpf_program_runs(names: &[&str]) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let output = std::process::Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()
        .context("running bpftool (scripts/install-deps installs it)")?;
    anyhow::ensure!(output.status.success(), "bpftool prog show failed");
    let programs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)?;
    let mut runs: Vec<(String, u64, u64)> = names.iter().map(|n| (n.to_string(), 0, 0)).collect();
    for program in &programs {
        let Some(loaded) = program["name"].as_str() else {
            continue;
        };
        let Some(entry) = runs
            .iter_mut()
            .find(|(name, _, _)| name.starts_with(loaded) && loaded.len() >= name.len().min(15))
        else {
            continue;
        };
        entry.1 += program["run_cnt"].as_u64().unwrap_or(0);
        entry.2 += program["run_time_ns"].as_u64().unwrap_or(0);
    }
    Ok(runs)
}
