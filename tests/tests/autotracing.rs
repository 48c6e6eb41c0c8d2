//! End to end: autotracing captures on the real host, exported over OTLP gRPC as one span per
//! capture with the captured context as log records linked to it.
//!
//! - dload: a thread of this test really in state D (FUSE-stalled writer) raises the host's
//!   D-state load over a lowered threshold; the capture lists it with its stack, and while the
//!   load stays high the cooldown holds further captures back (they are only counted).
//! - memburst: this test grows its anonymous memory fast; with a short window and a low share,
//!   a capture lists this process among the largest resident sets.
//! - cpusys: threads of this test reading /dev/zero in a loop raise the host's system CPU; the
//!   capture's folded stacks show them in the kernel's read path.
//! - cpuidle: a process burning CPU in user space in a cgroup named like a docker container is
//!   captured: the span carries the container, the folded stacks the burning function.
//! - iotracer: a child process reading a throwaway loop device with O_DIRECT keeps it busy over a
//!   lowered utilisation threshold; the capture names its pid with its bytes and latency, and the
//!   device among its open files; anomalies during the capture are only counted (busy).
//! - waitrate: CPU burners in cgroups named like docker containers, all pinned to one CPU. A
//!   victim container competing with another one waits behind it (external wait, in the
//!   capture, its competitor records and the metrics); one whose own two burners compete waits
//!   behind itself (inner); one allowed 10% of a CPU by CFS bandwidth waits throttled.

use huatuo_otel_tests::cpu::BurningContainer;
use huatuo_otel_tests::dstate::DStateTasks;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, OtlpReceiver, Received};
use huatuo_semconv::{agent, autotracing as names, container, net, system};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(40);

fn trigger_count(received: &Received, tracer: &str, outcome: &str) -> f64 {
    received
        .latest_sum(
            names::TRIGGERS,
            &[(agent::TRACER_NAME, tracer), (names::OUTCOME, outcome)],
        )
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dload_captures_the_stacks_of_tasks_in_state_d_once_per_cooldown() {
    if !require_root_and_bpf() {
        return;
    }
    // Blocked before the agent starts, so the first sample over the threshold sees it.
    let tasks = tokio::task::block_in_place(DStateTasks::start).unwrap();
    let tid = tasks.blocked_tid().to_string();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["dload"])
        .env("HUATUO_EXPORTERS__METRICS_INTERVAL_SECS", "1")
        .env("HUATUO_TRACERS__DLOAD__INTERVAL_SECS", "1")
        // One task in state D adds 1 - e^(-1/60) ~ 0.016 per second to the 1-minute average.
        .env("HUATUO_TRACERS__DLOAD__THRESHOLD", "0.01")
        .start_tracer("dload")
        .await
        .unwrap();

    let received = receiver
        .wait_for(
            WAIT,
            "a dload capture, then triggers held back by the cooldown",
            |r| {
                let captured = r.spans().iter().any(|s| s.name == names::DLOAD_CAPTURE);
                captured && trigger_count(r, "dload", "cooldown") >= 2.0
            },
        )
        .await
        .unwrap();
    tokio::task::block_in_place(|| drop(tasks));

    let spans: Vec<_> = received
        .spans()
        .into_iter()
        .filter(|s| s.name == names::DLOAD_CAPTURE)
        .collect();
    assert_eq!(spans.len(), 1, "one capture per cooldown");
    let span = &spans[0];
    assert_eq!(span.attr_str(names::REASON), Some("dstate_load"));
    assert!(span.attr_f64(names::DLOAD_AVG).unwrap() > 0.01);
    assert_eq!(span.attr_f64(names::DLOAD_THRESHOLD), Some(0.01));
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    assert_eq!(trigger_count(&received, "dload", "captured"), 1.0);

    let stacks = received.logs_with_event(names::DLOAD_STACKS);
    let linked: Vec<_> = stacks
        .iter()
        .filter(|l| l.trace_id == span.trace_id && l.span_id == span.span_id)
        .collect();
    assert_eq!(
        linked.len(),
        1,
        "the captured stacks belong to the capture span"
    );
    let text = linked[0]
        .attr_str(names::DLOAD_STACK_TEXT)
        .unwrap_or_default();
    assert!(
        text.contains(&format!("{tid} (dstate-writer2)")),
        "the blocked writer among the captured tasks:\n{text}"
    );
    assert!(
        text.contains("fuse") || text.contains("down_write"),
        "{text}"
    );
    // The blocked writer sleeps in some kernel function: its wchan names it.
    let reasons = linked[0]
        .attr_str(names::DLOAD_WAIT_REASONS)
        .unwrap_or_default();
    assert!(
        reasons.lines().any(|l| !l.starts_with("? ")
            && l.split(' ')
                .nth(1)
                .is_some_and(|n| n.parse::<u64>().is_ok())),
        "wait reasons:\n{reasons}"
    );
    assert!(received.latest_gauge(names::DLOAD_LOAD, &[]).is_some());
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memburst_lists_the_process_whose_memory_grew() {
    if !require_root_and_bpf() {
        return;
    }
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["memburst"])
        .env("HUATUO_TRACERS__MEMBURST__INTERVAL_SECS", "1")
        .env("HUATUO_TRACERS__MEMBURST__WINDOW_SAMPLES", "3")
        // Any growth over the window: on a busy host other processes' memory moves too, and
        // the test needs a capture after this process's burst, not the rule (unit-tested).
        .env("HUATUO_TRACERS__MEMBURST__DELTA_PERCENT", "0")
        .env("HUATUO_TRACERS__MEMBURST__ANON_SHARE_PERCENT", "1")
        // Other processes on a busy host may burst first: capture every burst.
        .env("HUATUO_TRACERS__MEMBURST__COOLDOWN_SECS", "0")
        .start_tracer("memburst")
        .await
        .unwrap();
    // Let the window fill, then grow by 3 GiB, touched so it is resident.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let burst: Vec<u8> = tokio::task::block_in_place(|| vec![1u8; 3 << 30]);
    let pid = std::process::id().to_string();
    // Captures before the burst may list this process too, with less memory.
    let after_burst = |r: &Received| {
        r.logs_with_event(names::MEMBURST_PROCESS)
            .into_iter()
            .find(|l| {
                l.matches(&[(net::PROCESS_PID, &pid)])
                    && l.attr_i64(names::PROCESS_RSS).unwrap_or(0) >= 3 << 30
            })
    };
    let span_of = |r: &Received, log: &huatuo_otel_tests::LogView| {
        r.spans()
            .into_iter()
            .find(|s| s.trace_id == log.trace_id && s.span_id == log.span_id)
    };
    let received = receiver
        .wait_for(WAIT, "a memburst capture span listing this process", |r| {
            after_burst(r).is_some_and(|log| span_of(r, &log).is_some())
        })
        .await
        .unwrap();
    assert_eq!(burst[burst.len() - 1], 1);
    drop(burst);

    let ours = after_burst(&received).unwrap();
    assert!(ours.expect_i64(names::RANK) >= 1);
    let span = span_of(&received, &ours).unwrap();
    assert_eq!(span.name, names::MEMBURST_CAPTURE);
    assert_eq!(span.attr_str(names::REASON), Some("anon_growth"));
    assert!(
        span.attr_i64(names::ANON_BYTES).unwrap()
            >= span.attr_i64(names::ANON_OLDEST_BYTES).unwrap()
    );
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}

/// Threads spending their time in the kernel until dropped.
struct SystemCpuBurners {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl SystemCpuBurners {
    fn start(count: usize) -> Self {
        use std::io::Read;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name("cpusys-burner".into())
                    .spawn(move || {
                        let mut zero = std::fs::File::open("/dev/zero").unwrap();
                        let mut buffer = vec![0u8; 1 << 20];
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            zero.read_exact(&mut buffer).unwrap();
                        }
                    })
                    .unwrap()
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for SystemCpuBurners {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpusys_samples_the_stacks_of_a_system_cpu_spike() {
    if !require_root_and_bpf() {
        return;
    }
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["cpusys"])
        .env("HUATUO_TRACERS__CPUSYS__INTERVAL_SECS", "1")
        // Other work on the host shares the CPUs with the burners (low thresholds) and may
        // spike first (no cooldown: the test looks for the capture that saw the burners).
        .env("HUATUO_TRACERS__CPUSYS__SYS_PERCENT_THRESHOLD", "5")
        .env("HUATUO_TRACERS__CPUSYS__SYS_PERCENT_DELTA_THRESHOLD", "2")
        .env("HUATUO_TRACERS__CPUSYS__COOLDOWN_SECS", "0")
        .env("HUATUO_TRACERS__CPUSYS__CAPTURE_SECS", "2")
        .start_tracer("cpusys")
        .await
        .unwrap();
    // Two samples of the host first, so the spike is a rise.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let burners = SystemCpuBurners::start(2);
    let burner_lines = |log: &huatuo_otel_tests::LogView| -> Vec<String> {
        log.attr_str(names::PROFILE_FOLDED)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("cpusys-burner;"))
            .map(str::to_owned)
            .collect()
    };
    let span_of = |r: &Received, log: &huatuo_otel_tests::LogView| {
        r.spans()
            .into_iter()
            .find(|s| s.trace_id == log.trace_id && s.span_id == log.span_id)
    };
    let profile_with_burners = |r: &Received| {
        r.logs_with_event(names::CPU_PROFILE)
            .into_iter()
            .find(|l| !burner_lines(l).is_empty() && span_of(r, l).is_some())
    };
    let received = receiver
        .wait_for(WAIT, "a cpusys capture that sampled the burners", |r| {
            profile_with_burners(r).is_some()
        })
        .await
        .unwrap();
    drop(burners);

    let profile = profile_with_burners(&received).unwrap();
    let span = span_of(&received, &profile).unwrap();
    assert_eq!(span.name, names::CPUSYS_CAPTURE);
    assert_eq!(span.attr_str(names::REASON), Some("system_cpu"));
    assert!(span.attr_f64(names::SYS_PERCENT).unwrap() > 5.0);
    assert!(span.attr_f64(names::SYS_PERCENT_DELTA).unwrap() > 2.0);
    assert!(span.attr_i64(names::PROFILE_SAMPLES).unwrap() > 0);
    let ours = burner_lines(&profile);
    assert!(
        ours.iter().any(
            |l| ["read_zero_[k]", "read_iter_zero_[k]", "iov_iter_zero_[k]"]
                .iter()
                .any(|f| l.contains(f))
        ),
        "the burners in the kernel's /dev/zero read path:\n{}",
        ours.join("\n")
    );
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}

const CONTAINER_ID: &str = "c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789";

/// [`BurningContainer::start`] with this package's `cpu-burner`.
fn burning_container(
    group: &str,
    id: &str,
    burners: usize,
    cpu: Option<usize>,
) -> anyhow::Result<BurningContainer> {
    BurningContainer::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_cpu-burner")),
        group,
        id,
        burners,
        cpu,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpuidle_samples_the_stacks_of_a_container_whose_cpu_spikes() {
    if !require_root_and_bpf() {
        return;
    }
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["cpuidle"])
        .env("HUATUO_TRACERS__CPUIDLE__INTERVAL_SECS", "1")
        // One busy thread is 50% of this 2-CPU host, much less when other work shares the CPUs.
        .env("HUATUO_TRACERS__CPUIDLE__USER_PERCENT_THRESHOLD", "2")
        .env("HUATUO_TRACERS__CPUIDLE__USER_PERCENT_DELTA_THRESHOLD", "1")
        .env("HUATUO_TRACERS__CPUIDLE__CAPTURE_SECS", "2")
        .start_tracer("cpuidle")
        .await
        .unwrap();
    let mut container =
        tokio::task::block_in_place(|| burning_container("cpuidle", CONTAINER_ID, 1, None))
            .unwrap();
    // HuaTuo's rule looks for a rise between two samples: let the agent see it idle first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    container.burn();
    let span_of = |r: &Received, log: &huatuo_otel_tests::LogView| {
        r.spans()
            .into_iter()
            .find(|s| s.trace_id == log.trace_id && s.span_id == log.span_id)
    };
    let profile_of_container = |r: &Received| {
        r.logs_with_event(names::CPU_PROFILE).into_iter().find(|l| {
            span_of(r, l).is_some_and(|s| s.attr_str(container::CONTAINER_ID) == Some(CONTAINER_ID))
        })
    };
    let received = receiver
        .wait_for(WAIT, "a cpuidle capture of the burning container", |r| {
            profile_of_container(r).is_some()
        })
        .await
        .unwrap();
    drop(container);

    let profile = profile_of_container(&received).unwrap();
    let span = span_of(&received, &profile).unwrap();
    assert_eq!(span.name, names::CPUIDLE_CAPTURE);
    assert_eq!(span.attr_str(names::REASON), Some("container_cpu"));
    assert!(span.attr_f64(names::USER_PERCENT).unwrap() > 2.0);
    let folded = profile.attr_str(names::PROFILE_FOLDED).unwrap_or_default();
    assert!(
        folded.lines().all(|l| l.starts_with("cpu-burner;")),
        "only the container's tasks are sampled:\n{folded}"
    );
    assert!(
        folded.contains("huatuo_burn_cpu_in_user_space"),
        "the burning function is named:\n{folded}"
    );
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}

/// A child process reading a device with O_DIRECT until dropped.
struct DirectReader(std::process::Child);

impl DirectReader {
    fn start(device: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_direct-reader"))
            .arg(device)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .context("starting direct-reader")?;
        Ok(Self(child))
    }
}

impl Drop for DirectReader {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iotracer_names_the_process_reading_a_busy_disk() {
    if !require_root_and_bpf() {
        return;
    }
    let disk = huatuo_otel_tests::loopdev::LoopDevice::create(256).unwrap();
    let name = disk.name();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["iotracer"])
        .env("HUATUO_EXPORTERS__METRICS_INTERVAL_SECS", "1")
        .env("HUATUO_TRACERS__IOTRACER__INTERVAL_SECS", "1")
        // Only this test's disk: the host's own disks are busy or not at the others' whim.
        .env(
            "HUATUO_TRACERS__IOTRACER__INCLUDE_DEVICES",
            format!("[\"^{name}$\"]"),
        )
        .env("HUATUO_TRACERS__IOTRACER__UTIL_PERCENT_THRESHOLD", "1")
        .env("HUATUO_TRACERS__IOTRACER__CAPTURE_SECS", "3")
        .start_tracer("iotracer")
        .await
        .unwrap();
    let reader = DirectReader::start(disk.path()).unwrap();
    let reader_pid = reader.0.id().to_string();
    let span_of = |r: &Received, log: &huatuo_otel_tests::LogView| {
        r.spans()
            .into_iter()
            .find(|s| s.trace_id == log.trace_id && s.span_id == log.span_id)
    };
    let reader_record = |r: &Received| {
        r.logs_with_event(names::IOTRACER_PROCESS)
            .into_iter()
            .find(|l| l.matches(&[(net::PROCESS_PID, &reader_pid)]) && span_of(r, l).is_some())
    };
    let received = receiver
        .wait_for(
            WAIT,
            "an iotracer capture naming the reader, and a trigger during it held back",
            |r| reader_record(r).is_some() && trigger_count(r, "iotracer", "busy") >= 1.0,
        )
        .await
        .unwrap();
    drop(reader);

    let record = reader_record(&received).unwrap();
    let span = span_of(&received, &record).unwrap();
    assert_eq!(span.name, names::IOTRACER_CAPTURE);
    assert_eq!(span.attr_str(system::SYSTEM_DEVICE), Some(name.as_str()));
    assert_eq!(span.attr_str(names::REASON), Some("io_util"));
    assert!(span.attr_f64(names::DISK_UTIL_PERCENT).unwrap() > 1.0);
    assert_eq!(span.attr_f64(names::DISK_UTIL_PERCENT_THRESHOLD), Some(1.0));
    assert!(span.attr_i64(names::IOTRACER_REQUESTS).unwrap() > 0);
    assert_eq!(span.attr_i64(names::IOTRACER_UNCOUNTED), Some(0));
    assert_eq!(
        record.attr_str(names::PROCESS_EXECUTABLE_NAME),
        Some("direct-reader")
    );
    assert_eq!(record.attr_str(system::SYSTEM_DEVICE), Some(name.as_str()));
    assert!(record.expect_i64(names::IOTRACER_READ_BYTES) >= 4096);
    assert!(record.expect_i64(names::IOTRACER_PROCESS_REQUESTS) > 0);
    assert!(record.expect_i64(names::IOTRACER_Q2C_MAX_US) > 0);
    assert!(record.expect_i64(names::IOTRACER_D2C_MAX_US) > 0);
    assert!(
        record.expect_i64(names::IOTRACER_Q2C_AVG_US)
            >= record.expect_i64(names::IOTRACER_D2C_AVG_US),
        "a request waits for its issue before the device serves it"
    );
    let files = record.attr_str(names::IOTRACER_FILES).unwrap_or_default();
    assert!(
        files.lines().any(|f| f == disk.path().to_string_lossy()),
        "the reader's open files on the disk: {files:?}"
    );
    assert_eq!(trigger_count(&received, "iotracer", "captured"), 1.0);
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}

const VICTIM_ID: &str = "7a17e0123456789abcdef0123456789abcdef0123456789abcdef0123456789a";
const NOISY_ID: &str = "b0b0b0123456789abcdef0123456789abcdef0123456789abcdef0123456789b";
const SELFISH_ID: &str = "5e1f15123456789abcdef0123456789abcdef0123456789abcdef0123456789c";
/// Every burner of the waitrate tests runs on this CPU.
const CONTENDED_CPU: usize = 0;

async fn waitrate_agent(receiver: &OtlpReceiver) -> huatuo_otel_tests::AgentProcess {
    AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["waitrate"])
        .env("HUATUO_EXPORTERS__METRICS_INTERVAL_SECS", "1")
        .env("HUATUO_TRACERS__WAITRATE__INTERVAL_SECS", "1")
        // Two tasks sharing a CPU wait half of the time each: 0.5 per task.
        .env("HUATUO_TRACERS__WAITRATE__THRESHOLD", "0.2")
        .env("HUATUO_TRACERS__WAITRATE__CAPTURE_SECS", "2")
        .start_tracer("waitrate")
        .await
        .unwrap()
}

/// The capture span of `container_id` and its competitor records, once one of them is `task`.
fn waitrate_capture(
    r: &Received,
    container_id: &str,
    task: &[String],
) -> Option<(huatuo_otel_tests::SpanView, Vec<huatuo_otel_tests::LogView>)> {
    r.spans()
        .into_iter()
        .filter(|s| {
            s.name == names::WAITRATE_CAPTURE
                && s.attr_str(container::CONTAINER_ID) == Some(container_id)
        })
        .find_map(|span| {
            let competitors: Vec<_> = r
                .logs_with_event(names::WAITRATE_COMPETITOR)
                .into_iter()
                .filter(|l| l.trace_id == span.trace_id && l.span_id == span.span_id)
                .collect();
            competitors
                .iter()
                .any(|l| task.iter().any(|t| l.matches(&[(net::THREAD_ID, t)])))
                .then_some((span, competitors))
        })
}

fn wait_time(r: &Received, container_id: &str, kind: &str) -> f64 {
    r.latest_sum(
        names::WAIT_TIME,
        &[
            (container::CONTAINER_ID, container_id),
            (names::WAIT_KIND, kind),
        ],
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waitrate_shows_a_container_waiting_behind_another_one() {
    if !require_root_and_bpf() {
        return;
    }
    let (mut victim, mut noisy) = tokio::task::block_in_place(|| {
        let victim = burning_container("waitrate", VICTIM_ID, 1, Some(CONTENDED_CPU))?;
        let noisy = burning_container("waitrate", NOISY_ID, 1, Some(CONTENDED_CPU))?;
        anyhow::Ok((victim, noisy))
    })
    .unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = waitrate_agent(&receiver).await;
    victim.burn();
    noisy.burn();
    let noisy_pids = noisy.pids();
    let received = receiver
        .wait_for(
            WAIT,
            "a waitrate capture of the victim naming the noisy burner, and its external wait",
            |r| {
                waitrate_capture(r, VICTIM_ID, &noisy_pids).is_some()
                    && wait_time(r, VICTIM_ID, "external") > 0.0
            },
        )
        .await
        .unwrap();
    drop((victim, noisy));

    let (span, competitors) = waitrate_capture(&received, VICTIM_ID, &noisy_pids).unwrap();
    assert_eq!(span.attr_str(names::REASON), Some("container_wait"));
    assert!(span.attr_f64(names::WAIT_RATE).unwrap() > 0.2);
    assert_eq!(span.attr_f64(names::WAIT_RATE_THRESHOLD), Some(0.2));
    assert_eq!(span.attr_i64(names::CAPTURE_DURATION), Some(2));
    let external = span.attr_f64(names::CAPTURE_WAIT_EXTERNAL).unwrap();
    let inner = span.attr_f64(names::CAPTURE_WAIT_INNER).unwrap();
    // Its one task can only wait behind others.
    assert!(
        external > 0.2 && external > inner,
        "external {external} s, inner {inner} s"
    );
    let noisy_record = competitors
        .iter()
        .find(|l| l.matches(&[(net::THREAD_ID, &noisy_pids[0])]))
        .unwrap();
    assert_eq!(noisy_record.attr_str(names::WAIT_KIND), Some("external"));
    assert_eq!(
        noisy_record.attr_str(container::CONTAINER_ID),
        Some(NOISY_ID)
    );
    assert_eq!(noisy_record.attr_str(net::THREAD_NAME), Some("cpu-burner"));
    assert!(noisy_record.attr_f64(names::COMPETITOR_WAIT).unwrap() > 0.0);
    assert!(wait_time(&received, VICTIM_ID, "external") > wait_time(&received, VICTIM_ID, "inner"));
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waitrate_shows_a_container_waiting_behind_its_own_tasks() {
    if !require_root_and_bpf() {
        return;
    }
    let mut selfish = tokio::task::block_in_place(|| {
        burning_container("waitrate-inner", SELFISH_ID, 2, Some(CONTENDED_CPU))
    })
    .unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = waitrate_agent(&receiver).await;
    selfish.burn();
    let pids = selfish.pids();
    let received = receiver
        .wait_for(
            WAIT,
            "a waitrate capture of the container naming its own burners, and its inner wait",
            |r| {
                waitrate_capture(r, SELFISH_ID, &pids).is_some()
                    && wait_time(r, SELFISH_ID, "inner") > 0.0
            },
        )
        .await
        .unwrap();
    drop(selfish);

    let (span, competitors) = waitrate_capture(&received, SELFISH_ID, &pids).unwrap();
    let inner = span.attr_f64(names::CAPTURE_WAIT_INNER).unwrap();
    // Two burners on one CPU: each waits about half of the 2 s capture behind the other, less
    // what other work on the host takes from that CPU.
    assert!(inner > 0.2, "inner {inner} s");
    let sibling = competitors
        .iter()
        .find(|l| pids.iter().any(|p| l.matches(&[(net::THREAD_ID, p)])))
        .unwrap();
    assert_eq!(sibling.attr_str(names::WAIT_KIND), Some("inner"));
    assert_eq!(sibling.attr_str(container::CONTAINER_ID), Some(SELFISH_ID));
    assert!(wait_time(&received, SELFISH_ID, "inner") > 0.0);
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}

const THROTTLED_ID: &str = "7e7e7e123456789abcdef0123456789abcdef0123456789abcdef0123456789d";

/// A CFS bandwidth limit of 10% of one CPU on a process, in the v1 cpu hierarchy (hybrid
/// hosts, like this one) or on its v2 container cgroup; dropping it removes the v1 cgroup.
struct CpuQuota {
    v1_dir: Option<std::path::PathBuf>,
}

impl CpuQuota {
    fn apply(container: &BurningContainer) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let mounts = std::fs::read_to_string("/proc/self/mounts")?;
        let v1_root = mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup") && f.get(3)?.split(',').any(|o| o == "cpu"))
                .then(|| std::path::PathBuf::from(f[1]))
        });
        let write = |dir: &std::path::Path, file: &str, value: &str| {
            std::fs::write(dir.join(file), value)
                .with_context(|| format!("writing {value:?} to {}", dir.join(file).display()))
        };
        if let Some(root) = v1_root {
            let dir = root.join(format!(
                "huatuo-test-waitrate-throttle-{}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir)?;
            let quota = Self {
                v1_dir: Some(dir.clone()),
            };
            write(&dir, "cpu.cfs_period_us", "100000")?;
            write(&dir, "cpu.cfs_quota_us", "10000")?;
            for pid in container.pids() {
                write(&dir, "cgroup.procs", &pid)?;
            }
            return Ok(quota);
        }
        // v2: the controller must be enabled down to the container's cgroup.
        let group = container.dir().parent().context("the container's group")?;
        write(
            group.parent().context("the hierarchy")?,
            "cgroup.subtree_control",
            "+cpu",
        )?;
        write(group, "cgroup.subtree_control", "+cpu")?;
        write(container.dir(), "cpu.max", "10000 100000")?;
        Ok(Self { v1_dir: None })
    }
}

impl Drop for CpuQuota {
    fn drop(&mut self) {
        let Some(dir) = &self.v1_dir else { return };
        // Its tasks (killed by the container's guard, dropped first) must be gone first.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::remove_dir(dir).is_err() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waitrate_shows_a_container_throttled_by_its_cpu_quota() {
    if !require_root_and_bpf() {
        return;
    }
    let (mut throttled, quota) = tokio::task::block_in_place(|| {
        let container = burning_container("waitrate-throttle", THROTTLED_ID, 1, None)?;
        let quota = CpuQuota::apply(&container)?;
        anyhow::Ok((container, quota))
    })
    .unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = waitrate_agent(&receiver).await;
    throttled.burn();
    let span_of = |r: &Received| {
        r.spans().into_iter().find(|s| {
            s.name == names::WAITRATE_CAPTURE
                && s.attr_str(container::CONTAINER_ID) == Some(THROTTLED_ID)
        })
    };
    let received = receiver
        .wait_for(
            WAIT,
            "a waitrate capture of the throttled container, and its throttle wait",
            |r| span_of(r).is_some() && wait_time(r, THROTTLED_ID, "throttle") > 0.0,
        )
        .await
        .unwrap();
    tokio::task::block_in_place(|| drop((throttled, quota)));

    let span = span_of(&received).unwrap();
    let throttle = span.attr_f64(names::CAPTURE_WAIT_THROTTLE).unwrap();
    // Allowed 10% of a CPU, its one burner waits throttled about 90% of the 2 s capture.
    assert!(throttle > 1.0, "throttle {throttle} s");
    assert!(span.attr_f64(names::WAIT_RATE_THROTTLE).unwrap() > 0.2);
    assert!(wait_time(&received, THROTTLED_ID, "throttle") > 1.0);
    received.assert_names_registered();

    agent.terminate_cleanly(WAIT).await;
    receiver.stop().await;
}
