//! Kernel cost of the sched_tick and ras programs: nanoseconds per program run, from the
//! kernel's own BPF run-time accounting (`BPF_ENABLE_STATS`, held only while measuring: the
//! same counters as `kernel.bpf_stats_enabled=1`, without changing the sysctl), under a workload
//! that fires them. Prints a Markdown table. Run through `scripts/bench-kernel-cost [SECONDS]`
//! (root).
//!
//! Workload: one thread spinning (its CPU keeps a periodic tick) and one sleeping 50 µs at a
//! time (an hrtimer expiry and two context switches per sleep).
//!
//! - sched_tick runs at every hrtimer expiry on the host and returns at once unless the timer is
//!   the tick. Measured with the default threshold (ticks are on time: the common case) and with
//!   1 ns (every tick recorded with its stack, up to the rate limit of 10 per CPU per second,
//!   beyond which ticks are counted only).
//! - ras: no RAS tracepoint fires without failing hardware, so its program is attached to
//!   `sched:sched_switch` instead: same body (count, rate limit, copy 1 KiB of the trace record
//!   into the ring buffer), run at every context switch. Measured with the default rate limit
//!   (mostly counting) and unlimited (every run copies and submits; the ring buffer is drained).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aya::maps::RingBuf;
use aya::programs::{BtfTracePoint, TracePoint};
use aya::sys::{enable_stats, Stats};
use aya::{Ebpf, EbpfLoader};
use huatuo_ebpf::ras::Source;
use huatuo_ebpf::{sched_tick, EVENTS_MAP, GLOBAL_EVENTS_PER_CPU_PER_SEC, RAS, SCHED_TICK};

/// (run_cnt, run_time_ns) of a program fd, from its fdinfo.
fn run_stats(fd: &impl AsRawFd) -> anyhow::Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    let fields: HashMap<&str, u64> = text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim(), v.trim().parse().ok()?))
        })
        .collect();
    Ok((fields["run_cnt"], fields["run_time_ns"]))
}

fn tick_handler() -> anyhow::Result<u64> {
    let kallsyms = std::fs::read_to_string("/proc/kallsyms")?;
    sched_tick::TICK_HANDLER_SYMBOLS
        .iter()
        .find_map(|wanted| {
            kallsyms.lines().find_map(|line| {
                let mut f = line.split_whitespace();
                let (addr, _, name) = (f.next()?, f.next()?, f.next()?);
                (name == *wanted).then(|| u64::from_str_radix(addr, 16).ok())?
            })
        })
        .context("no tick handler in /proc/kallsyms")
}

/// Runs the workload for `seconds`, draining `ring` meanwhile; returns (runs, ns per run) of the
/// program behind `fd` over that time.
fn measure(
    fd: &impl AsRawFd,
    ring: &mut RingBuf<aya::maps::MapData>,
    seconds: u64,
) -> anyhow::Result<(u64, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = [false, true]
        .into_iter()
        .map(|sleeper| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if sleeper {
                        std::thread::sleep(Duration::from_micros(50));
                    } else {
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    let _stats = enable_stats(Stats::RunTime).context("BPF_ENABLE_STATS (run as root)")?;
    let (runs_before, ns_before) = run_stats(fd)?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        while ring.next().is_some() {}
        std::thread::sleep(Duration::from_millis(10));
    }
    let (runs, ns) = run_stats(fd)?;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    let runs = runs - runs_before;
    Ok((runs, (ns - ns_before) as f64 / runs.max(1) as f64))
}

fn sched_tick_row(seconds: u64, threshold_ns: u64, label: &str) -> anyhow::Result<String> {
    let handler = tick_handler()?;
    let per_cpu = 10u64;
    let mut ebpf = EbpfLoader::new()
        .override_global(sched_tick::GLOBAL_TICK_HANDLER, &handler, true)
        .override_global(sched_tick::GLOBAL_THRESHOLD_NS, &threshold_ns, true)
        .override_global(GLOBAL_EVENTS_PER_CPU_PER_SEC, &per_cpu, true)
        .load(SCHED_TICK)?;
    let btf = aya::Btf::from_sys_fs()?;
    let prog: &mut BtfTracePoint = ebpf
        .program_mut(sched_tick::PROG_BTF)
        .context("program")?
        .try_into()?;
    prog.load(sched_tick::TP_BTF_NAME, &btf)?;
    prog.attach()?;
    let fd = prog.fd()?.as_fd().try_clone_to_owned()?;
    let mut ring = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).context("events")?)?;
    let (runs, ns) = measure(&fd, &mut ring, seconds)?;
    Ok(format!(
        "| sched_tick (tp_btf, timer:hrtimer_expire_entry) | {label} | {runs} | {ns:.0} |"
    ))
}

fn ras_row(seconds: u64, per_cpu: u64, label: &str) -> anyhow::Result<String> {
    let mut ebpf: Ebpf = EbpfLoader::new()
        .override_global(GLOBAL_EVENTS_PER_CPU_PER_SEC, &per_cpu, true)
        .load(RAS)?;
    let prog: &mut TracePoint = ebpf
        .program_mut(Source::Edac.program())
        .context("program")?
        .try_into()?;
    prog.load()?;
    prog.attach("sched", "sched_switch")?;
    let fd = prog.fd()?.as_fd().try_clone_to_owned()?;
    let mut ring = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).context("events")?)?;
    let (runs, ns) = measure(&fd, &mut ring, seconds)?;
    Ok(format!(
        "| ras (tracepoint; stand-in sched:sched_switch) | {label} | {runs} | {ns:.0} |"
    ))
}

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("usage: bench-kernel-cost [SECONDS]")?
        .unwrap_or(10);
    let rows = [
        sched_tick_row(
            seconds,
            10_000_000,
            "threshold 10 ms (default): every hrtimer expiry, ticks on time",
        )?,
        sched_tick_row(
            seconds,
            1,
            "threshold 1 ns: every tick late, stack captured up to 10/CPU/s",
        )?,
        ras_row(
            seconds,
            100u64.div_ceil(aya::util::nr_cpus().map_err(|(_, e)| e)? as u64),
            "100/s limit (default): mostly counted only",
        )?,
        ras_row(seconds, 0, "unlimited: 1 KiB record per run")?,
    ];
    println!("| program | case | runs in {seconds} s | kernel ns per run |");
    println!("|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
