//! End to end: the real agent reading the real `/dev/kmsg`. A soft lockup report forged from
//! user space (what `echo '<0>watchdog: BUG: soft lockup ...' > /dev/kmsg` writes) must not
//! become an event: the kernel gives such lines a user facility whatever prefix they carry. The
//! forged-report counter shows the agent did read the line, so the absence of an event means
//! something.

use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, OtlpReceiver};
use huatuo_semconv::{net, sched};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
/// Longer than the tracer's collection window (2 s) plus an export interval.
const QUIET: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_forged_through_dev_kmsg_is_counted_and_never_an_event() {
    if !require_root_and_bpf() {
        return;
    }
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["softlockup"])
        .start_tracer("softlockup")
        .await
        .unwrap();

    // The task name marks our line among whatever else the kernel log holds.
    let comm = format!("forged{}", std::process::id());
    let forged = format!("<0>watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [{comm}:1]\n");
    std::fs::write("/dev/kmsg", forged).unwrap();

    let received = receiver
        .wait_for(WAIT, "the forged-report counter", |r| {
            r.latest_sum(sched::SOFT_LOCKUP_FORGED, &[]).is_some()
        })
        .await
        .unwrap();
    assert_eq!(
        received.latest_sum(sched::SOFT_LOCKUP_FORGED, &[]),
        Some(1.0),
        "{}",
        received.summary()
    );
    tokio::time::sleep(QUIET).await;
    let received = receiver.received();
    let events = received.logs_with_event(sched::SOFT_LOCKUP);
    assert!(
        events.is_empty(),
        "a forged line became {} event(s): {:?}",
        events.len(),
        events
            .iter()
            .map(|e| e.attr_str(net::THREAD_NAME))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        received.latest_sum(sched::SOFT_LOCKUPS, &[]),
        None,
        "a forged line was counted as a soft lockup"
    );
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    let stderr = agent.stderr();
    assert!(
        stderr.contains("written to /dev/kmsg from user space") && stderr.contains(&comm),
        "no warning about the forged line:\n{stderr}"
    );
    receiver.stop().await;
}
