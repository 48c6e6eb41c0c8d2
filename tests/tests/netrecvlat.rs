//! End to end: the real agent and real TCP receive latency, exported over OTLP gRPC.
//!
//! In a throwaway network namespace a client sends over 127.0.0.1 to a server that reads only
//! after a pause, with the agent's thresholds lowered so that every packet is late at the netif
//! and TCP stages (1 µs) and the paused read is late at the copy (20 ms, paused 150 ms). The
//! agent must export `huatuo.net.rx_latency` events for that connection at each stage, with its
//! ports, socket and reader, as spans too, and the per-stage histogram must count the packets.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use huatuo_otel_tests::cgroup::own_cgroup_id;
use huatuo_otel_tests::netns::NetNs;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, LogView, OtlpReceiver, Received};
use huatuo_semconv::net;

/// Bound on the agent's exit after SIGTERM.
const SHUTDOWN: Duration = Duration::from_secs(60);
/// Bound on each wait for exports: metrics every 1 s, logs every 200 ms.
const WAIT: Duration = Duration::from_secs(8);
/// How long the server leaves the data unread: far above the copy threshold below.
const READ_DELAY: Duration = Duration::from_millis(150);
const USER_COPY_THRESHOLD_US: &str = "20000";
const MESSAGES: usize = 20;
const PAYLOAD: &[u8] = b"huatuo netrecvlat e2e";
const STAGES: [&str; 3] = ["netif", "tcp", "user_copy"];

/// Packets counted in each stage's histogram, in the latest export (0 before the first).
fn counted(r: &Received) -> [u64; 3] {
    STAGES.map(|stage| {
        r.histogram_count(
            net::NET_RX_LATENCY_DURATION,
            &[(net::NET_RX_LATENCY_STAGE, stage)],
        )
        .unwrap_or(0)
    })
}

/// Events at `stage` of packets from the client to the server, in the test's namespace (others
/// may use the same port numbers).
fn ours(r: &Received, stage: &str, netns: u64, client: u16, server: u16) -> Vec<LogView> {
    let (netns, client, server) = (netns.to_string(), client.to_string(), server.to_string());
    let filter = [
        (net::NET_RX_LATENCY_STAGE, stage),
        (net::NETNS_INODE, netns.as_str()),
        (net::SOURCE_PORT, client.as_str()),
        (net::DESTINATION_PORT, server.as_str()),
    ];
    r.logs_with_event(net::NET_RX_LATENCY)
        .into_iter()
        .filter(|l| l.matches(&filter))
        .collect()
}

/// Every message is a packet at netif and TCP; the receive queue may merge the unread ones into
/// fewer buffers before they are copied.
fn grown(before: [u64; 3], now: [u64; 3]) -> bool {
    let at_least = [MESSAGES as u64, MESSAGES as u64, 1];
    (0..3).all(|i| now[i] >= before[i] + at_least[i])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_packets_are_reported_per_stage_and_counted() {
    if !require_root_and_bpf() {
        return;
    }
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .env("HUATUO_TRACERS__NETRECVLAT__NETIF_THRESHOLD_US", "1")
        .env("HUATUO_TRACERS__NETRECVLAT__TCP_THRESHOLD_US", "1")
        .env(
            "HUATUO_TRACERS__NETRECVLAT__USER_COPY_THRESHOLD_US",
            USER_COPY_THRESHOLD_US,
        )
        .env(
            "HUATUO_TRACERS__NETRECVLAT__MAX_EVENTS_PER_SECOND",
            "100000",
        )
        .env("HUATUO_TRACERS__NETRECVLAT__SPANS", "true")
        .only_tracers(&["netrecvlat"])
        .start_tracer("netrecvlat")
        .await
        .unwrap();
    // The kernel turns stamping on from a work item; give it a moment, then take the baseline
    // (other traffic on the host is counted too, so only growth is asserted).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = counted(
        &receiver
            .wait_for(WAIT, "a metric export after attach", |r| {
                !r.metrics.is_empty()
            })
            .await
            .unwrap(),
    );

    let ns = NetNs::create("netrecvlat-e2e").unwrap();
    let netns = std::fs::metadata(format!("/run/netns/{}", ns.name()))
        .unwrap()
        .ino();
    let listener = ns
        .enter(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .unwrap()
        .unwrap();
    let server_port = listener.local_addr().unwrap().port();
    let mut client = ns
        .enter(|| TcpStream::connect((Ipv4Addr::LOCALHOST, server_port)))
        .unwrap()
        .unwrap();
    // One packet per message: no Nagle merging on the sender's side.
    client.set_nodelay(true).unwrap();
    let client_port = client.local_addr().unwrap().port();
    let (mut server, _) = listener.accept().unwrap();
    for _ in 0..MESSAGES {
        client.write_all(PAYLOAD).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(READ_DELAY);
    let mut buf = vec![0u8; PAYLOAD.len() * MESSAGES];
    server.read_exact(&mut buf).unwrap();

    let received = receiver
        .wait_for(WAIT, "events at every stage, counted", |r| {
            let now = counted(r);
            STAGES
                .iter()
                .all(|stage| !ours(r, stage, netns, client_port, server_port).is_empty())
                && grown(before, now)
        })
        .await
        .unwrap();
    drop((client, server, listener));
    drop(ns);

    let cgroup = own_cgroup_id().unwrap() as i64;
    for stage in STAGES {
        let events = ours(&received, stage, netns, client_port, server_port);
        for event in &events {
            assert_eq!(event.attr_str(net::SOURCE_ADDRESS), Some("127.0.0.1"));
            assert_eq!(event.attr_str(net::DESTINATION_ADDRESS), Some("127.0.0.1"));
            assert_eq!(event.attr_str(net::NETWORK_TYPE), Some("ipv4"));
            assert_eq!(event.attr_str(net::NETWORK_TRANSPORT), Some("tcp"));
            assert_eq!(event.severity_number, 13, "severity WARN");
            let latency = event.expect_i64(net::NET_RX_LATENCY_DURATION_NS);
            let threshold = event.expect_i64(net::NET_RX_LATENCY_THRESHOLD_NS);
            assert!(latency >= threshold, "{stage}: {latency} < {threshold}");
            match stage {
                "netif" => {
                    assert_eq!(event.attr_str(net::NETWORK_INTERFACE_NAME), Some("lo"));
                    assert_eq!(event.attr_str(net::TCP_STATE), None);
                    assert_eq!(event.attr_i64(net::PROCESS_PID), None);
                }
                "tcp" => {
                    assert_eq!(event.attr_str(net::TCP_STATE), Some("ESTABLISHED"));
                    assert_eq!(event.attr_i64(net::CGROUP_ID), Some(cgroup));
                    assert_eq!(event.attr_i64(net::PROCESS_PID), None);
                }
                _ => {
                    assert_eq!(event.attr_str(net::TCP_STATE), Some("ESTABLISHED"));
                    assert_eq!(event.attr_i64(net::CGROUP_ID), Some(cgroup));
                    assert_eq!(
                        event.attr_i64(net::PROCESS_PID),
                        Some(i64::from(std::process::id()))
                    );
                    assert!(
                        latency >= READ_DELAY.as_nanos() as i64 / 2,
                        "a copy {latency} ns after receive, but the read waited {READ_DELAY:?}"
                    );
                }
            }
        }
        eprintln!("{stage}: {} events of the connection", events.len());
    }

    // With spans on, each event is also a span as long as its latency.
    let copy_spans: Vec<_> = received
        .spans()
        .into_iter()
        .filter(|s| {
            s.name == net::NET_RX_LATENCY
                && s.attributes
                    .get(net::NET_RX_LATENCY_STAGE)
                    .and_then(|v| v.as_str())
                    == Some("user_copy")
                && s.attributes.get(net::SOURCE_PORT).and_then(|v| v.as_i64())
                    == Some(i64::from(client_port))
        })
        .collect();
    assert!(!copy_spans.is_empty(), "no user_copy span");
    for span in &copy_spans {
        let length = span.end_time_unix_nano - span.start_time_unix_nano;
        assert!(
            length >= READ_DELAY.as_nanos() as u64 / 2,
            "span of {length} ns"
        );
    }

    received.assert_names_registered();
    let after = counted(&received);
    assert!(grown(before, after), "{before:?} -> {after:?}");
    eprintln!("histogram counts {before:?} -> {after:?}");
    let status = agent.terminate(SHUTDOWN).await.unwrap();
    assert!(
        status.success(),
        "agent exit {status:?}\n{}",
        agent.stderr()
    );
    receiver.stop().await;
}
