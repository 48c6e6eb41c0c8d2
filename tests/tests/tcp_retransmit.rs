//! End to end: the real agent and real TCP retransmits, exported over OTLP gRPC.
//!
//! In a throwaway network namespace a client connects over 127.0.0.1 to a listener whose every
//! inbound segment but the SYN is dropped by netfilter, then writes: the client resends its data
//! (a tail loss probe, then timeouts from about 200 ms on) and the server its SYN-ACK (from about
//! 1 s on). The agent must export `huatuo.tcp.retransmit` events for exactly that connection, and
//! `huatuo.tcp.retransmits` must grow by at least as many.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use huatuo_otel_tests::cgroup::own_cgroup_id;
use huatuo_otel_tests::netns::NetNs;
use huatuo_otel_tests::{
    require_root_and_bpf, AgentCommand, AgentProcess, LogView, OtlpReceiver, Received,
};
use huatuo_semconv::{agent as agent_names, net};

/// Bound on the agent's exit after SIGTERM.
const SHUTDOWN: Duration = Duration::from_secs(10);
/// Bound on each wait for exports: the kernel retransmits within about 1 s, exports follow within
/// 1 s (metrics) and 200 ms (logs).
const WAIT: Duration = Duration::from_secs(8);
const PAYLOAD: &[u8] = b"huatuo tcp_retransmit e2e";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The counter series a retransmit of the test's connection is counted in.
fn series(
    kind: &'static str,
    reason: &'static str,
    state: &'static str,
) -> [(&'static str, &'static str); 4] {
    [
        (net::TCP_RETRANSMIT_KIND, kind),
        (net::TCP_RETRANSMIT_REASON, reason),
        (net::TCP_STATE, state),
        (net::NETWORK_TYPE, "ipv4"),
    ]
}

/// Client data, then server SYN-ACKs, summed over the reasons each can have here.
fn counted(r: &Received) -> (f64, f64) {
    let sum = |kind, reasons: &[&'static str], state| {
        reasons
            .iter()
            .filter_map(|reason| r.latest_sum(net::TCP_RETRANSMITS, &series(kind, reason, state)))
            .sum::<f64>()
    };
    (
        sum("data", &["loss_probe", "timeout"], "ESTABLISHED"),
        sum("synack", &["timeout"], "NEW_SYN_RECV"),
    )
}

struct Ours {
    data: Vec<LogView>,
    synacks: Vec<LogView>,
}

/// Events of the test's connection: the client's data to the server's port, the server's
/// SYN-ACKs from it, in the test's namespace (others may use the same port numbers).
fn ours(r: &Received, netns_inode: u64, server_port: u16) -> Ours {
    let port = server_port.to_string();
    let netns = netns_inode.to_string();
    let events = r.logs_with_event(net::TCP_RETRANSMIT);
    let of = |kind: &str, port_key: &str| {
        let filter = [
            (net::NETNS_INODE, netns.as_str()),
            (net::TCP_RETRANSMIT_KIND, kind),
            (port_key, &port),
        ];
        events
            .iter()
            .filter(|l| l.matches(&filter))
            .cloned()
            .collect::<Vec<_>>()
    };
    Ours {
        data: of("data", net::DESTINATION_PORT),
        synacks: of("synack", net::SOURCE_PORT),
    }
}

/// The agent exporting to `receiver` every second (metrics) and 200 ms (logs), once the tracer
/// has attached.
async fn started(receiver: &OtlpReceiver, max_events_per_second: &str) -> AgentProcess {
    AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .env(
            "HUATUO_TRACERS__TCP_RETRANSMIT__MAX_EVENTS_PER_SECOND",
            max_events_per_second,
        )
        .only_tracers(&["tcp_retransmit"])
        .start_tracer("tcp_retransmit")
        .await
        .unwrap()
}

/// Records of this tracer the kernel did not deliver, by cause, in the latest collection.
fn dropped(r: &Received, cause: &str) -> f64 {
    let filter = [
        (agent_names::TRACER_NAME, "tcp_retransmit"),
        (agent_names::DROP_CAUSE, cause),
    ];
    r.latest_sum(agent_names::TRACER_RECORDS_DROPPED, &filter)
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmits_arrive_over_otlp_and_are_counted() {
    if !require_root_and_bpf() {
        return;
    }
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = started(&receiver, "10000").await;
    // Other retransmits on the host land in the same series; start from what they counted so far
    // (a stale export only lowers the baseline, which the `>=` checks below tolerate).
    let (data_before, synack_before) = counted(
        &receiver
            .wait_for(WAIT, "a metric export after attach", |r| {
                !r.metrics.is_empty()
            })
            .await
            .unwrap(),
    );

    // The guard deletes the namespace, and with it the netfilter rule, however the test ends.
    let ns = NetNs::create("tcp-retransmit-e2e").unwrap();
    let netns_inode = std::fs::metadata(format!("/run/netns/{}", ns.name()))
        .unwrap()
        .ino();
    let mut conn = ns.lossy_connection(LOCALHOST, LOCALHOST).unwrap();
    conn.client.write_all(PAYLOAD).unwrap();
    let client_port = conn.client.local_addr().unwrap().port();
    let server_port = conn.server.port();

    let received = receiver
        .wait_for(
            WAIT,
            "data and SYN-ACK retransmits of the connection, counted",
            |r| {
                let ours = ours(r, netns_inode, server_port);
                let timeouts = ours
                    .data
                    .iter()
                    .filter(|l| l.attr_str(net::TCP_RETRANSMIT_REASON) == Some("timeout"))
                    .count();
                let (data, synacks) = counted(r);
                timeouts > 0
                    && !ours.synacks.is_empty()
                    && data - data_before >= ours.data.len() as f64
                    && synacks - synack_before >= ours.synacks.len() as f64
            },
        )
        .await
        .unwrap();
    drop(conn);
    drop(ns);

    let Ours { data, synacks } = ours(&received, netns_inode, server_port);
    let cgroup = own_cgroup_id().unwrap() as i64;
    for event in data.iter().chain(&synacks) {
        assert_eq!(event.attr_str(net::SOURCE_ADDRESS), Some("127.0.0.1"));
        assert_eq!(event.attr_str(net::DESTINATION_ADDRESS), Some("127.0.0.1"));
        assert_eq!(event.attr_str(net::NETWORK_TYPE), Some("ipv4"));
        assert_eq!(event.attr_str(net::NETWORK_TRANSPORT), Some("tcp"));
        assert_eq!(event.attr_i64(net::NETNS_INODE), Some(netns_inode as i64));
        assert_eq!(event.attr_i64(net::CGROUP_ID), Some(cgroup));
        assert_eq!(event.severity_number, 13, "severity WARN");
    }
    for event in &data {
        assert_eq!(
            event.attr_i64(net::SOURCE_PORT),
            Some(i64::from(client_port))
        );
        assert_eq!(event.attr_str(net::TCP_STATE), Some("ESTABLISHED"));
        assert_eq!(event.attr_i64(net::SKB_LEN), Some(PAYLOAD.len() as i64));
        let reason = event.attr_str(net::TCP_RETRANSMIT_REASON);
        assert!(
            matches!(reason, Some("loss_probe" | "timeout")),
            "data retransmit for {reason:?}"
        );
    }
    for event in &synacks {
        assert_eq!(
            event.attr_i64(net::DESTINATION_PORT),
            Some(i64::from(client_port))
        );
        assert_eq!(event.attr_str(net::TCP_STATE), Some("NEW_SYN_RECV"));
        assert_eq!(event.attr_str(net::TCP_RETRANSMIT_REASON), Some("timeout"));
    }

    received.assert_names_registered();
    let (data_after, synack_after) = counted(&received);
    eprintln!(
        "connection :{client_port} -> :{server_port}: {} data and {} SYN-ACK retransmit events; \
         counter grew by {} and {}",
        data.len(),
        synacks.len(),
        data_after - data_before,
        synack_after - synack_before
    );

    let status = agent.terminate(SHUTDOWN).await.unwrap();
    assert!(
        status.success(),
        "agent exit {status:?}\n{}",
        agent.stderr()
    );
    receiver.stop().await;
}

/// Under a rate limit of 1 event per second, several connections retransmitting at once must
/// lose events to the limiter, never retransmits: every one counted in the metric is either an
/// exported event or counted as suppressed (or lost to a full ring buffer). Other retransmits on
/// the host obey the same identity, so it holds over everything the agent reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressed_retransmits_are_counted_not_lost() {
    const CONNECTIONS: usize = 8;
    if !require_root_and_bpf() {
        return;
    }
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = started(&receiver, "1").await;

    let ns = NetNs::create("tcp-retransmit-limit").unwrap();
    let mut conns: Vec<_> = (0..CONNECTIONS)
        .map(|_| ns.lossy_connection(LOCALHOST, LOCALHOST).unwrap())
        .collect();
    for conn in &mut conns {
        conn.client.write_all(PAYLOAD).unwrap();
    }

    // Exports of events and of counters are not simultaneous: wait for a moment (between the
    // backed-off retransmits) when both have caught up.
    let received = receiver
        .wait_for(
            WAIT,
            "every counted retransmit exported or suppressed",
            |r| {
                let counted = r.latest_total(net::TCP_RETRANSMITS, &[]);
                let events = r.logs_with_event(net::TCP_RETRANSMIT).len() as f64;
                let suppressed = dropped(r, "rate_limited");
                // Every connection resends (a loss probe first) within a few ms of the others.
                counted >= CONNECTIONS as f64
                    && suppressed > 0.0
                    && counted == events + suppressed + dropped(r, "ring_buffer_full")
            },
        )
        .await
        .unwrap();
    drop(conns);
    drop(ns);

    let events = received.logs_with_event(net::TCP_RETRANSMIT).len();
    let suppressed = dropped(&received, "rate_limited");
    let counted = received.latest_total(net::TCP_RETRANSMITS, &[]);
    // At most one per CPU per one-second window went through (two on a window edge).
    let cpus = std::thread::available_parallelism().unwrap().get();
    let elapsed_windows = 1 + WAIT.as_secs() as usize;
    assert!(
        events <= 2 * cpus * elapsed_windows,
        "{events} events passed a limit of 1/s"
    );
    eprintln!(
        "rate limit 1/s, {CONNECTIONS} lossy connections: {counted} retransmits counted, \
         {events} exported, {suppressed} suppressed"
    );
    agent.terminate(SHUTDOWN).await.unwrap();
    receiver.stop().await;
}
