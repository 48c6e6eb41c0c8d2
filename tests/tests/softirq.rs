//! End to end: the real agent and real NET_RX softirqs, exported over OTLP gRPC.
//!
//! UDP round trips over the loopback of a throwaway network namespace raise and run one NET_RX
//! softirq per datagram. The `huatuo.softirq.latency` histogram of NET_RX must grow by at least
//! that order of magnitude, and with the threshold at 0 every wait is over it, so the test's own
//! process (which runs the softirq when it re-enables bottom halves after sending) must show up
//! in `huatuo.softirq.delay` events.

use std::time::Duration;

use huatuo_otel_tests::netns::NetNs;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, OtlpReceiver, Received};
use huatuo_semconv::{net, sched};

/// Bound on each wait for exports: folds every second, metrics every second, logs every 200 ms.
const WAIT: Duration = Duration::from_secs(10);
const ROUND_TRIPS: usize = 5_000;
const NET_RX: [(&str, &str); 1] = [(sched::SOFTIRQ_VECTOR, "NET_RX")];

fn net_rx_count(r: &Received) -> u64 {
    r.histogram_count(sched::SOFTIRQ_LATENCY, &NET_RX)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_rx_latency_histogram_fills_and_delays_arrive() {
    if !require_root_and_bpf() {
        return;
    }
    let ns = NetNs::create("softirq").unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        // Tracers load one at a time: the others would only slow the start.
        .only_tracers(&["softirq"])
        .env("HUATUO_TRACERS__SOFTIRQ__LATENCY_THRESHOLD_US", "0")
        .env("HUATUO_TRACERS__SOFTIRQ__MAX_EVENTS_PER_SECOND", "1000")
        .env("HUATUO_TRACERS__SOFTIRQ__SPANS", "true")
        .start_tracer("softirq")
        .await
        .unwrap();
    // The host's own traffic lands in the same series: start from what it counted so far.
    let before = net_rx_count(
        &receiver
            .wait_for(WAIT, "a metric export after attach", |r| {
                !r.metrics.is_empty()
            })
            .await
            .unwrap(),
    );

    tokio::task::block_in_place(|| ns.udp_round_trips(ROUND_TRIPS)).unwrap();
    // Two datagrams per round trip; a tenth of the packets is the order of magnitude.
    let expected = before + (2 * ROUND_TRIPS / 10) as u64;
    let pid = std::process::id().to_string();
    let ours = [(sched::SOFTIRQ_VECTOR, "NET_RX"), (net::PROCESS_PID, &pid)];
    let received = receiver
        .wait_for(WAIT, "the NET_RX histogram to grow, and our delays", |r| {
            net_rx_count(r) >= expected
                && r.logs_with_event(sched::SOFTIRQ_DELAY)
                    .iter()
                    .any(|l| l.matches(&ours))
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", agent.stderr()));

    let after = net_rx_count(&received);
    eprintln!("NET_RX waits counted: {before} before, {after} after {ROUND_TRIPS} round trips");
    let events = received.logs_with_event(sched::SOFTIRQ_DELAY);
    let event = events.iter().find(|l| l.matches(&ours)).unwrap();
    assert!(event.expect_i64(sched::SOFTIRQ_DELAY_DURATION) >= 0);
    let cpu = event.expect_i64(sched::CPU_LOGICAL_NUMBER);
    assert!((0..1024).contains(&cpu), "cpu {cpu}");
    assert!(event.expect_i64(net::THREAD_ID) > 0);
    assert!(event.attr_str(net::THREAD_NAME).is_some());
    // The test runs in a cgroup, which the event carries for attribution.
    assert!(event.expect_i64(net::CGROUP_ID) > 0);
    assert_eq!(event.severity_number, 13, "severity WARN");
    let body = event.body_str().unwrap_or_default();
    assert!(body.starts_with("NET_RX softirq on CPU"), "{body}");
    // With spans on, the delay is also a span.
    assert!(
        received.span_names().contains(sched::SOFTIRQ_DELAY),
        "{}",
        received.summary()
    );
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}
