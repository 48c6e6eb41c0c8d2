//! Autotracing benchmark: the always-on cost of the autotracing tracers' sampling, alone and
//! together, on an idle host and with every CPU busy; the kernel cost of waitrate's scheduler
//! programs (BPF run statistics) on an idle host and under CPU contention; the cost of one
//! waitrate capture; the cost of one CPU capture (stack sampling, symbolization, export); and of
//! one iotracer capture of a loop device kept busy by direct reads (block tracepoint programs,
//! export). Prints Markdown tables. Run it through
//! `scripts/bench-autotracing [SECONDS]` (release build, root).

use anyhow::bail;
use huatuo_otel_tests::bench::{bpf_prog_stats, cpu_seconds, BpfStats, ProgramRuns};
use huatuo_otel_tests::cpu::{BurningContainer, CpuContention};
use huatuo_otel_tests::{AgentCommand, OtlpReceiver};
use huatuo_semconv::autotracing as names;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);
const AUTOTRACERS: [&str; 6] = [
    "memburst", "dload", "cpusys", "cpuidle", "iotracer", "waitrate",
];

/// The agent with only `enabled` autotracers, sampling every second.
fn agent(endpoint: &str, enabled: &[&str]) -> anyhow::Result<AgentCommand> {
    let mut command = AgentCommand::otlp_only(endpoint)?.only_tracers(enabled);
    for tracer in AUTOTRACERS {
        let key = format!("HUATUO_TRACERS__{}__INTERVAL_SECS", tracer.to_uppercase());
        command = command.env(key, "1");
    }
    Ok(command)
}

/// Agent CPU milliseconds per second of sampling with `enabled`.
async fn sampling_cost(
    receiver: &OtlpReceiver,
    enabled: &[&str],
    seconds: u64,
) -> anyhow::Result<f64> {
    let mut agent = agent(&receiver.grpc_endpoint(), enabled)?
        .start_tracer(enabled[0])
        .await?;
    // Start-up (loading, first export) is not sampling.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = cpu_seconds(agent.pid())?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu = cpu_seconds(agent.pid())? - before;
    agent.terminate(WAIT).await?;
    Ok(cpu * 1000.0 / seconds as f64)
}

/// Threads keeping every CPU busy in user space until dropped.
struct BusyHost(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl BusyHost {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..std::thread::available_parallelism().map_or(2, |n| n.get()))
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(3).wrapping_add(1));
                    }
                })
            })
            .collect();
        Self(stop, threads)
    }
}

impl Drop for BusyHost {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for thread in self.1.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Runs and kernel time of waitrate's programs over `seconds`: (sched_switch, both wakeups).
async fn waitrate_kernel_cost(
    receiver: &OtlpReceiver,
    seconds: u64,
) -> anyhow::Result<(ProgramRuns, ProgramRuns)> {
    let mut agent = agent(&receiver.grpc_endpoint(), &["waitrate"])?
        .start_tracer("waitrate")
        .await?;
    let pid = agent.pid();
    let _stats = BpfStats::enable()?;
    // The kernel truncates program names to 15 bytes: `waitrate_wakeup` covers both wakeups.
    let read = || -> anyhow::Result<(ProgramRuns, ProgramRuns)> {
        Ok((
            bpf_prog_stats(pid, &["waitrate_switch"])?,
            bpf_prog_stats(pid, &["waitrate_wakeup"])?,
        ))
    };
    let (switch, wakeup) = read()?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (switch_after, wakeup_after) = read()?;
    agent.terminate(WAIT).await?;
    Ok((switch_after.since(switch), wakeup_after.since(wakeup)))
}

/// What one waitrate capture cost.
struct WaitrateCaptureCost {
    /// sched_switch runs while the container burns, without and during the capture.
    before: ProgramRuns,
    during: ProgramRuns,
    competitors: i64,
    agent_cpu_seconds: f64,
}

/// One waitrate capture of `seconds` of a container whose two burners share one CPU, after
/// `seconds` of the same load without a capture (the burners stop after 60 s: keep `seconds`
/// at 20 or less).
async fn waitrate_capture_cost(
    receiver: &OtlpReceiver,
    seconds: u64,
) -> anyhow::Result<WaitrateCaptureCost> {
    let burner = std::env::current_exe()?.with_file_name("cpu-burner");
    let id = "be4c40123456789abcdef0123456789abcdef0123456789abcdef0123456789a";
    let mut container = BurningContainer::start(&burner, "bench-waitrate", id, 2, Some(0))?;
    let mut baseline = agent(&receiver.grpc_endpoint(), &["waitrate"])?
        // Nothing triggers: the same load without a capture.
        .env("HUATUO_TRACERS__WAITRATE__THRESHOLD", "1000000")
        .start_tracer("waitrate")
        .await?;
    container.burn();
    let _stats = BpfStats::enable()?;
    let pid = baseline.pid();
    let start = bpf_prog_stats(pid, &["waitrate_switch"])?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let before = bpf_prog_stats(pid, &["waitrate_switch"])?.since(start);
    baseline.terminate(WAIT).await?;

    let mut capturing = agent(&receiver.grpc_endpoint(), &["waitrate"])?
        .env("HUATUO_TRACERS__WAITRATE__THRESHOLD", "0.2")
        .env(
            "HUATUO_TRACERS__WAITRATE__CAPTURE_SECS",
            seconds.to_string(),
        )
        .start_tracer("waitrate")
        .await?;
    let pid = capturing.pid();
    capturing.wait_for_stderr("capturing", WAIT).await?;
    let (start, cpu) = (
        bpf_prog_stats(pid, &["waitrate_switch"])?,
        cpu_seconds(pid)?,
    );
    let span = loop {
        let captured = receiver.received().spans().into_iter().find(|s| {
            s.name == names::WAITRATE_CAPTURE
                && s.attr_str(huatuo_semconv::container::CONTAINER_ID) == Some(id)
        });
        if let Some(span) = captured {
            break span;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let during = bpf_prog_stats(pid, &["waitrate_switch"])?.since(start);
    let agent_cpu_seconds = cpu_seconds(pid)? - cpu;
    capturing.terminate(WAIT).await?;
    drop(container);
    Ok(WaitrateCaptureCost {
        before,
        during,
        competitors: span.attr_i64(names::COMPETITORS).unwrap_or(0),
        agent_cpu_seconds,
    })
}

/// What one capture cost.
struct CaptureCost {
    samples: u64,
    kernel_ns_per_sample: f64,
    agent_cpu_seconds: f64,
    folded_bytes: usize,
}

/// One cpusys capture of `seconds`, forced by thresholds nothing stays under.
async fn capture_cost(receiver: &OtlpReceiver, seconds: u64) -> anyhow::Result<CaptureCost> {
    let mut agent = agent(&receiver.grpc_endpoint(), &["cpusys"])?
        .env("HUATUO_TRACERS__CPUSYS__SYS_PERCENT_THRESHOLD", "-1")
        .env(
            "HUATUO_TRACERS__CPUSYS__SYS_PERCENT_DELTA_THRESHOLD",
            "-101",
        )
        .env("HUATUO_TRACERS__CPUSYS__CAPTURE_SECS", seconds.to_string())
        .start_tracer("cpusys")
        .await?;
    let pid = agent.pid();
    let before = cpu_seconds(pid)?;
    let _stats = BpfStats::enable()?;
    // The sampler is the agent's only program and lives only during the capture: keep the last
    // reading taken while it was loaded.
    let mut program = ProgramRuns::default();
    let profile = loop {
        let received = receiver.received();
        if let Some(profile) = received.logs_with_event(names::CPU_PROFILE).first() {
            break profile.clone();
        }
        let now = bpf_prog_stats(pid, &[])?;
        if now.runs > 0 {
            program = now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let agent_cpu_seconds = cpu_seconds(pid)? - before;
    agent.terminate(WAIT).await?;
    Ok(CaptureCost {
        samples: profile.attr_i64(names::PROFILE_SAMPLES).unwrap_or(0) as u64,
        kernel_ns_per_sample: program.nanos as f64 / program.runs.max(1) as f64,
        agent_cpu_seconds,
        folded_bytes: profile
            .attr_str(names::PROFILE_FOLDED)
            .unwrap_or_default()
            .len(),
    })
}

/// What one iotracer capture cost.
struct IoCaptureCost {
    requests: u64,
    program: ProgramRuns,
    agent_cpu_seconds: f64,
}

/// One iotracer capture of `seconds` of a fresh loop device read with O_DIRECT by a thread of
/// this process, forced by a utilisation threshold of 1%.
async fn io_capture_cost(receiver: &OtlpReceiver, seconds: u64) -> anyhow::Result<IoCaptureCost> {
    let disk = huatuo_otel_tests::loopdev::LoopDevice::create(256)?;
    let mut agent = agent(&receiver.grpc_endpoint(), &["iotracer"])?
        .env(
            "HUATUO_TRACERS__IOTRACER__INCLUDE_DEVICES",
            format!("[\"^{}$\"]", disk.name()),
        )
        .env("HUATUO_TRACERS__IOTRACER__UTIL_PERCENT_THRESHOLD", "1")
        .env(
            "HUATUO_TRACERS__IOTRACER__CAPTURE_SECS",
            seconds.to_string(),
        )
        .start_tracer("iotracer")
        .await?;
    let pid = agent.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, path) = (stop.clone(), disk.path().to_path_buf());
        std::thread::spawn(move || -> anyhow::Result<()> {
            while !stop.load(Ordering::Relaxed) {
                huatuo_otel_tests::loopdev::read_direct(&path, 1000)?;
            }
            Ok(())
        })
    };
    let before = cpu_seconds(pid)?;
    let _stats = BpfStats::enable()?;
    // The programs live only during the capture: keep the last reading taken while loaded.
    let mut program = ProgramRuns::default();
    let span = loop {
        let received = receiver.received();
        if let Some(span) = received
            .spans()
            .into_iter()
            .find(|s| s.name == names::IOTRACER_CAPTURE)
        {
            break span;
        }
        let now = bpf_prog_stats(pid, &["iotracer_"])?;
        if now.runs > 0 {
            program = now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let agent_cpu_seconds = cpu_seconds(pid)? - before;
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("reader thread")?;
    agent.terminate(WAIT).await?;
    Ok(IoCaptureCost {
        requests: span.attr_i64(names::IOTRACER_REQUESTS).unwrap_or(0) as u64,
        program,
        agent_cpu_seconds,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20);
    if seconds == 0 {
        bail!("usage: bench-autotracing [SECONDS] (seconds of sampling per row, positive)");
    }
    let receiver = OtlpReceiver::start().await?;

    println!("| autotracing, sampling every 1 s | idle host: agent CPU ms/s | busy host: agent CPU ms/s |");
    println!("|---|---|---|");
    let mut rows: Vec<(String, Vec<&str>)> = AUTOTRACERS
        .iter()
        .map(|t| (t.to_string(), vec![*t]))
        .collect();
    rows.push((format!("all {}", AUTOTRACERS.len()), AUTOTRACERS.to_vec()));
    for (label, enabled) in rows {
        let idle = sampling_cost(&receiver, &enabled, seconds).await?;
        let busy = {
            let _busy = BusyHost::start();
            sampling_cost(&receiver, &enabled, seconds).await?
        };
        println!("| {label} | {idle:.2} | {busy:.2} |");
    }

    let idle = waitrate_kernel_cost(&receiver, seconds).await?;
    let busy = {
        let _contention = CpuContention::start();
        waitrate_kernel_cost(&receiver, seconds).await?
    };
    println!();
    println!("| waitrate, always on (bpf_stats on) | idle host | CPU contention (3 yielding spinners per CPU) |");
    println!("|---|---|---|");
    let per_second = |runs: ProgramRuns| runs.runs as f64 / seconds as f64;
    println!(
        "| sched_switch runs per second | {:.0} | {:.0} |",
        per_second(idle.0),
        per_second(busy.0)
    );
    println!(
        "| kernel ns per sched_switch run | {:.0} | {:.0} |",
        idle.0.ns_per_run(),
        busy.0.ns_per_run()
    );
    println!(
        "| sched_wakeup(_new) runs per second | {:.0} | {:.0} |",
        per_second(idle.1),
        per_second(busy.1)
    );
    println!(
        "| kernel ns per wakeup run | {:.0} | {:.0} |",
        idle.1.ns_per_run(),
        busy.1.ns_per_run()
    );

    let capture_secs = seconds.min(20);
    let cost = waitrate_capture_cost(&receiver, capture_secs).await?;
    println!();
    println!(
        "| one waitrate capture ({capture_secs} s; a container's two burners on one CPU) | value |"
    );
    println!("|---|---|");
    println!(
        "| kernel ns per sched_switch run, same load without a capture | {:.0} |",
        cost.before.ns_per_run()
    );
    println!(
        "| kernel ns per sched_switch run during the capture | {:.0} |",
        cost.during.ns_per_run()
    );
    println!(
        "| sched_switch runs per second during the capture | {:.0} |",
        cost.during.runs as f64 / capture_secs as f64
    );
    println!("| competitor tasks recorded | {} |", cost.competitors);
    println!(
        "| agent CPU s for the capture (map setup and reads, export) | {:.2} |",
        cost.agent_cpu_seconds
    );

    let capture_secs = 5;
    let cost = capture_cost(&receiver, capture_secs).await?;
    println!();
    println!("| one cpusys capture ({capture_secs} s at 99 Hz on every CPU) | value |");
    println!("|---|---|");
    println!("| stack samples | {} |", cost.samples);
    println!(
        "| kernel ns per sample (bpf_stats on) | {:.0} |",
        cost.kernel_ns_per_sample
    );
    println!(
        "| agent CPU s for the capture (sampling, symbolization, export) | {:.2} |",
        cost.agent_cpu_seconds
    );
    println!("| folded stacks bytes | {} |", cost.folded_bytes);

    let io = io_capture_cost(&receiver, capture_secs).await?;
    println!();
    println!(
        "| one iotracer capture ({capture_secs} s, loop device under O_DIRECT reads) | value |"
    );
    println!("|---|---|");
    println!("| requests counted | {} |", io.requests);
    println!("| block tracepoint program runs | {} |", io.program.runs);
    println!(
        "| kernel ns per run (bpf_stats on) | {:.0} |",
        io.program.ns_per_run()
    );
    println!(
        "| agent CPU s for the capture (D-state scans, export) | {:.2} |",
        io.agent_cpu_seconds
    );
    receiver.stop().await;
    Ok(())
}
