//! Kernel cost of the BPF metric tracers (runqlat, iolatency) under load: the agent runs with
//! only them and `agent.bpf_stats` on, the host gets CPU contention (runqlat) and direct-IO
//! reads on a loop device (iolatency), and the agent's own `huatuo.bpf.program.*` metrics give
//! the kernel time per program run. Prints a Markdown table. Root.

use huatuo_otel_tests::cpu::CpuContention;
use huatuo_otel_tests::loopdev::LoopDevice;
use huatuo_otel_tests::{AgentCommand, OtlpReceiver, Received};
use huatuo_semconv::agent as names;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
const TRACERS: [&str; 2] = ["runqlat", "iolatency"];
const PROGRAMS: [(&str, &str); 5] = [
    ("runqlat", "runqlat_wakeup_btf"),
    ("runqlat", "runqlat_switch_btf"),
    ("iolatency", "iolat_insert_btf"),
    ("iolatency", "iolat_issue_btf"),
    ("iolatency", "iolat_complete_btf"),
];

fn program_stats(received: &Received, tracer: &str, program: &str) -> (f64, f64) {
    let filter = [
        (names::TRACER_NAME, tracer),
        (names::BPF_PROGRAM_NAME, program),
    ];
    (
        received
            .latest_sum(names::BPF_PROGRAM_RUNS, &filter)
            .unwrap_or(0.0),
        received
            .latest_sum(names::BPF_PROGRAM_RUN_TIME, &filter)
            .unwrap_or(0.0),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let reads: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let disk = LoopDevice::create(64)?;
    let receiver = OtlpReceiver::start().await?;
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())?
        .only_tracers(&TRACERS)
        .env("HUATUO_AGENT__BPF_STATS", "true")
        .start_tracer("iolatency")
        .await?;
    agent
        .wait_for_stderr("tracers::runqlat: attached", WAIT)
        .await?;
    let before = receiver
        .wait_for(WAIT, "first program statistics", |r| {
            r.latest_sum(names::BPF_PROGRAM_RUNS, &[]).is_some()
        })
        .await?;

    let started = Instant::now();
    let contention = CpuContention::start();
    tokio::task::block_in_place(|| disk.read_direct(reads))?;
    drop(contention);
    let elapsed = started.elapsed();
    // Two more exports, so the last one covers the whole load.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = receiver.received();
    agent.terminate(WAIT).await?;

    println!("load: {reads} direct 4 KiB reads on a loop device with 3 spinning threads per CPU, {:.1} s", elapsed.as_secs_f64());
    println!();
    println!("| tracer | program | runs | kernel ns per run |");
    println!("|---|---|---|---|");
    for (tracer, program) in PROGRAMS {
        let (runs0, time0) = program_stats(&before, tracer, program);
        let (runs1, time1) = program_stats(&after, tracer, program);
        let runs = runs1 - runs0;
        let ns = if runs > 0.0 {
            (time1 - time0) * 1e9 / runs
        } else {
            f64::NAN
        };
        println!("| {tracer} | {program} | {runs:.0} | {ns:.0} |");
    }
    Ok(())
}
