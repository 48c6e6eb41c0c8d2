//! End to end: the real agent exporting kernel packet drops (dropwatch) over OTLP/gRPC to a
//! collector that goes away. Every drop event produced arrives exactly once, in order, when the
//! collector comes back; also when the agent restarts while the collector is down (the spool
//! is replayed on start).

use huatuo_otel_tests::udp_drops::{closed_udp_port, send_numbered_drop};
use huatuo_otel_tests::{
    require_root_and_bpf, AgentCommand, AgentProcess, OtlpReceiver, Received, SPOOL_DIR_ENV,
};
use huatuo_semconv::net;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The agent tuned for a short outage: quick export timeouts and replay back-off.
fn agent(endpoint: &str, spool: &Path) -> AgentCommand {
    AgentCommand::otlp_only(endpoint)
        .unwrap()
        .only_tracers(&["dropwatch"])
        .env("HUATUO_TRACERS__DROPWATCH__MAX_EVENTS_PER_SECOND", "10000")
        .env("HUATUO_EXPORTERS__OTLP__TIMEOUT_SECS", "2")
        .env("HUATUO_EXPORTERS__OTLP__SPOOL__MAX_BACKOFF_SECS", "1")
        .env(SPOOL_DIR_ENV, spool)
}

async fn start(command: AgentCommand) -> AgentProcess {
    command.start_tracer("dropwatch").await.unwrap()
}

/// Sends `count` drops to `port`, 20 ms apart, and returns their source ports in order.
async fn drops(port: u16, count: usize) -> Vec<i64> {
    let mut sources = Vec::with_capacity(count);
    for _ in 0..count {
        sources.push(i64::from(send_numbered_drop(port).unwrap()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sources
}

/// Source ports of the drop events to `port`, in the order they were received.
fn received_sources(received: &Received, port: u16) -> Vec<i64> {
    let port = port.to_string();
    received
        .logs_with_event(net::SKB_DROP)
        .iter()
        .filter(|l| l.matches(&[(net::DESTINATION_PORT, &port)]))
        .filter_map(|l| l.attr_i64(net::SOURCE_PORT))
        .collect()
}

async fn wait_for_drops(receiver: &OtlpReceiver, port: u16, count: usize) -> Vec<i64> {
    let received = receiver
        .wait_for(WAIT, &format!("{count} drop events"), |r| {
            received_sources(r, port).len() >= count
        })
        .await
        .unwrap();
    received_sources(&received, port)
}

fn spool_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_restart_while_events_are_produced_loses_nothing() {
    if !require_root_and_bpf() {
        return;
    }
    let spool = tempfile::tempdir().unwrap();
    let receiver = OtlpReceiver::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .unwrap();
    let addr = receiver.grpc_addr();
    let mut agent = start(agent(&receiver.grpc_endpoint(), spool.path())).await;
    let port = closed_udp_port().unwrap();

    let mut sent = drops(port, 20).await;
    let mut arrived = wait_for_drops(&receiver, port, 20).await;
    receiver.stop().await;

    // The collector is down: the agent spools.
    sent.extend(drops(port, 30).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(spool_files(spool.path()) > 0, "{}", agent.stderr());

    let receiver = OtlpReceiver::start_on(addr, None).await.unwrap();
    sent.extend(drops(port, 20).await);
    arrived.extend(wait_for_drops(&receiver, port, 50).await);
    agent.terminate_cleanly(WAIT).await;
    // Nothing more (no duplicate) came with the shutdown.
    assert_eq!(received_sources(&receiver.received(), port).len(), 50);
    assert_eq!(arrived, sent, "every drop event once, in order");
    assert_eq!(spool_files(spool.path()), 0);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_restart_while_the_collector_is_down_loses_nothing() {
    if !require_root_and_bpf() {
        return;
    }
    let spool = tempfile::tempdir().unwrap();
    // Nothing listens there until the second run.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{addr}");
    let port = closed_udp_port().unwrap();

    let mut first = start(agent(&endpoint, spool.path())).await;
    let mut sent = drops(port, 30).await;
    // A graceful stop spools whatever the collector did not take. Its exit status says that
    // the last metric export failed (metrics are not spooled: the next run's totals cover it).
    let status = first.terminate(WAIT).await.unwrap();
    eprintln!("first run: {status:?}");
    assert!(spool_files(spool.path()) > 0, "{}", first.stderr());

    let receiver = OtlpReceiver::start_on(addr, None).await.unwrap();
    let mut second = start(agent(&endpoint, spool.path())).await;
    sent.extend(drops(port, 20).await);
    let arrived = wait_for_drops(&receiver, port, 50).await;
    second.terminate_cleanly(WAIT).await;
    assert_eq!(received_sources(&receiver.received(), port).len(), 50);
    assert_eq!(arrived, sent, "every drop event once, in order");
    assert!(
        second
            .stderr()
            .contains("from a previous run will be replayed"),
        "{}",
        second.stderr()
    );
    receiver.stop().await;
}
