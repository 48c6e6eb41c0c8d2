//! The agent's own telemetry: its logs over OTLP when asked, and tracer status as metrics.
//! Runs without BPF (the only tracer is disabled), so it also shows the agent starts and stops
//! cleanly with nothing to trace.

use huatuo_otel_tests::{AgentCommand, OtlpReceiver};
use huatuo_semconv::{agent as names, is_registered, Kind};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_telemetry_and_tracer_status_over_otlp() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut agent = AgentCommand::run_fast()
        .unwrap()
        .args(["--disable-tracer", "dropwatch"])
        .args(["--otlp-endpoint", &receiver.grpc_endpoint()])
        .arg("--file-dir")
        .arg(out.path())
        .env("HUATUO_AGENT__SELF_TELEMETRY", "true")
        .env("HUATUO_AGENT__REGION", "test-region")
        .spawn()
        .unwrap();
    let disabled = [
        (names::TRACER_NAME, "dropwatch"),
        (names::TRACER_STATE, "disabled"),
    ];
    let received = receiver
        .wait_for(WAIT, "agent start-up log and tracer status", |r| {
            let started = r.logs_with_event(names::AGENT_LOG).iter().any(|l| {
                l.body_str()
                    .is_some_and(|b| b.contains("huatuo-otel starting"))
            });
            started && r.latest_gauge(names::TRACER_STATUS, &disabled) == Some(1.0)
        })
        .await
        .unwrap();
    for name in received.event_names() {
        assert!(
            is_registered(&name, Kind::Event),
            "dynamic or unregistered event name {name}"
        );
    }
    let log = &received.logs_with_event(names::AGENT_LOG)[0];
    assert_eq!(log.resource_str("huatuo.region"), Some("test-region"));
    let status = agent.terminate(WAIT).await.unwrap();
    assert!(status.success(), "{}", agent.stderr());
    receiver.stop().await;
}
