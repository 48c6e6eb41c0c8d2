//! Cost of the softirq, memreclaim (reclaims, then compactions) and tcp_retransmit tracers under
//! workloads that fire them:
//! kernel ns per program run (`kernel.bpf_stats_enabled` on for the run, restored after) and, for
//! softirq, the agent CPU time spent folding the in-kernel histogram into the exported one. Prints
//! a Markdown table. Run it through `scripts/bench-tracers [ROUND_TRIPS]` (release build, root).

use anyhow::{bail, Context as _};
use huatuo_otel_tests::bench::{bpf_prog_stats, cpu_seconds, BpfStats, ProgramRuns};
use huatuo_otel_tests::memcg::MemoryCgroup;
use huatuo_otel_tests::netns::NetNs;
use huatuo_otel_tests::{AgentCommand, AgentProcess, OtlpReceiver, Received};
use huatuo_semconv::{memory, net, sched};
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(120);
/// Connections whose every segment after the SYN is dropped: each one retransmits its data and
/// the server its SYN-ACK with exponential back-off for as long as the workload lasts.
const LOSSY_CONNECTIONS: usize = 100;
const RETRANSMIT_WORKLOAD: Duration = Duration::from_secs(10);
const NET_RX: [(&str, &str); 1] = [(sched::SOFTIRQ_VECTOR, "NET_RX")];
const MEMCG: [(&str, &str); 1] = [(memory::MEMORY_RECLAIM_KIND, "memcg")];
const MANUAL: [(&str, &str); 1] = [(memory::MEMORY_COMPACTION_KIND, "manual")];
/// Writes to `vm.compact_memory`: each compacts every populated zone.
const COMPACTIONS: usize = 20;

/// The agent with only `tracer` running, once it has attached and exported metrics once.
async fn agent_with(receiver: &OtlpReceiver, tracer: &str) -> anyhow::Result<AgentProcess> {
    let agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())?
        .only_tracers(&[tracer])
        .start_tracer(tracer)
        .await?;
    receiver
        .wait_for(WAIT, "first metric export", |r| !r.metrics.is_empty())
        .await?;
    Ok(agent)
}

struct Measured {
    kernel: ProgramRuns,
    /// Agent CPU seconds during the workload, minus as long a time idle.
    agent_cpu: f64,
    /// What the workload added to the tracer's histogram or counter.
    observations: u64,
}

/// Runs `workload` with bpf_stats on; `observed` reads the histogram count or counter total from
/// the exports.
async fn measure(
    receiver: &OtlpReceiver,
    agent: &AgentProcess,
    programs: &[&str],
    observed: fn(&Received) -> u64,
    workload: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Measured> {
    let pid = agent.pid();
    let before = observed(&receiver.received());
    let idle_start = Instant::now();
    let idle_cpu = cpu_seconds(pid)?;
    let stats = BpfStats::enable()?;
    let runs_before = bpf_prog_stats(pid, programs)?;
    let cpu_before = cpu_seconds(pid)?;
    let idle_cpu = cpu_before - idle_cpu;
    let idle = idle_start.elapsed();
    let start = Instant::now();
    tokio::task::block_in_place(workload)?;
    let elapsed = start.elapsed();
    let kernel = bpf_prog_stats(pid, programs)?.since(runs_before);
    drop(stats);
    // Two folds and an export after the workload: everything it caused is in the histogram.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = cpu_seconds(pid)? - cpu_before;
    let observations = observed(&receiver.received()) - before;
    let idle_rate = if idle.is_zero() {
        0.0
    } else {
        idle_cpu / idle.as_secs_f64()
    };
    let waited = elapsed + Duration::from_secs(3);
    Ok(Measured {
        kernel,
        agent_cpu: (cpu - idle_rate * waited.as_secs_f64()).max(0.0),
        observations,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let round_trips: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("usage: bench-tracers [ROUND_TRIPS]")?
        .unwrap_or(200_000);
    if round_trips == 0 {
        bail!("usage: bench-tracers [ROUND_TRIPS] (a positive number)");
    }

    let receiver = OtlpReceiver::start().await?;
    let mut agent = agent_with(&receiver, "softirq").await?;
    // An idle second first, so the agent's own background CPU can be taken out.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ns = NetNs::create("bench-softirq")?;
    let softirq = measure(
        &receiver,
        &agent,
        &["softirq_"],
        |r| {
            r.histogram_count(sched::SOFTIRQ_LATENCY, &NET_RX)
                .unwrap_or(0)
        },
        || ns.udp_round_trips(round_trips),
    )
    .await?;
    drop(ns);
    agent.terminate(WAIT).await?;
    receiver.stop().await;

    let receiver = OtlpReceiver::start().await?;
    let mut agent = agent_with(&receiver, "memreclaim").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let memreclaim = measure(
        &receiver,
        &agent,
        &["direct_", "memcg_"],
        |r| {
            r.histogram_count(memory::MEMORY_RECLAIM_DURATION, &MEMCG)
                .unwrap_or(0)
        },
        || {
            let cgroup = MemoryCgroup::create("bench-memreclaim", 32 << 20)?;
            for _ in 0..5 {
                let mut hog = cgroup.spawn_hog(128 << 20, 500)?;
                hog.wait_killed(WAIT)?;
            }
            Ok(())
        },
    )
    .await?;
    let compaction = measure(
        &receiver,
        &agent,
        &["compaction_"],
        |r| {
            r.histogram_count(memory::MEMORY_COMPACTION_DURATION, &MANUAL)
                .unwrap_or(0)
        },
        || {
            for _ in 0..COMPACTIONS {
                std::fs::write("/proc/sys/vm/compact_memory", "1")?;
            }
            Ok(())
        },
    )
    .await?;
    agent.terminate(WAIT).await?;
    receiver.stop().await;

    let receiver = OtlpReceiver::start().await?;
    let mut agent = agent_with(&receiver, "tcp_retransmit").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ns = NetNs::create("bench-retransmit")?;
    let retransmit = measure(
        &receiver,
        &agent,
        &["tcp_retransmit_"],
        |r| r.latest_total(net::TCP_RETRANSMITS, &[]) as u64,
        || {
            let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let mut connections = (0..LOSSY_CONNECTIONS)
                .map(|_| ns.lossy_connection(localhost, localhost))
                .collect::<anyhow::Result<Vec<_>>>()?;
            for connection in &mut connections {
                connection.client.write_all(b"retransmit me")?;
            }
            std::thread::sleep(RETRANSMIT_WORKLOAD);
            Ok(())
        },
    )
    .await?;
    drop(ns);
    agent.terminate(WAIT).await?;
    receiver.stop().await;

    let fold_ns = softirq.agent_cpu * 1e9 / softirq.observations.max(1) as f64;
    println!("| measure | value |");
    println!("|---|---|");
    println!("| softirq: UDP round trips over a netns loopback | {round_trips} |");
    println!(
        "| softirq: program runs (raise + entry, bpf_stats on) | {} |",
        softirq.kernel.runs
    );
    println!(
        "| softirq: kernel ns per program run | {:.1} |",
        softirq.kernel.ns_per_run()
    );
    println!(
        "| softirq: NET_RX waits folded into the histogram | {} |",
        softirq.observations
    );
    println!(
        "| softirq: agent CPU s (over idle) | {:.3} |",
        softirq.agent_cpu
    );
    println!("| softirq: agent CPU ns per wait folded | {fold_ns:.0} |");
    println!(
        "| memreclaim: memcg reclaims (5 processes OOM-killed in a 32 MiB cgroup) | {} |",
        memreclaim.observations
    );
    println!(
        "| memreclaim: program runs (begin + end, bpf_stats on) | {} |",
        memreclaim.kernel.runs
    );
    println!(
        "| memreclaim: kernel ns per program run | {:.1} |",
        memreclaim.kernel.ns_per_run()
    );
    println!(
        "| memreclaim: zone compactions ({COMPACTIONS} writes to vm.compact_memory) | {} |",
        compaction.observations
    );
    println!(
        "| memreclaim: compaction program runs (begin + end, bpf_stats on) | {} |",
        compaction.kernel.runs
    );
    println!(
        "| memreclaim: kernel ns per compaction program run | {:.1} |",
        compaction.kernel.ns_per_run()
    );
    println!(
        "| tcp_retransmit: retransmits counted ({LOSSY_CONNECTIONS} lossy connections, {} s) | {} |",
        RETRANSMIT_WORKLOAD.as_secs(),
        retransmit.observations
    );
    println!(
        "| tcp_retransmit: program runs (bpf_stats on) | {} |",
        retransmit.kernel.runs
    );
    println!(
        "| tcp_retransmit: kernel ns per program run | {:.1} |",
        retransmit.kernel.ns_per_run()
    );
    Ok(())
}
