//! Host metric collectors end to end, through the agent binary and OTLP: values read from a
//! captured fixture tree (`--procfs-prefix`), a failing collector next to healthy ones, and the
//! real host's procfs read at the same moment as the agent, and the flushes of fsyncs on a loop
//! device. No BPF: the event tracers are off.

use huatuo_otel_tests::loopdev::LoopDevice;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, AgentProcess, OtlpReceiver, Received};
use huatuo_semconv::{agent as agent_names, collector, net, system as names};
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const COLLECTORS: [&str; 11] = [
    "cpu",
    "loadavg",
    "memory",
    "vmstat",
    "buddyinfo",
    "pressure",
    "diskio",
    "netdev",
    "netstat",
    "sockstat",
    "arp",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join("proc")
}

/// The agent with only its collectors, exporting every second to `receiver`.
fn collectors_only(receiver: &OtlpReceiver, procfs: Option<&Path>) -> AgentProcess {
    let mut command = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&[]);
    if let Some(procfs) = procfs {
        command = command.arg("--procfs-prefix").arg(procfs);
    }
    command.spawn().unwrap()
}

fn fixture_value(procfs: &Path, file: &str, key: &str) -> f64 {
    let text = std::fs::read_to_string(procfs.join(file)).unwrap();
    let line = text
        .lines()
        .find(|l| l.split_ascii_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("{key} not in {file}"));
    line.split_ascii_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_values_arrive_over_otlp_under_their_names() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let procfs = fixture("host-6.18");
    let mut agent = collectors_only(&receiver, Some(&procfs));
    let mem_total = fixture_value(&procfs, "meminfo", "MemTotal:") * 1024.0;
    let received = receiver
        .wait_for(WAIT, "a cycle of every collector", |r| {
            COLLECTORS.iter().all(|c| {
                r.latest_gauge(
                    collector::COLLECTOR_POINTS,
                    &[(collector::COLLECTOR_NAME, c)],
                )
                .is_some_and(|points| points > 0.0)
            }) && r.latest_sum(names::SYSTEM_CPU_TIME, &[]).is_some()
        })
        .await
        .unwrap();
    received.assert_names_registered();

    assert_eq!(
        received.latest_sum_i64(names::SYSTEM_MEMORY_LIMIT, &[]),
        Some(mem_total as i64),
        "MemTotal in bytes, as an up-down counter"
    );
    let eth0_rx = [
        (net::NETWORK_INTERFACE_NAME, "eth0"),
        (names::NETWORK_IO_DIRECTION, "receive"),
    ];
    assert_eq!(
        received.latest_sum_i64(names::SYSTEM_NETWORK_IO, &eth0_rx),
        Some(456603235)
    );
    let user = received
        .latest_sum(names::SYSTEM_CPU_TIME, &[(names::CPU_MODE, "user")])
        .unwrap();
    assert_eq!(user, fixture_cpu_ticks(&procfs, 0) / 100.0);
    assert_eq!(
        received.latest_sum_i64(
            names::NETSTAT_EVENTS,
            &[(names::NETSTAT_KEY, "Tcp_RetransSegs")]
        ),
        Some(13)
    );
    assert_eq!(
        received.latest_gauge(names::LOAD_AVERAGE_15M, &[]),
        Some(fixture_loadavg(&procfs, 2))
    );
    assert_eq!(
        received.latest_sum_i64(
            names::SYSTEM_DISK_OPERATIONS,
            &[
                (names::SYSTEM_DEVICE, "vda"),
                (names::DISK_IO_DIRECTION, "write")
            ]
        ),
        Some(157340)
    );
    assert!(
        received
            .points(names::SYSTEM_DISK_IO, &[(names::SYSTEM_DEVICE, "loop0")])
            .is_empty(),
        "loop devices are excluded by default"
    );
    for point in received.points(names::SYSTEM_CPU_TIME, &[]) {
        assert!(
            matches!(
                point.kind,
                huatuo_otel_tests::MetricKind::Sum {
                    monotonic: true,
                    ..
                }
            ),
            "system.cpu.time is a monotonic sum: {:?}",
            point.kind
        );
    }
    let status = agent.terminate(WAIT).await.unwrap();
    assert!(status.success(), "{}", agent.stderr());
    receiver.stop().await;
}

fn fixture_cpu_ticks(procfs: &Path, column: usize) -> f64 {
    let text = std::fs::read_to_string(procfs.join("stat")).unwrap();
    let cpu = text.lines().next().unwrap();
    cpu.split_ascii_whitespace()
        .nth(column + 1)
        .unwrap()
        .parse()
        .unwrap()
}

fn fixture_loadavg(procfs: &Path, column: usize) -> f64 {
    let text = std::fs::read_to_string(procfs.join("loadavg")).unwrap();
    text.split_ascii_whitespace()
        .nth(column)
        .unwrap()
        .parse()
        .unwrap()
}

/// A tree whose vmstat is garbage and which has no pressure directory: vmstat fails and is
/// restarted (counted in `huatuo.collector.errors`), pressure is unsupported, the others export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_collector_is_reported_and_the_others_keep_running() {
    let tree = tempfile::tempdir().unwrap();
    copy_tree(&fixture("handmade-old-formats"), tree.path());
    std::fs::write(tree.path().join("vmstat"), "pgfault not-a-number\n").unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = collectors_only(&receiver, Some(tree.path()));
    let state = |name, state| {
        [
            (agent_names::TRACER_NAME, name),
            (agent_names::TRACER_STATE, state),
        ]
    };
    let received = receiver
        .wait_for(
            WAIT,
            "vmstat failing, pressure unsupported, memory exported",
            |r| {
                r.latest_sum_i64(
                    collector::COLLECTOR_ERRORS,
                    &[(collector::COLLECTOR_NAME, "vmstat")],
                )
                .is_some_and(|errors| errors >= 1)
                    && r.latest_gauge(
                        agent_names::TRACER_STATUS,
                        &state("pressure", "unsupported"),
                    ) == Some(1.0)
                    && r.latest_gauge(agent_names::TRACER_STATUS, &state("memory", "running"))
                        == Some(1.0)
                    && r.latest_sum_i64(names::SYSTEM_MEMORY_LIMIT, &[]).is_some()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        received.latest_gauge(agent_names::TRACER_STATUS, &state("vmstat", "restarting")),
        Some(1.0)
    );
    assert!(received.points(names::VMSTAT_EVENTS, &[]).is_empty());
    assert_eq!(
        received.latest_sum_i64(names::SYSTEM_MEMORY_LIMIT, &[]),
        Some(2048000 * 1024)
    );
    let stderr = agent.stderr();
    assert!(
        stderr.contains("collector vmstat") && stderr.contains("vmstat"),
        "{stderr}"
    );
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn host_stat(key: &str) -> u64 {
    fixture_value(Path::new("/proc"), "stat", key) as u64
}

/// The real host: MemTotal exactly; counters between what procfs said before the agent started
/// and after its export arrived, and never going backwards from one export to the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_host_values_agree_with_procfs() {
    let ctxt_before = host_stat("ctxt");
    let lo_rx_before = lo_receive_bytes();
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = collectors_only(&receiver, None);
    let ctxt = |r: &Received| r.points(names::CPU_CONTEXT_SWITCHES, &[]);
    let received = receiver
        .wait_for(WAIT, "three exports of the cpu collector", |r| {
            ctxt(r).len() >= 3
        })
        .await
        .unwrap();
    let ctxt_after = host_stat("ctxt");
    let lo_rx_after = lo_receive_bytes();

    let mem_total = fixture_value(Path::new("/proc"), "meminfo", "MemTotal:") as i64 * 1024;
    assert_eq!(
        received.latest_sum_i64(names::SYSTEM_MEMORY_LIMIT, &[]),
        Some(mem_total)
    );
    let mut series: Vec<_> = ctxt(&received)
        .into_iter()
        .map(|p| (p.time_unix_nano, p.value.as_i64().unwrap() as u64))
        .collect();
    series.sort();
    for pair in series.windows(2) {
        assert!(
            pair[0].1 <= pair[1].1,
            "context switches went backwards: {series:?}"
        );
    }
    for (_, value) in &series {
        assert!(
            (ctxt_before..=ctxt_after).contains(value),
            "{value} outside [{ctxt_before}, {ctxt_after}]"
        );
    }
    let lo_rx = received
        .latest_sum_i64(
            names::SYSTEM_NETWORK_IO,
            &[
                (net::NETWORK_INTERFACE_NAME, "lo"),
                (names::NETWORK_IO_DIRECTION, "receive"),
            ],
        )
        .unwrap() as u64;
    assert!(
        (lo_rx_before..=lo_rx_after).contains(&lo_rx),
        "lo receive bytes {lo_rx} outside [{lo_rx_before}, {lo_rx_after}]"
    );
    let busy = received
        .latest_gauge(names::SYSTEM_CPU_UTILIZATION, &[(names::CPU_MODE, "idle")])
        .expect("utilisation from the second cycle on");
    assert!((0.0..=1.0).contains(&busy));
    let duration = received
        .latest_gauge(
            collector::COLLECTOR_DURATION,
            &[(collector::COLLECTOR_NAME, "vmstat")],
        )
        .unwrap();
    assert!(duration > 0.0 && duration < 1.0, "{duration} s");
    received.assert_names_registered();
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}

const FSYNCS: u64 = 50;

/// Each fsync of a disk with a write cache is one flush request that `/proc/diskstats` counts
/// (Linux 5.5+): N fsyncs of a fresh loop device, N more `huatuo.disk.flushes` for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsyncs_of_a_loop_device_are_counted_as_flushes() {
    // Root for losetup, not BPF.
    if !require_root_and_bpf() {
        return;
    }
    let disk = LoopDevice::create(16).unwrap();
    let name = disk.name();
    assert!(disk.caches_writes().unwrap(), "{name} has no write cache");
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&[])
        // Loop devices are excluded by default; only this test's one here.
        .env("HUATUO_COLLECTORS__DISKIO__EXCLUDE", "[]")
        .env(
            "HUATUO_COLLECTORS__DISKIO__INCLUDE",
            format!("[\"^{name}$\"]"),
        )
        .spawn()
        .unwrap();
    let device = [(names::SYSTEM_DEVICE, name.as_str())];
    let flushes = |r: &Received| r.latest_sum_i64(names::DISK_FLUSHES, &device);
    // The device is reused from earlier loop devices, whose counts it keeps.
    let before = receiver
        .wait_for(WAIT, "the loop device's flush count", |r| {
            flushes(r).is_some()
        })
        .await
        .unwrap();
    let before = flushes(&before).unwrap();
    tokio::task::block_in_place(|| disk.write_and_fsync(FSYNCS)).unwrap();
    let after = receiver
        .wait_for(WAIT, "the fsyncs' flushes", |r| {
            flushes(r).is_some_and(|n| n >= before + FSYNCS as i64)
        })
        .await
        .unwrap();
    eprintln!(
        "{FSYNCS} fsyncs: {name} flushes {before} -> {:?}",
        flushes(&after)
    );
    after.assert_names_registered();
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}

fn lo_receive_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("lo:"))
        .unwrap();
    line.split_once(':')
        .unwrap()
        .1
        .split_ascii_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_lists_collectors_and_why_one_cannot_run() {
    let mut probe = AgentCommand::agent()
        .unwrap()
        .arg("probe")
        .arg("--procfs-prefix")
        .arg(fixture("handmade-old-formats"))
        .args(["--disable-collector", "arp"])
        .spawn()
        .unwrap();
    assert!(
        probe.wait_exit(WAIT).await.unwrap().success(),
        "{}",
        probe.stderr()
    );
    let out = probe.stdout();
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_ascii_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{out}"))
            .to_string()
    };
    assert!(
        line("cpu").contains("metrics") && line("cpu").contains("supported"),
        "{out}"
    );
    assert!(
        line("pressure").contains("unsupported") && line("pressure").contains("CONFIG_PSI"),
        "{out}"
    );
    assert!(line("arp").contains("disabled"), "{out}");
}
