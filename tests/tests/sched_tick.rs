//! End to end: the real agent and real scheduler ticks, exported over OTLP gRPC.
//!
//! A tick is late when its CPU could not take the timer interrupt on time; nothing a test can do
//! from user space reliably holds interrupts off for milliseconds, but every tick runs some
//! microseconds after it was due (interrupt delivery, more so in a VM). With the threshold (on the
//! interval between ticks, at least one tick period) at 1 µs, the ticks of a CPU this test keeps
//! busy (a busy CPU keeps its tick; an idle one stops it) are late ticks: they must arrive as
//! `huatuo.sched_tick.delay` events interrupting the test's spinning thread, with the CPU, the
//! delay, a symbolized kernel stack through the timer interrupt, a span of the delay, the per-CPU
//! counter, and the per-CPU rate limit (10 a second, far below the tick rate) counted as
//! `rate_limited`.

use huatuo_otel_tests::{
    require_root_and_bpf, AgentCommand, LogView, OtlpReceiver, Received, SpanView,
};
use huatuo_semconv::{agent as agent_names, net, sched};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bound on the agent's start and on each wait for exports (ticks come every 1-10 ms, exports
/// every second).
const WAIT: Duration = Duration::from_secs(15);

/// A thread spinning until dropped, whose tid late ticks should name.
struct Spinner {
    stop: Arc<AtomicBool>,
    tid: i64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tick-spinner".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    // SAFETY: gettid has no preconditions.
                    tx.send(i64::from(unsafe { libc::gettid() })).unwrap();
                    // Bounded: the test drops the spinner, or gives up after a minute.
                    let deadline = std::time::Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                        std::hint::spin_loop();
                    }
                }
            })
            .unwrap();
        Self {
            stop,
            tid: rx.recv().unwrap(),
            thread: Some(thread),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Late ticks that interrupted the spinner. Every tick is late at the tests' threshold, so one
/// may land between the thread's creation and its renaming, carrying its creator's name: those
/// are left out, and the name (decoded from the kernel's record) is part of what is matched.
fn ours(r: &Received, tid: i64) -> Vec<LogView> {
    let tid = tid.to_string();
    r.logs_with_event(sched::SCHED_TICK_DELAY)
        .into_iter()
        .filter(|l| l.matches(&[(net::THREAD_ID, &tid), (net::THREAD_NAME, "tick-spinner")]))
        .collect()
}

/// Events of the spinner whose span has arrived too (spans and logs are exported separately).
fn ours_with_span(r: &Received, tid: i64) -> Vec<(LogView, SpanView)> {
    let spans = r.spans();
    ours(r, tid)
        .into_iter()
        .filter_map(|l| {
            let span = spans.iter().find(|s| s.span_id == l.span_id)?;
            Some((l, span.clone()))
        })
        .collect()
}

fn rate_limited(r: &Received) -> f64 {
    let filter = [
        (agent_names::TRACER_NAME, "sched_tick"),
        (agent_names::DROP_CAUSE, "rate_limited"),
    ];
    r.latest_sum(agent_names::TRACER_RECORDS_DROPPED, &filter)
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_ticks_arrive_with_cpu_delay_task_and_stack() {
    if !require_root_and_bpf() {
        return;
    }
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["sched_tick"])
        .env("HUATUO_TRACERS__SCHED_TICK__THRESHOLD_US", "1")
        .env("HUATUO_TRACERS__SCHED_TICK__SPANS", "true")
        .start_tracer("sched_tick")
        .await
        .unwrap();

    let spinner = Spinner::start();
    let tid = spinner.tid;
    let received = receiver
        .wait_for(
            WAIT,
            "late ticks interrupting the spinner with their spans, counted, with rate-limited \
             ones counted",
            |r| {
                !ours_with_span(r, tid).is_empty()
                    && r.latest_sum(sched::SCHED_TICK_LATE_TICKS, &[])
                        .is_some_and(|c| c >= 1.0)
                    && rate_limited(r) >= 1.0
            },
        )
        .await
        .unwrap();
    drop(spinner);

    let events = ours_with_span(&received, tid);
    let (event, span) = &events[0];
    assert_eq!(
        event.expect_i64(net::PROCESS_PID),
        i64::from(std::process::id())
    );
    let cpu = event.expect_i64(sched::CPU_LOGICAL_NUMBER);
    let cpus = std::thread::available_parallelism().unwrap().get() as i64;
    assert!((0..cpus).contains(&cpu), "cpu {cpu}");
    // The threshold is on the interval (the tick period plus the delay): 1 µs passes every tick.
    let delay = event.attr_f64(sched::SCHED_TICK_DELAY_DURATION).unwrap();
    let interval = event.attr_f64(sched::SCHED_TICK_INTERVAL).unwrap();
    assert!(
        delay >= 0.0 && interval >= delay + 0.999e-3,
        "delay {delay} s, interval {interval} s"
    );
    assert_eq!(event.attr_f64(sched::SCHED_TICK_THRESHOLD), Some(1e-6));
    assert_eq!(event.severity_number, 13, "severity WARN");
    let stack = event.attr_str(sched::KERNEL_STACK).unwrap_or_default();
    // The innermost frame is the BPF program itself, loaded after the symbols were read: it
    // stays a bare address. The rest are kernel functions.
    let symbolized = stack.lines().filter(|l| l.contains("+0x")).count();
    assert!(
        symbolized >= 3
            && stack
                .lines()
                .all(|l| l.contains("+0x") || l.starts_with("0x")),
        "symbolized frames:\n{stack}"
    );
    assert!(
        stack.contains("hrtimer_interrupt"),
        "a stack through the timer interrupt:\n{stack}"
    );
    // The span of the delay, linked to the log record.
    assert_eq!(span.name, sched::SCHED_TICK_DELAY);
    let span_ns = span.end_time_unix_nano - span.start_time_unix_nano;
    assert!(
        (span_ns as f64 - delay * 1e9).abs() < 1e3,
        "span {span_ns} ns, delay {delay} s"
    );
    // Counted per CPU, at least every event of ours.
    let on_cpu = received
        .latest_sum(
            sched::SCHED_TICK_LATE_TICKS,
            &[(sched::CPU_LOGICAL_NUMBER, &cpu.to_string())],
        )
        .unwrap_or(0.0);
    assert!(on_cpu >= 1.0, "late ticks on CPU {cpu}: {on_cpu}");
    eprintln!(
        "{} event(s) of the spinner with their span; delay {:.1} us on CPU {cpu}; body: {}\nstack:\n{stack}",
        events.len(),
        delay * 1e6,
        event.body_str().unwrap_or_default()
    );
    received.assert_names_registered();

    let status = agent.terminate(WAIT).await.unwrap();
    assert!(
        status.success(),
        "agent exit {status:?}\n{}",
        agent.stderr()
    );
    receiver.stop().await;
}
