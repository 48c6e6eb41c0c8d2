//! Drop-storm benchmark: N datagrams to a closed UDP port on 127.0.0.1 as fast as one thread can
//! send, with and without the agent; prints a Markdown table. Run it through
//! `scripts/bench-dropwatch [MILLIONS]` (release build, root).

use anyhow::bail;
use huatuo_otel_tests::bench::{bpf_prog_stats, cpu_seconds, peak_rss_mib, BpfStats};
use huatuo_otel_tests::udp_drops::closed_udp_port;
use huatuo_otel_tests::{AgentCommand, OtlpReceiver};
use huatuo_semconv::{agent as agent_names, net};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(120);

/// Chunks a storm is timed in; the rate reported is the best chunk's, which filters out the
/// moments a shared (virtual) machine takes the CPU away from the sender.
const CHUNKS: u64 = 20;

/// Sends `count` datagrams and returns the sender's best sustained rate (datagrams/s).
fn send_storm(port: u16, count: u64) -> anyhow::Result<f64> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let payload = [0u8; 16];
    let chunk = (count / CHUNKS).max(1);
    let mut best = 0f64;
    let mut sent = 0;
    while sent < count {
        let n = chunk.min(count - sent);
        let start = Instant::now();
        for _ in 0..n {
            let _ = socket.send_to(&payload, ("127.0.0.1", port));
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
        sent += n;
    }
    Ok(best)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let millions: f64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1.0);
    let count = (millions * 1e6) as u64;
    if count == 0 {
        bail!("usage: bench-dropwatch [MILLIONS] (a positive number)");
    }

    let baseline_before = send_storm(closed_udp_port()?, count)?;

    let receiver = OtlpReceiver::start().await?;
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())?
        .start_tracer("dropwatch")
        .await?;
    let pid = agent.pid();
    let drops = [
        (net::SKB_DROP_REASON, "NO_SOCKET"),
        (net::NETWORK_TRANSPORT, "udp"),
        (net::NETWORK_TYPE, "ipv4"),
    ];
    let before = receiver
        .wait_for(WAIT, "first metric export", |r| !r.metrics.is_empty())
        .await?
        .latest_sum(net::SKB_DROPS, &drops)
        .unwrap_or(0.0);
    let cpu_before = cpu_seconds(pid)?;
    let runs_before = bpf_prog_stats(pid, &[])?;

    // Two storms: throughput is measured with kernel BPF accounting off (it adds two clock
    // reads per run), the cost per run with it on.
    let port = closed_udp_port()?;
    let with_agent = send_storm(port, count)?;
    let kernel = {
        let _stats = BpfStats::enable()?;
        send_storm(port, count)?;
        bpf_prog_stats(pid, &[])?.since(runs_before)
    };
    let sent = 2 * count;
    let received = receiver
        .wait_for(WAIT, "the counter to reach the datagrams sent", |r| {
            r.latest_sum(net::SKB_DROPS, &drops).unwrap_or(0.0) - before >= sent as f64
        })
        .await?;
    let cpu = cpu_seconds(pid)? - cpu_before;
    let rss = peak_rss_mib(pid)?;
    agent.terminate(WAIT).await?;
    let received = received.clone();
    let counted = received.latest_sum(net::SKB_DROPS, &drops).unwrap_or(0.0) - before;
    let port_text = port.to_string();
    let exported = received
        .logs_with_event(net::SKB_DROP)
        .iter()
        .filter(|l| l.matches(&[(net::DESTINATION_PORT, &port_text)]))
        .count();
    let suppressed = received
        .latest_sum(
            agent_names::TRACER_RECORDS_DROPPED,
            &[
                (agent_names::TRACER_NAME, "dropwatch"),
                (agent_names::DROP_CAUSE, "rate_limited"),
            ],
        )
        .unwrap_or(0.0);
    receiver.stop().await;

    let baseline_after = send_storm(closed_udp_port()?, count)?;
    let baseline = (baseline_before + baseline_after) / 2.0;
    let (runs, ns_per_run) = (kernel.runs, kernel.ns_per_run());
    let cpu_per_million = cpu / (sent as f64 / 1e6);
    let ratio = with_agent / baseline;

    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| datagrams sent (two storms of {count}) | {sent} | |");
    println!(
        "| drops counted by the agent | {counted} | = sent ({}) |",
        if counted == sent as f64 {
            "ok"
        } else {
            "MISMATCH"
        }
    );
    println!("| log records exported | {exported} | rate limit 100/s |");
    println!("| suppressed (rate limit, whole run) | {suppressed} | counted |");
    println!("| BPF program runs (second storm, bpf_stats on) | {runs} | |");
    println!("| kernel ns per program run | {ns_per_run:.1} | <= 100 |");
    println!("| agent CPU s per million drops | {cpu_per_million:.3} | <= 0.5 |");
    println!("| agent peak RSS MiB | {rss:.1} | <= 40 |");
    println!("| sender datagrams/s without agent (best of {CHUNKS} chunks) | {baseline:.0} | |");
    println!("| sender datagrams/s with agent (best of {CHUNKS} chunks) | {with_agent:.0} | |");
    println!(
        "| throughput ratio with/without | {:.1}% | >= 97% |",
        ratio * 100.0
    );
    Ok(())
}
