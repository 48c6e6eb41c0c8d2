//! What the benchmarks measure of the agent process: CPU time, peak memory, and the run count
//! and run time of its BPF programs (with kernel BPF statistics turned on for the run).

use anyhow::Context;

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
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib / 1024.0)
}

/// (run_cnt, run_time_ns) summed over the BPF programs the process holds, from fdinfo.
pub fn bpf_prog_stats(pid: u32) -> anyhow::Result<(u64, u64)> {
    // The agent may hold several fds of one program (it keeps one for its own statistics):
    // count each program once, by id.
    let mut programs = std::collections::HashMap::new();
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
        programs.insert(
            field("prog_id:"),
            (field("run_cnt:"), field("run_time_ns:")),
        );
    }
    Ok(programs
        .values()
        .fold((0, 0), |(runs, nanos), (r, n)| (runs + r, nanos + n)))
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
