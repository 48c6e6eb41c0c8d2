//! Per-container and qdisc collectors on the real host, through the agent binary and OTLP: a
//! cgroup named like a docker container with a CPU burner in it, its series found by container.id
//! and agreeing with its cgroup files; a qdisc on a veth whose counters follow packets sent.

use huatuo_otel_tests::cgroup::ContainerCgroups;
use huatuo_otel_tests::netns::{NetNs, VethPair};
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, AgentProcess, OtlpReceiver, Received};
use huatuo_semconv::{container as names, net as net_names, system};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The agent with only its collectors, exporting every second to `receiver`.
fn collectors_only(receiver: &OtlpReceiver) -> AgentProcess {
    AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&[])
        .spawn()
        .unwrap()
}

/// `key value` of a flat-keyed cgroup file.
fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// User CPU seconds of the container, as its cgroup files say.
fn user_seconds(cgroups: &ContainerCgroups) -> f64 {
    if cgroups.is_v1() {
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        keyed(&cgroups.read(0, "cpuacct.stat").unwrap(), "user") as f64 / ticks
    } else {
        keyed(&cgroups.read(0, "cpu.stat").unwrap(), "user_usec") as f64 / 1e6
    }
}

fn throttled_periods(cgroups: &ContainerCgroups) -> u64 {
    keyed(&cgroups.read(0, "cpu.stat").unwrap(), "nr_throttled")
}

fn memory_usage(cgroups: &ContainerCgroups) -> f64 {
    let file = if cgroups.is_v1() {
        "memory.usage_in_bytes"
    } else {
        "memory.current"
    };
    cgroups.read(0, file).unwrap().trim().parse().unwrap()
}

/// The CPU burner in a network namespace of its own, started in the container once it is in it;
/// killed on drop (and by the cgroup's cleanup).
struct Burner(Child);

impl Burner {
    fn start_in(cgroups: &ContainerCgroups) -> Self {
        // unshare execs the burner: same pid, new namespace.
        let child = Command::new("unshare")
            .args(["--net", env!("CARGO_BIN_EXE_cpu-burner"), "60"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let burner = Self(child);
        cgroups.add(0, burner.0.id()).unwrap();
        writeln!(burner.0.stdin.as_ref().unwrap(), "go").unwrap();
        burner
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_cgroup_is_collected_by_container_id() {
    if !require_root_and_bpf() {
        return;
    }
    let cgroups = ContainerCgroups::create("cmetrics", 1).unwrap();
    let id = cgroups.ids()[0].clone();
    // Half a CPU, so the burner is throttled; 256 MiB of memory.
    if cgroups.is_v1() {
        cgroups.write(0, "cpu.cfs_quota_us", "50000").unwrap();
        cgroups
            .write(0, "memory.limit_in_bytes", "268435456")
            .unwrap();
    } else {
        cgroups.write(0, "cpu.max", "50000 100000").unwrap();
        cgroups.write(0, "memory.max", "268435456").unwrap();
    }
    let burner = Burner::start_in(&cgroups);
    // An interface in the container's namespace, as a runtime gives it one.
    let veth = VethPair::create("hc").unwrap();
    let status = Command::new("ip")
        .args([
            "link",
            "set",
            veth.peer(),
            "netns",
            &burner.0.id().to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let user_before = user_seconds(&cgroups);

    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = collectors_only(&receiver);
    let container = [(names::CONTAINER_ID, id.as_str())];
    let user = |r: &Received| {
        r.latest_sum(
            names::CONTAINER_CPU_TIME,
            &[
                (names::CONTAINER_ID, id.as_str()),
                (system::CPU_MODE, "user"),
            ],
        )
    };
    let received = receiver
        .wait_for(WAIT, "the container's CPU time growing past 0.5 s", |r| {
            !r.points(names::CONTAINER_NETWORK_IO, &container).is_empty()
                && user(r).is_some_and(|u| u > user_before + 0.5)
                && r.latest_sum(names::CONTAINER_CPU_THROTTLED_PERIODS, &container)
                    .is_some_and(|t| t > 0.0)
        })
        .await
        .unwrap();
    let user_after = user_seconds(&cgroups);
    let throttled_after = throttled_periods(&cgroups);
    let usage_now = memory_usage(&cgroups);

    // Counters: between what the files said before the agent started and after the export.
    let exported = user(&received).unwrap();
    assert!(
        (user_before..=user_after).contains(&exported),
        "container.cpu.time user {exported} outside [{user_before}, {user_after}]"
    );
    let throttled = received
        .latest_sum(names::CONTAINER_CPU_THROTTLED_PERIODS, &container)
        .unwrap();
    assert!(
        throttled <= throttled_after as f64,
        "{throttled} > {throttled_after}"
    );
    assert!(received
        .latest_sum(names::CONTAINER_CPU_THROTTLED_TIME, &container)
        .is_some_and(|t| t > 0.0));
    // Levels: memory usage moves, so within 4 MiB of the file read just after.
    assert_eq!(
        received.latest_sum_i64(names::CONTAINER_MEMORY_LIMIT, &container),
        Some(268435456)
    );
    let usage = received
        .latest_sum_i64(names::CONTAINER_MEMORY_USAGE, &container)
        .unwrap() as f64;
    assert!(
        (usage - usage_now).abs() <= 4.0 * 1024.0 * 1024.0,
        "container.memory.usage {usage} vs {usage_now} in the cgroup"
    );
    assert!(!received
        .points(names::CONTAINER_MEMORY_STAT, &container)
        .is_empty());
    // Its namespace's interface (lo is excluded by default), by container id.
    let interfaces: Vec<_> = received
        .points(names::CONTAINER_NETWORK_IO, &container)
        .iter()
        .filter_map(|p| {
            p.attr_str(net_names::NETWORK_INTERFACE_NAME)
                .map(str::to_string)
        })
        .collect();
    assert!(
        interfaces.iter().all(|i| i == veth.peer()) && !interfaces.is_empty(),
        "{interfaces:?}"
    );

    // Bounded attributes: the container's identity and the metric's own, never a pid or path.
    let allowed = [
        names::CONTAINER_ID,
        names::K8S_POD_UID,
        system::CPU_MODE,
        names::MEMORY_STAT_KEY,
        names::MEMORY_EVENT_TYPE,
        net_names::NETWORK_INTERFACE_NAME,
        system::NETWORK_IO_DIRECTION,
    ];
    for metric in [
        names::CONTAINER_CPU_TIME,
        names::CONTAINER_MEMORY_STAT,
        names::CONTAINER_MEMORY_EVENTS,
        names::CONTAINER_NETWORK_IO,
    ] {
        for point in received.points(metric, &container) {
            for key in point.attributes.keys() {
                assert!(
                    allowed.contains(&key.as_str()),
                    "{metric} has attribute {key}"
                );
            }
        }
    }
    received.assert_names_registered();
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdisc_counters_follow_packets_sent_through_it() {
    if !require_root_and_bpf() {
        return;
    }
    const PACKETS: u64 = 200;
    let ns = NetNs::create("qdisc").unwrap();
    let veth = VethPair::create("hq").unwrap();
    let run = |args: &[&str]| {
        let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
        assert!(status.success(), "{args:?}");
    };
    run(&["ip", "link", "set", veth.peer(), "netns", ns.name()]);
    ns.exec("ip", &["addr", "add", "10.251.3.2/24", "dev", veth.peer()])
        .unwrap();
    ns.exec("ip", &["link", "set", veth.peer(), "up"]).unwrap();
    run(&["ip", "addr", "add", "10.251.3.1/24", "dev", veth.name()]);
    veth.set(veth.name(), true).unwrap();
    // veth has no queue by default; a pfifo root makes every packet sent pass one.
    run(&[
        "tc",
        "qdisc",
        "add",
        "dev",
        veth.name(),
        "root",
        "pfifo",
        "limit",
        "1000",
    ]);

    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = collectors_only(&receiver);
    let ours = [
        (net_names::NETWORK_INTERFACE_NAME, veth.name()),
        (net_names::QDISC_KIND, "pfifo"),
    ];
    let packets = |r: &Received| r.latest_sum(net_names::QDISC_PACKETS, &ours);
    let before = receiver
        .wait_for(WAIT, "the qdisc's first export", |r| packets(r).is_some())
        .await
        .unwrap();
    let first = packets(&before).unwrap();
    let socket = std::net::UdpSocket::bind("10.251.3.1:0").unwrap();
    for _ in 0..PACKETS {
        socket.send_to(&[0u8; 100], "10.251.3.2:9").unwrap();
    }
    let after = receiver
        .wait_for(WAIT, "the qdisc counting the datagrams", |r| {
            packets(r).is_some_and(|p| p >= first + PACKETS as f64)
        })
        .await
        .unwrap();
    let bytes = after.latest_sum(net_names::QDISC_BYTES, &ours).unwrap();
    // 100 bytes of payload plus UDP, IP and Ethernet headers each.
    assert!(bytes >= (PACKETS * 142) as f64, "{bytes} bytes");
    assert_eq!(after.latest_sum(net_names::QDISC_DROPS, &ours), Some(0.0));
    assert!(after
        .latest_gauge(net_names::QDISC_QUEUE_LENGTH, &ours)
        .is_some());
    assert!(after
        .latest_gauge(net_names::QDISC_BACKLOG, &ours)
        .is_some());
    after.assert_names_registered();
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}
