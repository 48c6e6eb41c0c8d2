//! End to end: the real agent with only runqlat, busy threads outnumbering the CPUs so tasks
//! really wait on run queues, and the histogram exported over OTLP growing with them; plus the
//! BPF run statistics the agent holds on with `agent.bpf_stats` (and releases on exit).

use huatuo_otel_tests::cpu::CpuContention;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, OtlpReceiver};
use huatuo_semconv::{agent, sched};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_queue_waits_are_counted_under_cpu_contention() {
    if !require_root_and_bpf() {
        return;
    }
    let stats_before = std::fs::read_to_string(STATS_SYSCTL).unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["runqlat"])
        .env("HUATUO_AGENT__BPF_STATS", "true")
        .start_tracer("runqlat")
        .await
        .unwrap();

    let baseline = receiver
        .wait_for(WAIT, "a first runqlat histogram", |r| {
            r.histogram_count(sched::RUNQUEUE_LATENCY, &[]).is_some()
        })
        .await
        .unwrap()
        .histogram_count(sched::RUNQUEUE_LATENCY, &[])
        .unwrap();
    let contention = CpuContention::start();
    let switch = [
        (agent::TRACER_NAME, "runqlat"),
        (agent::BPF_PROGRAM_NAME, "runqlat_switch_btf"),
    ];
    let received = receiver
        .wait_for(WAIT, "run-queue waits of the busy threads", |r| {
            let counted = r.histogram_count(sched::RUNQUEUE_LATENCY, &[]);
            let runs = r.latest_sum(agent::BPF_PROGRAM_RUNS, &switch);
            counted.is_some_and(|c| c >= baseline + 1000) && runs.is_some_and(|n| n > 0.0)
        })
        .await;
    drop(contention);
    let received = received.unwrap();
    received.assert_names_registered();

    // Waits of threads competing for the CPUs: most are in the milliseconds.
    let point = received.latest_point(sched::RUNQUEUE_LATENCY, &[]).unwrap();
    let huatuo_otel_tests::PointValue::Histogram { bucket_counts, .. } = &point.value else {
        panic!("not a histogram: {point:?}");
    };
    let at_least_1ms: u64 = bucket_counts.iter().skip(11).sum();
    assert!(
        at_least_1ms > 0,
        "no wait of 1 ms or more: {bucket_counts:?}"
    );
    let run_time = received
        .latest_sum(agent::BPF_PROGRAM_RUN_TIME, &switch)
        .unwrap();
    assert!(run_time > 0.0, "run time {run_time}");

    agent.terminate(WAIT).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(STATS_SYSCTL).unwrap(),
        stats_before,
        "the agent left kernel.bpf_stats_enabled changed"
    );
}
