//! End to end: the real agent, a real OOM kill (a process touching four times the limit of a
//! throwaway memory cgroup), exported over OTLP gRPC as one `huatuo.oom.kill` event and the kill
//! counter of that cgroup.

use huatuo_otel_tests::memcg::MemoryCgroup;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, OtlpReceiver};
use huatuo_semconv::{container, memory, net};
use std::time::Duration;

const LIMIT: u64 = 64 << 20;
const HOG_BYTES: usize = 256 << 20;
const OOM_SCORE_ADJ: i32 = 500;
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_kill_arrives_over_otlp() {
    if !require_root_and_bpf() {
        return;
    }
    // Named like a docker container's, so the kill counter has a series of its own.
    let me = std::process::id();
    let container = format!("{me:08x}").repeat(8);
    let path = format!("/huatuo-test-{me}-oom/docker-{container}.scope");
    let cgroup = MemoryCgroup::create_at(&path, LIMIT).unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["oom"])
        .start_tracer("oom")
        .await
        .unwrap();

    let mut hog = cgroup.spawn_hog(HOG_BYTES, OOM_SCORE_ADJ).unwrap();
    let signal = tokio::task::block_in_place(|| hog.wait_killed(WAIT)).unwrap();
    assert_eq!(signal, libc::SIGKILL);
    let pid = hog.pid().to_string();
    let series = [(container::CONTAINER_ID, container.as_str())];
    let received = receiver
        .wait_for(WAIT, "the kill event and the kill counter", |r| {
            let event = r
                .logs_with_event(memory::OOM_KILL)
                .iter()
                .any(|l| l.matches(&[(memory::OOM_VICTIM_PID, &pid)]));
            let counted = r.latest_sum(memory::OOM_KILLS, &series);
            event && counted.is_some()
        })
        .await
        .unwrap();

    let events: Vec<_> = received
        .logs_with_event(memory::OOM_KILL)
        .into_iter()
        .filter(|l| l.matches(&[(memory::OOM_VICTIM_PID, &pid)]))
        .collect();
    assert_eq!(events.len(), 1, "{}", received.summary());
    let event = &events[0];
    assert_eq!(event.attr_str(memory::MEMCG_PATH), Some(cgroup.path()));
    assert_eq!(
        event.expect_i64(memory::MEMCG_ID),
        cgroup.id().unwrap() as i64
    );
    assert_eq!(event.expect_i64(memory::MEMCG_LIMIT), LIMIT as i64);
    // The kernel's reading at the kill: the hog had filled the cgroup.
    let usage = event.expect_i64(memory::MEMCG_USAGE);
    assert!(
        usage > (LIMIT / 2) as i64 && usage <= LIMIT as i64,
        "usage {usage}"
    );
    assert!(event.expect_i64(memory::MEMCG_EVENTS_OOM_KILL) >= 1);
    assert_eq!(
        event.attr_str(memory::OOM_TRIGGER_MEMCG_PATH),
        Some(cgroup.path())
    );
    // The hog's own page fault ran out of memory: it triggered the kill it died of.
    assert_eq!(event.expect_i64(net::PROCESS_PID), i64::from(hog.pid()));
    assert_eq!(
        event.attr_str(memory::OOM_VICTIM_COMM),
        event.attr_str(net::THREAD_NAME)
    );
    assert_eq!(
        event.expect_i64(memory::OOM_VICTIM_OOM_SCORE_ADJ),
        i64::from(OOM_SCORE_ADJ)
    );
    assert!(event.expect_i64(memory::OOM_VICTIM_RSS_ANON) > (LIMIT / 2) as i64);
    assert!(
        event.expect_i64(memory::HOST_MEMORY_TOTAL)
            > event.expect_i64(memory::HOST_MEMORY_AVAILABLE)
    );
    assert_eq!(event.severity_number, 17, "severity ERROR");
    let body = event.body_str().unwrap_or_default();
    assert!(
        body.contains(&format!("pid {pid}")) && body.contains(cgroup.path()),
        "{body}"
    );
    eprintln!("victim pid {pid}, limit {LIMIT}, usage at the kill {usage}: {body}");

    // The cgroup is new, so its series counts exactly this kill.
    assert_eq!(
        received.latest_sum(memory::OOM_KILLS, &series),
        Some(1.0),
        "{}",
        received.summary()
    );
    // Bounded series: the memory cgroup path is on the event only.
    let point = received.latest_point(memory::OOM_KILLS, &series).unwrap();
    assert_eq!(point.attr(memory::MEMCG_PATH), None);
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}
