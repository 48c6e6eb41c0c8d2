//! Receive-latency benchmark: a TCP stream over 127.0.0.1 in 1 KiB writes without Nagle (small
//! packets, so the programs run often), with and without the agent;
//! prints a Markdown table with the kernel's cost per run of each netrecvlat program. Run it
//! through `scripts/bench-netrecvlat [SECONDS]` (release build, root).

use anyhow::bail;
use huatuo_otel_tests::bench::{bpf_program_runs, cpu_seconds, BpfStats};
use huatuo_otel_tests::{AgentCommand, OtlpReceiver};
use huatuo_semconv::net;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(120);
const WRITE: usize = 1024;
/// The tp_btf programs the agent attaches on this kernel (`huatuo_ebpf::netrecvlat::HOOKS`).
const PROGRAMS: [&str; 3] = [
    "netif_receive_skb_btf",
    "tcp_probe_btf",
    "skb_copy_datagram_iovec_btf",
];

/// Writes for `duration` and returns the writes per second the reader received.
fn stream(duration: Duration) -> anyhow::Result<f64> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    client.set_nodelay(true)?;
    let (mut server, _) = listener.accept()?;
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        while let Ok(n) = server.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let payload = [0u8; WRITE];
    let start = Instant::now();
    while start.elapsed() < duration {
        client.write_all(&payload)?;
    }
    drop(client);
    let received = reader.join().expect("reader thread");
    Ok(received as f64 / WRITE as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5.0);
    if seconds <= 0.0 {
        bail!("usage: bench-netrecvlat [SECONDS] (a positive number)");
    }
    let duration = Duration::from_secs_f64(seconds);

    let baseline_before = stream(duration)?;

    let receiver = OtlpReceiver::start().await?;
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())?
        .start_tracer("netrecvlat")
        .await?;
    let pid = agent.pid();
    receiver
        .wait_for(WAIT, "first metric export", |r| !r.metrics.is_empty())
        .await?;

    // Throughput with kernel BPF accounting off (it adds two clock reads per run), the cost per
    // run with it on.
    let with_agent = stream(duration)?;
    let cpu_before = cpu_seconds(pid)?;
    let runs = {
        let _stats = BpfStats::enable()?;
        let before = bpf_program_runs(&PROGRAMS)?;
        stream(duration)?;
        let after = bpf_program_runs(&PROGRAMS)?;
        let runs: Vec<(String, u64, u64)> = after
            .into_iter()
            .zip(before)
            .map(|((name, runs, nanos), (_, r0, n0))| (name, runs - r0, nanos - n0))
            .collect();
        runs
    };
    let cpu = cpu_seconds(pid)? - cpu_before;
    let received = receiver
        .wait_for(WAIT, "a histogram export", |r| {
            r.histogram_count(net::NET_RX_LATENCY_DURATION, &[])
                .is_some()
        })
        .await?;
    agent.terminate(WAIT).await?;
    let events = received.logs_with_event(net::NET_RX_LATENCY).len();
    receiver.stop().await;
    let baseline_after = stream(duration)?;
    let baseline = (baseline_before + baseline_after) / 2.0;

    println!("| measure | value |");
    println!("|---|---|");
    for (name, runs, nanos) in &runs {
        let per_run = if *runs > 0 {
            *nanos as f64 / *runs as f64
        } else {
            f64::NAN
        };
        println!("| `{name}`: runs, kernel ns per run (bpf_stats on) | {runs}, {per_run:.1} |");
    }
    // Every packet entering the stack runs the netif program once; the TCP and copy programs run
    // for those packets (the copy about once per read, whatever the packets merged into).
    let total_nanos: u64 = runs.iter().map(|(_, _, n)| n).sum();
    let packets = runs.first().map_or(0, |(_, r, _)| *r);
    println!(
        "| kernel ns per received packet, all stages | {:.1} |",
        total_nanos as f64 / packets.max(1) as f64
    );
    println!(
        "| agent CPU s per second of stream (bpf_stats on) | {:.3} |",
        cpu / seconds
    );
    println!("| events exported (default thresholds) | {events} |");
    println!("| writes/s without agent | {baseline:.0} |");
    println!("| writes/s with agent | {with_agent:.0} |");
    println!(
        "| throughput ratio with/without | {:.1}% |",
        with_agent / baseline * 100.0
    );
    Ok(())
}
