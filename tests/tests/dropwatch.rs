//! End to end: the real agent, a real kernel drop (UDP to a closed port on 127.0.0.1), exported
//! over OTLP gRPC, OTLP HTTP and to the local OTLP-JSON files.

use huatuo_otel_tests::{
    jsonl, require_root_and_bpf, AgentCommand, AgentProcess, OtlpReceiver, Received,
};
use huatuo_semconv::{agent as agent_names, net};
use std::net::UdpSocket;
use std::time::Duration;

const DATAGRAMS: usize = 50;
const WAIT: Duration = Duration::from_secs(30);

fn drop_filter() -> [(&'static str, &'static str); 3] {
    [
        (net::SKB_DROP_REASON, "NO_SOCKET"),
        (net::NETWORK_TRANSPORT, "udp"),
        (net::NETWORK_TYPE, "ipv4"),
    ]
}

fn closed_udp_port() -> u16 {
    huatuo_otel_tests::udp_drops::closed_udp_port().unwrap()
}

fn send_datagrams(port: u16, count: usize) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..count {
        // Each send is dropped by the kernel with NO_SOCKET; the error (if any) is ICMP feedback.
        let _ = socket.send_to(format!("drop {i}").as_bytes(), ("127.0.0.1", port));
    }
}

/// A rate limit above what the test sends; a test may set its own after.
fn unlimited(command: anyhow::Result<AgentCommand>) -> AgentCommand {
    command
        .unwrap()
        .env("HUATUO_TRACERS__DROPWATCH__MAX_EVENTS_PER_SECOND", "10000")
}

async fn started(command: AgentCommand) -> AgentProcess {
    command.start_tracer("dropwatch").await.unwrap()
}

/// The assertions every transport shares: N events with the right reason, port and pid, the
/// counter equal to N, and every name registered in semconv.
fn check_drops(received: &Received, port: u16, counter_before: f64) {
    let port_text = port.to_string();
    let events: Vec<_> = received
        .logs_with_event(net::SKB_DROP)
        .into_iter()
        .filter(|l| l.matches(&[(net::DESTINATION_PORT, &port_text)]))
        .collect();
    assert_eq!(
        events.len(),
        DATAGRAMS,
        "drop events for port {port}\n{}",
        received.summary()
    );
    for event in &events {
        assert_eq!(event.attr_str(net::SKB_DROP_REASON), Some("NO_SOCKET"));
        assert_eq!(event.attr_str(net::DESTINATION_ADDRESS), Some("127.0.0.1"));
        assert_eq!(
            event.attr_i64(net::PROCESS_PID),
            Some(i64::from(std::process::id()))
        );
        assert_eq!(event.attr_str(net::NETWORK_TRANSPORT), Some("udp"));
        let location = event.attr_str(net::SKB_DROP_LOCATION).unwrap();
        assert!(
            location.contains('+') && !location.starts_with("0x"),
            "unsymbolized {location}"
        );
        assert!(event.resource_str("host.name").is_some());
        assert_eq!(event.resource_str("service.name"), Some("huatuo-otel"));
    }
    let counted = received
        .latest_sum(net::SKB_DROPS, &drop_filter())
        .unwrap_or(0.0);
    assert_eq!(
        counted - counter_before,
        DATAGRAMS as f64,
        "{}",
        received.summary()
    );

    received.assert_names_registered();
}

async fn drops_over_otlp(protocol: &str) {
    if !require_root_and_bpf() {
        return;
    }
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = match protocol {
        "grpc" => receiver.grpc_endpoint(),
        _ => receiver.http_endpoint(),
    };
    let mut agent =
        started(unlimited(AgentCommand::otlp_only(&endpoint)).args(["--otlp-protocol", protocol]))
            .await;
    // Counts start at attach; take the baseline from an export after it.
    let baseline = receiver
        .wait_for(WAIT, "a metric export after attach", |r| {
            !r.metrics.is_empty()
        })
        .await
        .unwrap()
        .latest_sum(net::SKB_DROPS, &drop_filter())
        .unwrap_or(0.0);
    let port = closed_udp_port();
    send_datagrams(port, DATAGRAMS);

    let port_text = port.to_string();
    let received = receiver
        .wait_for(WAIT, "all drop events and the counter", |r| {
            let events = r
                .logs_with_event(net::SKB_DROP)
                .iter()
                .filter(|l| l.matches(&[(net::DESTINATION_PORT, &port_text)]))
                .count();
            let counted = r.latest_sum(net::SKB_DROPS, &drop_filter()).unwrap_or(0.0);
            events >= DATAGRAMS && counted - baseline >= DATAGRAMS as f64
        })
        .await
        .unwrap();
    check_drops(&received, port, baseline);
    let status = agent.terminate(WAIT).await.unwrap();
    assert!(
        status.success(),
        "agent exit {status:?}\n{}",
        agent.stderr()
    );
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_drops_arrive_over_otlp_grpc() {
    drops_over_otlp("grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_drops_arrive_over_otlp_http() {
    drops_over_otlp("http/protobuf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_drops_arrive_in_the_local_files() {
    if !require_root_and_bpf() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut agent = started(
        unlimited(AgentCommand::run_fast())
            .arg("--file-dir")
            .arg(out.path()),
    )
    .await;
    let port = closed_udp_port();
    send_datagrams(port, DATAGRAMS);
    // SIGTERM flushes: everything accepted before it must be in the files afterwards.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = agent.terminate(WAIT).await.unwrap();
    assert!(
        status.success(),
        "agent exit {status:?}\n{}",
        agent.stderr()
    );
    let received = jsonl::read_dir(out.path()).unwrap();
    // Nothing else dropped UDP at closed ports during the run, so the counter starts at 0.
    check_drops(&received, port, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressed_drops_are_counted_not_lost() {
    if !require_root_and_bpf() {
        return;
    }
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = started(
        unlimited(AgentCommand::otlp_only(&receiver.grpc_endpoint()))
            .env("HUATUO_TRACERS__DROPWATCH__MAX_EVENTS_PER_SECOND", "2"),
    )
    .await;
    let port = closed_udp_port();
    send_datagrams(port, DATAGRAMS);
    let port_text = port.to_string();
    let suppressed = [
        (agent_names::TRACER_NAME, "dropwatch"),
        (agent_names::DROP_CAUSE, "rate_limited"),
    ];
    let received = receiver
        .wait_for(WAIT, "events plus suppressed = datagrams", |r| {
            let events = r
                .logs_with_event(net::SKB_DROP)
                .iter()
                .filter(|l| l.matches(&[(net::DESTINATION_PORT, &port_text)]))
                .count() as f64;
            let dropped = r
                .latest_sum(agent_names::TRACER_RECORDS_DROPPED, &suppressed)
                .unwrap_or(0.0);
            events > 0.0 && events + dropped >= DATAGRAMS as f64
        })
        .await
        .unwrap();
    let events = received
        .logs_with_event(net::SKB_DROP)
        .iter()
        .filter(|l| l.matches(&[(net::DESTINATION_PORT, &port_text)]))
        .count();
    // At most the per-CPU budget (ceil(2 / CPUs)) per CPU per second went through.
    assert!(events <= 4, "{events} events passed a limit of 2/s");
    let counted = received
        .latest_sum(net::SKB_DROPS, &drop_filter())
        .unwrap_or(0.0);
    assert!(counted >= DATAGRAMS as f64, "every drop counted: {counted}");
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}
