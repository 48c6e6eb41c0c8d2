//! End to end: the real agent and real memory cgroup reclaim, exported over OTLP gRPC.
//!
//! A process touches four times the limit of a throwaway memory cgroup: every charge over the
//! limit makes the kernel reclaim in that cgroup (many times, before it finally kills the
//! process). With the threshold at 0 every reclaim is a stall, so the agent must export
//! `huatuo.memory.reclaim.stall` events of kind `memcg` for that process and its memory cgroup,
//! count them in the `memcg` series of the histogram and of the stall counter.
//!
//! Then the test compacts memory through `vm.compact_memory`, which this process runs itself:
//! the compaction histogram must count `manual` compactions. kswapd is not woken (only host-wide
//! memory pressure would wake it, too risky on a shared machine); its series, when the host woke
//! it anyway, must only use registered names.

use huatuo_otel_tests::memcg::MemoryCgroup;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, OtlpReceiver};
use huatuo_semconv::{memory, net};
use std::time::Duration;

const LIMIT: u64 = 32 << 20;
const HOG_BYTES: usize = 128 << 20;
const OOM_SCORE_ADJ: i32 = 500;
const WAIT: Duration = Duration::from_secs(30);
const MEMCG: [(&str, &str); 1] = [(memory::MEMORY_RECLAIM_KIND, "memcg")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcg_reclaim_stalls_arrive_over_otlp() {
    if !require_root_and_bpf() {
        return;
    }
    let cgroup = MemoryCgroup::create("memreclaim", LIMIT).unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        // Tracers load one at a time: the others would only slow the start.
        .only_tracers(&["memreclaim"])
        .env("HUATUO_TRACERS__MEMRECLAIM__STALL_THRESHOLD_MS", "0")
        .env("HUATUO_TRACERS__MEMRECLAIM__MAX_EVENTS_PER_SECOND", "1000")
        .env("HUATUO_TRACERS__MEMRECLAIM__SPANS", "true")
        .start_tracer("memreclaim")
        .await
        .unwrap();

    let mut hog = cgroup.spawn_hog(HOG_BYTES, OOM_SCORE_ADJ).unwrap();
    // The hog ends killed by the OOM killer once reclaim cannot keep it under the limit.
    let signal = tokio::task::block_in_place(|| hog.wait_killed(WAIT)).unwrap();
    assert_eq!(signal, libc::SIGKILL);
    let pid = hog.pid().to_string();
    let ours = [
        (net::PROCESS_PID, pid.as_str()),
        (memory::MEMORY_RECLAIM_KIND, "memcg"),
    ];
    let received = receiver
        .wait_for(
            WAIT,
            "the hog's stalls, the histogram and the counter",
            |r| {
                let event = r
                    .logs_with_event(memory::MEMORY_RECLAIM_STALL)
                    .iter()
                    .any(|l| l.matches(&ours));
                let histogram = r.histogram_count(memory::MEMORY_RECLAIM_DURATION, &MEMCG);
                let counted = r.latest_sum(memory::MEMORY_RECLAIM_STALLS, &MEMCG);
                event && histogram > Some(0) && counted > Some(0.0)
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", agent.stderr()));

    let events: Vec<_> = received
        .logs_with_event(memory::MEMORY_RECLAIM_STALL)
        .into_iter()
        .filter(|l| l.matches(&ours))
        .collect();
    let event = &events[0];
    assert_eq!(event.attr_str(memory::MEMCG_PATH), Some(cgroup.path()));
    assert_eq!(
        event.expect_i64(memory::MEMCG_ID),
        cgroup.id().unwrap() as i64
    );
    assert!(event.expect_i64(memory::MEMORY_RECLAIM_STALL_DURATION) > 0);
    assert!(event.expect_i64(memory::MEMORY_RECLAIM_PAGES) >= 0);
    // The hog is single-threaded.
    assert_eq!(event.expect_i64(net::THREAD_ID), i64::from(hog.pid()));
    assert!(event.attr_str(net::THREAD_NAME).is_some());
    assert!(event.expect_i64(net::CGROUP_ID) > 0);
    assert_eq!(event.severity_number, 13, "severity WARN");
    let body = event.body_str().unwrap_or_default();
    assert!(
        body.contains(&format!("pid {pid}")) && body.contains(cgroup.path()),
        "{body}"
    );
    let histogram = received
        .histogram_count(memory::MEMORY_RECLAIM_DURATION, &MEMCG)
        .unwrap();
    let stalls = received
        .latest_sum(memory::MEMORY_RECLAIM_STALLS, &MEMCG)
        .unwrap();
    eprintln!(
        "{} stall events of the hog, {histogram} memcg reclaims in the histogram, {stalls} \
         counted as stalls: {body}",
        events.len()
    );
    assert!(
        received.span_names().contains(memory::MEMORY_RECLAIM_STALL),
        "{}",
        received.summary()
    );

    std::fs::write("/proc/sys/vm/compact_memory", "1").unwrap();
    let manual = [(memory::MEMORY_COMPACTION_KIND, "manual")];
    let received = receiver
        .wait_for(WAIT, "the manual compactions in the histogram", |r| {
            r.histogram_count(memory::MEMORY_COMPACTION_DURATION, &manual) > Some(0)
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", agent.stderr()));
    eprintln!(
        "{:?} manual zone compactions; kswapd awake {} s",
        received.histogram_count(memory::MEMORY_COMPACTION_DURATION, &manual),
        received.latest_total(memory::MEMORY_KSWAPD_TIME, &[])
    );
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}
