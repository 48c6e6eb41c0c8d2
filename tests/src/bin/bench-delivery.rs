//! Delivery benchmark: OTLP export throughput of the agent (log records per second per CPU core,
//! to the in-process receiver, gRPC and HTTP/protobuf), then the agent's memory and spool while
//! the collector is down for a while under a steady event rate, and the replay once it is back.
//! Kernel packet drops (dropwatch) are the events. Run it through
//! `scripts/bench-delivery [OUTAGE_SECS] [RATE]` (release build, root); prints Markdown tables.

use anyhow::{bail, Context as _};
use huatuo_otel_tests::bench::{cpu_seconds, peak_rss_mib, rss_mib};
use huatuo_otel_tests::udp_drops::closed_udp_port;
use huatuo_otel_tests::{AgentCommand, AgentProcess, OtlpReceiver, Received, SPOOL_DIR_ENV};
use huatuo_semconv::{agent as agent_names, net};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(120);
/// Events per second and seconds of the throughput storms: far above the default rate limit,
/// within what the ring buffer and the SDK queue below absorb.
const STORM_RATE: u64 = 20_000;
const STORM_SECS: u64 = 10;

fn agent(endpoint: &str, protocol: &str, spool: &Path) -> anyhow::Result<AgentCommand> {
    Ok(AgentCommand::otlp_only(endpoint)?
        .args(["--otlp-protocol", protocol])
        .only_tracers(&["dropwatch"])
        .env("HUATUO_TRACERS__DROPWATCH__MAX_EVENTS_PER_SECOND", "0")
        .env("HUATUO_TRACERS__DROPWATCH__RING_BUFFER_KIB", "8192")
        .env("HUATUO_EXPORTERS__MAX_QUEUE_SIZE", "65536")
        .env("HUATUO_EXPORTERS__BATCH_INTERVAL_MS", "1000")
        .env(SPOOL_DIR_ENV, spool))
}

/// Sends drops to `port` at `rate` per second for `secs`, paced in 10 ms slices; returns the count.
fn send_paced(port: u16, rate: u64, secs: u64) -> anyhow::Result<u64> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let per_slice = (rate / 100).max(1);
    let start = Instant::now();
    let mut sent = 0;
    for slice in 0..secs * 100 {
        for _ in 0..per_slice {
            let _ = socket.send_to(b"drop", ("127.0.0.1", port));
            sent += 1;
        }
        let next = start + Duration::from_millis(10 * (slice + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(sent)
}

fn events_to(received: &Received, port: u16) -> usize {
    let port = port.to_string();
    received
        .logs_with_event(net::SKB_DROP)
        .iter()
        .filter(|l| l.matches(&[(net::DESTINATION_PORT, &port)]))
        .count()
}

fn ring_buffer_drops(received: &Received) -> f64 {
    received
        .latest_sum(
            agent_names::TRACER_RECORDS_DROPPED,
            &[
                (agent_names::TRACER_NAME, "dropwatch"),
                (agent_names::DROP_CAUSE, "ring_buffer_full"),
            ],
        )
        .unwrap_or(0.0)
}

/// Waits until `count` events to `port` arrived, or until none arrived for 5 s after the first
/// (the first may wait for the replay's back-off, up to `exporters.otlp.spool.max_backoff_secs`).
async fn settle(receiver: &OtlpReceiver, port: u16, count: usize) -> (Received, Instant) {
    let mut last = (0, Instant::now());
    let give_up = Instant::now() + WAIT;
    loop {
        let received = receiver.received();
        let n = events_to(&received, port);
        if n != last.0 {
            last = (n, Instant::now());
        }
        let stalled = n > 0 && last.1.elapsed() > Duration::from_secs(5);
        if n >= count || stalled || Instant::now() > give_up {
            return (received, last.1);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn throughput(protocol: &str) -> anyhow::Result<()> {
    let spool = tempfile::tempdir()?;
    let receiver = OtlpReceiver::start().await?;
    let endpoint = match protocol {
        "grpc" => receiver.grpc_endpoint(),
        _ => receiver.http_endpoint(),
    };
    let mut agent = agent(&endpoint, protocol, spool.path())?
        .start_tracer("dropwatch")
        .await?;
    let pid = agent.pid();
    receiver
        .wait_for(WAIT, "a first metric export", |r| !r.metrics.is_empty())
        .await?;
    let port = closed_udp_port()?;
    let cpu_before = cpu_seconds(pid)?;
    let start = Instant::now();
    let sent =
        tokio::task::spawn_blocking(move || send_paced(port, STORM_RATE, STORM_SECS)).await??;
    let (received, last) = settle(&receiver, port, sent as usize).await;
    let cpu = cpu_seconds(pid)? - cpu_before;
    let exported = events_to(&received, port);
    let elapsed = last.duration_since(start).as_secs_f64();
    let rss = peak_rss_mib(pid)?;
    agent.terminate(WAIT).await?;
    receiver.stop().await;
    let ring = ring_buffer_drops(&received);
    // What neither arrived nor was counted was dropped by the SDK's full batch queue, which
    // opentelemetry_sdk does not report.
    let uncounted = sent as f64 - ring - exported as f64;
    println!(
        "| {protocol} | {sent} | {exported} | {ring:.0} | {uncounted:.0} | {:.0} | {cpu:.2} | {:.0} | {rss:.1} |",
        exported as f64 / elapsed,
        exported as f64 / cpu,
    );
    Ok(())
}

fn spool_usage(dir: &Path) -> (u64, usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let sizes: Vec<u64> = entries
        .filter_map(|e| e.ok()?.metadata().ok().map(|m| m.len()))
        .collect();
    (sizes.iter().sum(), sizes.len())
}

fn sample(agent: &AgentProcess, spool: &Path, since: Instant, sent: u64) -> anyhow::Result<()> {
    let (bytes, files) = spool_usage(spool);
    println!(
        "| {:.0} | {sent} | {:.1} | {:.1} | {:.2} | {files} |",
        since.elapsed().as_secs_f64(),
        rss_mib(agent.pid())?,
        peak_rss_mib(agent.pid())?,
        bytes as f64 / (1 << 20) as f64,
    );
    Ok(())
}

async fn outage(secs: u64, rate: u64) -> anyhow::Result<()> {
    let spool = tempfile::tempdir()?;
    let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut agent = agent(&format!("http://{addr}"), "grpc", spool.path())?
        .start_tracer("dropwatch")
        .await?;
    let port = closed_udp_port()?;
    println!("| seconds down | events sent | RSS MiB | peak RSS MiB | spool MiB | spool files |");
    println!("|---|---|---|---|---|---|");
    let start = Instant::now();
    let step = (secs / 10).max(5);
    let mut sent = 0;
    sample(&agent, spool.path(), start, sent)?;
    while start.elapsed().as_secs() < secs {
        let chunk = step.min(secs - start.elapsed().as_secs()).max(1);
        sent += tokio::task::spawn_blocking(move || send_paced(port, rate, chunk)).await??;
        sample(&agent, spool.path(), start, sent)?;
    }
    // The last batches reach the spool after the export timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (bytes, files) = spool_usage(spool.path());
    let receiver = OtlpReceiver::start_on(addr, None).await?;
    let back = Instant::now();
    let (received, last) = settle(&receiver, port, sent as usize).await;
    let replayed = events_to(&received, port);
    let replay_secs = last.duration_since(back).as_secs_f64();
    let peak = peak_rss_mib(agent.pid())?;
    agent.terminate(WAIT).await?;
    receiver.stop().await;
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| outage | {secs} s at {rate} events/s |");
    println!("| events sent | {sent} |");
    println!(
        "| ring buffer drops | {:.0} |",
        ring_buffer_drops(&received)
    );
    println!(
        "| spool at the end of the outage | {:.2} MiB in {files} files, {:.0} bytes per event |",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / sent.max(1) as f64
    );
    println!("| agent peak RSS over the run | {peak:.1} MiB |");
    println!("| events delivered after the collector came back | {replayed} |");
    println!(
        "| collector back to last event delivered (includes the replay back-off) | {replay_secs:.1} s ({:.0} events/s) |",
        replayed as f64 / replay_secs.max(0.001)
    );
    if replayed < sent as usize {
        println!("| LOST | {} |", sent as usize - replayed);
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut number = |default: u64| -> anyhow::Result<u64> {
        args.next()
            .map(|a| {
                a.parse()
                    .context("usage: bench-delivery [OUTAGE_SECS] [RATE]")
            })
            .transpose()
            .map(|n| n.unwrap_or(default))
    };
    let (secs, rate) = (number(600)?, number(100)?);
    if secs == 0 || rate == 0 {
        bail!("usage: bench-delivery [OUTAGE_SECS] [RATE] (positive numbers)");
    }
    println!("## Export throughput ({STORM_RATE} drops/s for {STORM_SECS} s, rate limit off)");
    println!();
    println!(
        "| protocol | drops sent | log records exported | ring buffer drops | SDK queue drops | records/s | agent CPU s | records/s per core | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for protocol in ["grpc", "http/protobuf"] {
        throughput(protocol).await?;
    }
    println!();
    println!("## Collector down for {secs} s at {rate} events/s, then back");
    println!();
    outage(secs, rate).await
}
