//! End to end: the real agent watching rtnetlink, a veth pair of this test in the agent's own
//! network namespace set up and down: admin and carrier changes arrive as events with the
//! driver, and the counter per interface and change counts each exactly once.

use huatuo_otel_tests::netns::VethPair;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, OtlpReceiver, Received};
use huatuo_semconv::net;
use std::io::Write as _;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
/// Lets the kernel's link watcher settle between steps, so each step's notifications come
/// before the next step's.
const STEP: Duration = Duration::from_millis(300);

fn count(received: &Received, interface: &str, change: &str) -> Option<f64> {
    received.latest_sum(
        net::NETDEV_LINK_CHANGES_TOTAL,
        &[
            (net::NETWORK_INTERFACE_NAME, interface),
            (net::NETDEV_LINK_CHANGE_KIND, change),
        ],
    )
}

const ALL_CHANGES: [&str; 4] = ["admin_up", "carrier_up", "carrier_down", "admin_down"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veth_admin_and_carrier_changes_are_reported_once_each() {
    if !require_root_and_bpf() {
        return;
    }
    let veth = VethPair::create("hnd").unwrap();
    let (a, b) = (veth.name().to_owned(), veth.peer().to_owned());
    // Only this pair: other tests' interfaces come and go on the same host.
    let mut config = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(
        config,
        "[tracers.netdev_events]\ninclude = [\"{a}\", \"{b}\"]"
    )
    .unwrap();

    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .arg("--config")
        .arg(config.path())
        .only_tracers(&["netdev_events"])
        // The tracer's module is `netdev`.
        .start_tracer("netdev")
        .await
        .unwrap();

    // a up (no carrier: its peer is down), b up (both get carrier), b down (both lose it),
    // a down.
    for (interface, up) in [(&a, true), (&b, true), (&b, false), (&a, false)] {
        veth.set(interface, up).unwrap();
        tokio::time::sleep(STEP).await;
    }
    receiver
        .wait_for(WAIT, "four changes counted on each end", |r| {
            [&a, &b]
                .iter()
                .all(|i| ALL_CHANGES.iter().all(|c| count(r, i, c).is_some()))
        })
        .await
        .unwrap();
    // One more export, so a change counted twice would show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = receiver.received();
    for interface in [&a, &b] {
        for change in ALL_CHANGES {
            assert_eq!(
                count(&received, interface, change),
                Some(1.0),
                "{interface} {change}\n{}",
                received.summary()
            );
        }
    }

    let events = received.logs_with_event(net::NETDEV_LINK_CHANGE);
    let of_a: Vec<_> = events
        .iter()
        .filter(|e| e.attr_str(net::NETWORK_INTERFACE_NAME) == Some(a.as_str()))
        .collect();
    let bodies: Vec<_> = of_a.iter().filter_map(|e| e.body_str()).collect();
    assert!(
        bodies
            .first()
            .is_some_and(|b| b.starts_with(&format!("{a}: admin_up "))),
        "the first change of {a} is its admin up: {bodies:?}"
    );
    let carrier_down = of_a
        .iter()
        .find(|e| e.body_str().is_some_and(|b| b.contains("carrier_down")))
        .unwrap_or_else(|| panic!("no carrier_down event of {a}: {bodies:?}"));
    assert_eq!(carrier_down.attr_str(net::NETDEV_DRIVER), Some("veth"));
    assert_eq!(carrier_down.attr_str(net::NETDEV_CARRIER), Some("down"));
    assert_eq!(carrier_down.severity_number, 13, "severity WARN");
    assert!(carrier_down.expect_i64(net::NETDEV_IFINDEX) > 0);
    assert!(
        events.iter().all(|e| [a.as_str(), b.as_str()]
            .contains(&e.attr_str(net::NETWORK_INTERFACE_NAME).unwrap_or(""))),
        "an interface outside the include list was reported"
    );
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
    drop(veth);
}
