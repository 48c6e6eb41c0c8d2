//! End to end: the real agent, a thread of this test really blocked in state D (a second writer
//! waiting for the inode lock of a file whose FUSE WRITE never completes), reported by the
//! kernel's hung-task detector with `kernel.hung_task_timeout_secs` lowered to 2 s, exported over
//! OTLP gRPC as a `huatuo.hung_task` event and the report counter.

use huatuo_otel_tests::cgroup::own_cgroup_id;
use huatuo_otel_tests::dstate::{DStateTasks, HungTaskDetector};
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, LogView, OtlpReceiver};
use huatuo_semconv::{net, sched};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn reports_writer(event: &LogView, tid: &str) -> bool {
    event.matches(&[(net::THREAD_ID, tid)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_in_state_d_is_reported_with_its_stack() {
    if !require_root_and_bpf() {
        return;
    }
    let _detector = HungTaskDetector::with_timeout(2).unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        // Any task on the host blocked for 2 s is reported too; with no back-off, the report of
        // ours carries the blocked tasks' stacks whatever came first.
        .env("HUATUO_TRACERS__HUNGTASK__BACKOFF_SECS", "0")
        .only_tracers(&["hungtask"])
        .start_tracer("hungtask")
        .await
        .unwrap();

    let tasks = tokio::task::block_in_place(DStateTasks::start).unwrap();
    let tid = tasks.blocked_tid().to_string();
    let received = receiver
        .wait_for(
            WAIT,
            "a hung-task report of writer 2 and the counter",
            |r| {
                let reported = r
                    .logs_with_event(sched::HUNG_TASK)
                    .iter()
                    .any(|l| reports_writer(l, &tid));
                let counted = r.latest_sum(sched::HUNG_TASKS, &[]);
                reported && counted.is_some_and(|c| c >= 1.0)
            },
        )
        .await
        .unwrap();
    // Release the writers before asserting, so a failure does not leave them blocked longer.
    tokio::task::block_in_place(|| drop(tasks));

    let events: Vec<_> = received
        .logs_with_event(sched::HUNG_TASK)
        .into_iter()
        .filter(|l| reports_writer(l, &tid))
        .collect();
    let event = &events[0];
    assert_eq!(
        event.expect_i64(net::PROCESS_PID),
        i64::from(std::process::id())
    );
    assert_eq!(event.attr_str(net::THREAD_NAME), Some("dstate-writer2"));
    assert_eq!(event.expect_i64(sched::HUNG_TASK_TIMEOUT), 2);
    // From the kernel's bookkeeping (tp_btf, with CONFIG_HZ from /proc/config.gz): reported past
    // the timeout.
    let blocked = event.attr_f64(sched::HUNG_TASK_BLOCKED);
    if std::path::Path::new("/proc/config.gz").exists() {
        let blocked = blocked.expect("blocked time with the kernel config readable");
        assert!(blocked >= 2.0, "blocked {blocked} s");
    }
    assert_eq!(event.severity_number, 17, "severity ERROR");
    assert_eq!(
        event.expect_i64(net::CGROUP_ID),
        own_cgroup_id().unwrap() as i64,
        "the hung task's cgroup (this test's)"
    );
    // The lock functions themselves are scheduler text, which kernel stack traces of a sleeping
    // task leave out on most kernels: the innermost frame shown is then the FUSE write path that
    // took the inode lock.
    let stack = event.attr_str(sched::TASK_STACK).unwrap_or_default();
    assert!(
        ["rwsem", "down_write", "fuse"]
            .iter()
            .any(|f| stack.contains(f)),
        "stack of a writer waiting for the inode lock:\n{stack}"
    );
    assert!(event.expect_i64(sched::BLOCKED_TASKS) >= 1);
    let blocked = event.attr_str(sched::BLOCKED_STACKS).unwrap_or_default();
    assert!(
        blocked.contains(&format!("{tid} (dstate-writer2)")),
        "writer 2 among the blocked tasks:\n{blocked}"
    );
    assert!(blocked.len() <= 64 * 1024);
    eprintln!(
        "writer 2 tid {tid} reported {} time(s); body: {}\nstack:\n{stack}",
        events.len(),
        event.body_str().unwrap_or_default()
    );

    let reports = received.latest_sum(sched::HUNG_TASKS, &[]).unwrap();
    assert!(reports >= events.len() as f64, "counter {reports}");
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}
