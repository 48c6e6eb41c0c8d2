//! The dropwatch contract on a live kernel: load the embedded object with
//! aya, attach each entry point, drop UDP datagrams on a closed loopback
//! port, and check both the exact counters and the ring buffer records.
//!
//! Needs root (CAP_BPF + CAP_PERFMON). Set HUATUO_SKIP_BPF_TESTS=1 to skip
//! where BPF is unavailable; otherwise any failure to load/attach fails.
//!
//! Other traffic on the host may drop packets while a test runs (tests in
//! this file run in parallel, too), so assertions are made on this test's
//! own port, plus invariants that hold whatever else gets dropped.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::thread::sleep;
use std::time::Duration;

use aya::maps::{PerCpuArray, PerCpuHashMap, RingBuf};
use aya::programs::{BtfTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};
use huatuo_ebpf::btf::Btf;
use huatuo_ebpf::dropwatch::{self, DropCountKey, DropwatchEvent};
use huatuo_ebpf::{
    DROPWATCH, EVENTS_MAP, GLOBAL_EVENTS_PER_CPU_PER_SEC, STATS_MAP, STAT_COUNTER_MAP_FULL,
    STAT_RATE_LIMITED, STAT_RINGBUF_LOST,
};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

fn bpf_tests_enabled() -> bool {
    if std::env::var("HUATUO_SKIP_BPF_TESTS").as_deref() == Ok("1") {
        eprintln!("HUATUO_SKIP_BPF_TESTS=1: skipping dropwatch attach test");
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "dropwatch attach tests must run as root (or set HUATUO_SKIP_BPF_TESTS=1)"
    );
    true
}

fn no_socket_reason() -> u32 {
    let vmlinux = Btf::from_sys_fs().expect("read /sys/kernel/btf/vmlinux");
    let v = vmlinux
        .enum_value("skb_drop_reason", "SKB_DROP_REASON_NO_SOCKET")
        .expect("kernel enum skb_drop_reason has SKB_DROP_REASON_NO_SOCKET");
    u32::try_from(v).expect("drop reason fits u32")
}

#[derive(Clone, Copy, Debug)]
enum Entry {
    BtfTracePoint,
    TracePoint,
}

struct Outcome {
    /// Both drop-count maps summed over CPUs.
    counts: HashMap<DropCountKey, u64>,
    events: Vec<DropwatchEvent>,
    /// stats slots summed over CPUs, indexed by STAT_*.
    stats: [u64; 3],
    port: u16,
    sender_port: u16,
}

/// Load-time settings; the default is what an unconfigured agent gets.
#[derive(Clone, Copy, Debug, Default)]
struct Config {
    filter_l4_proto: u8,
    per_cpu_per_sec: u64,
    drop_counts_max_entries: Option<u32>,
}

/// What a test sends to its closed port.
#[derive(Clone, Copy, Debug)]
enum Traffic {
    /// UDP datagrams from this address to itself.
    Udp(IpAddr, usize),
    /// TCP connection attempts (SYNs dropped with NO_SOCKET, answered
    /// with RST), plus UDP datagrams, all to 127.0.0.1.
    TcpAndUdp(usize),
}

impl Outcome {
    fn ours(&self) -> Vec<&DropwatchEvent> {
        self.events
            .iter()
            .filter(|e| e.l4_proto == IPPROTO_UDP && e.dport == self.port)
            .collect()
    }

    fn processed_by_counter(&self) -> u64 {
        self.counts.values().sum::<u64>() + self.stats[STAT_COUNTER_MAP_FULL as usize]
    }
}

/// Loads and attaches one entry point, sends `traffic` to a closed port,
/// detaches, and returns everything the object recorded.
fn run(entry: Entry, config: Config, traffic: Traffic) -> Outcome {
    let mut loader = EbpfLoader::new();
    loader
        .override_global(
            dropwatch::GLOBAL_FILTER_L4_PROTO,
            &config.filter_l4_proto,
            true,
        )
        .override_global(GLOBAL_EVENTS_PER_CPU_PER_SEC, &config.per_cpu_per_sec, true);
    if let Some(max) = config.drop_counts_max_entries {
        // Route every reason through the hash so its capacity is what is tested.
        loader
            .override_global(dropwatch::GLOBAL_REASON_SLOTS, &0u32, true)
            .map_max_entries(dropwatch::DROP_COUNTS_MAP, max);
    }
    let mut ebpf: Ebpf = loader
        .load(DROPWATCH)
        .expect("kernel accepts the dropwatch object");

    let ip = match traffic {
        Traffic::Udp(ip, _) => ip,
        Traffic::TcpAndUdp(_) => Ipv4Addr::LOCALHOST.into(),
    };
    // A port that was free a moment ago, for UDP and TCP alike; nothing
    // else binds it in time.
    let port = UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .expect("bind probe socket")
        .port();
    let sender = UdpSocket::bind((ip, 0)).expect("bind sender");
    let sender_port = sender.local_addr().unwrap().port();

    let send = || {
        let datagrams = match traffic {
            Traffic::Udp(_, n) | Traffic::TcpAndUdp(n) => n,
        };
        for i in 0..datagrams {
            sender
                .send_to(format!("huatuo drop {i}").as_bytes(), (ip, port))
                .expect("send datagram");
        }
        if let Traffic::TcpAndUdp(n) = traffic {
            for _ in 0..n {
                let refused = TcpStream::connect((ip, port));
                assert!(refused.is_err(), "port {port} unexpectedly open");
            }
        }
        // Loopback delivery runs in softirq, normally before send_to
        // returns; the pause covers the case where ksoftirqd takes it.
        sleep(Duration::from_millis(200));
    };

    match entry {
        Entry::BtfTracePoint => {
            let vmlinux = aya::Btf::from_sys_fs().expect("kernel BTF");
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(dropwatch::PROG_BTF)
                .expect("program dropwatch_btf")
                .try_into()
                .expect("dropwatch_btf is tp_btf");
            prog.load(dropwatch::TP_BTF_NAME, &vmlinux)
                .expect("verifier accepts dropwatch_btf");
            let link = prog.attach().expect("attach tp_btf/kfree_skb");
            send();
            prog.detach(link).expect("detach");
        }
        Entry::TracePoint => {
            let prog: &mut TracePoint = ebpf
                .program_mut(dropwatch::PROG_TRACEPOINT)
                .expect("program dropwatch_tp")
                .try_into()
                .expect("dropwatch_tp is a tracepoint");
            prog.load().expect("verifier accepts dropwatch_tp");
            let link = prog
                .attach(dropwatch::TRACEPOINT_CATEGORY, dropwatch::TRACEPOINT_NAME)
                .expect("attach tracepoint skb/kfree_skb");
            send();
            prog.detach(link).expect("detach");
        }
    }
    // Detaching does not wait for invocations already running on other
    // CPUs; let them finish so counters and records are final.
    sleep(Duration::from_millis(50));

    let by_key: PerCpuHashMap<_, DropCountKey, u64> =
        PerCpuHashMap::try_from(ebpf.map(dropwatch::DROP_COUNTS_MAP).expect("drop_counts"))
            .expect("drop_counts is a per-CPU hash");
    let by_reason: PerCpuArray<_, dropwatch::DropReasonCounts> = PerCpuArray::try_from(
        ebpf.map(dropwatch::DROP_COUNTS_BY_REASON_MAP)
            .expect("drop_counts_by_reason"),
    )
    .expect("drop_counts_by_reason is a per-CPU array");
    let counts = dropwatch::read_counts(&by_reason, &by_key).expect("read drop counts");

    let stats_map: PerCpuArray<_, u64> =
        PerCpuArray::try_from(ebpf.map(STATS_MAP).expect("stats")).expect("stats is per-CPU array");
    let mut stats = [0u64; 3];
    for slot in [STAT_RINGBUF_LOST, STAT_RATE_LIMITED, STAT_COUNTER_MAP_FULL] {
        stats[slot as usize] = stats_map.get(&slot, 0).expect("read stats").iter().sum();
    }

    let mut ring = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).expect("events")).expect("ring");
    let mut events = Vec::new();
    while let Some(item) = ring.next() {
        assert_eq!(item.len(), DropwatchEvent::SIZE, "record size");
        events.push(DropwatchEvent::from_bytes(&item).expect("whole record"));
    }

    Outcome {
        counts,
        events,
        stats,
        port,
        sender_port,
    }
}

fn check_counts_and_records(entry: Entry, ip: IpAddr) {
    const SENT: usize = 5;
    let reason = no_socket_reason();
    let out = run(entry, Config::default(), Traffic::Udp(ip, SENT));
    let (l3_proto, family) = match ip {
        IpAddr::V4(_) => (ETH_P_IP, huatuo_ebpf::net::FAMILY_INET),
        IpAddr::V6(_) => (ETH_P_IPV6, huatuo_ebpf::net::FAMILY_INET6),
    };
    let key = DropCountKey {
        reason,
        l3_proto,
        l4_proto: IPPROTO_UDP,
        pad: 0,
    };

    let ours = out.ours();
    assert_eq!(ours.len(), SENT, "{entry:?}: records for port {}", out.port);
    let netns = std::fs::metadata("/proc/self/ns/net").unwrap().ino() as u32;
    for e in &ours {
        assert_eq!(e.reason, reason, "{entry:?}: {e:?}");
        assert!(e.reason_known());
        assert_eq!(e.flags, 0, "{entry:?}: {e:?}");
        assert_eq!(e.l3_proto, l3_proto);
        assert_eq!(e.family, family);
        assert_eq!(e.src_addr(), Some(ip));
        assert_eq!(e.dst_addr(), Some(ip));
        assert_eq!(e.sport, out.sender_port);
        assert_eq!(e.ifname(), "lo");
        assert_eq!(e.ifindex, 1, "lo is ifindex 1 in every netns");
        assert_eq!(e.netns_inum, netns);
        assert_ne!(e.netns_cookie, 0);
        assert_ne!(e.ts_ns, 0);
        assert_ne!(e.location, 0);
        assert!(e.len as usize >= "huatuo drop 0".len(), "skb len {}", e.len);
        assert_eq!(e.tcp_state, 0);
        assert_eq!(e.pad, [0; 3]);
    }

    // Exactness: with no filter, no rate limit and nothing lost, every
    // counted drop under `key` also produced a record, ours or not.
    assert_eq!(out.stats, [0, 0, 0], "{entry:?}: stats");
    let recorded_for_key = out.events.iter().filter(|e| e.count_key() == key).count() as u64;
    let counted = out.counts.get(&key).copied().unwrap_or(0);
    assert_eq!(counted, recorded_for_key, "{entry:?}: counter vs records");
    assert!(counted >= SENT as u64);
    assert_eq!(out.processed_by_counter(), out.events.len() as u64);
    eprintln!(
        "{entry:?} {ip}: sent {SENT}, drop_counts[{key:?}] = {counted}, \
         records on our port = {}, records total = {}, keys = {}",
        ours.len(),
        out.events.len(),
        out.counts.len()
    );
}

#[test]
fn tp_btf_counts_and_records_udp_no_socket_drops() {
    if bpf_tests_enabled() {
        check_counts_and_records(Entry::BtfTracePoint, Ipv4Addr::LOCALHOST.into());
    }
}

#[test]
fn tp_btf_records_ipv6() {
    if bpf_tests_enabled() {
        check_counts_and_records(Entry::BtfTracePoint, Ipv6Addr::LOCALHOST.into());
    }
}

#[test]
fn tracepoint_counts_and_records_udp_no_socket_drops() {
    if bpf_tests_enabled() {
        check_counts_and_records(Entry::TracePoint, Ipv4Addr::LOCALHOST.into());
    }
}

#[test]
fn tcp_filter_records_tcp_and_still_counts_udp() {
    if !bpf_tests_enabled() {
        return;
    }
    const SENT: usize = 3;
    let reason = no_socket_reason();
    let config = Config {
        filter_l4_proto: IPPROTO_TCP,
        ..Config::default()
    };
    let out = run(Entry::TracePoint, config, Traffic::TcpAndUdp(SENT));
    assert!(out.ours().is_empty(), "UDP records despite TCP filter");
    assert!(out.events.iter().all(|e| e.l4_proto == IPPROTO_TCP));
    let tcp: Vec<_> = out.events.iter().filter(|e| e.dport == out.port).collect();
    // Each refused connect drops at least its SYN; retransmits do not
    // happen since the RST answers at once.
    assert!(
        tcp.len() >= SENT,
        "{} TCP records for {SENT} connects",
        tcp.len()
    );
    for e in &tcp {
        assert_eq!(e.reason, reason, "{e:?}");
        assert_eq!(e.family, huatuo_ebpf::net::FAMILY_INET);
        assert_ne!(e.sport, 0);
    }
    let count = |l4_proto| {
        let key = DropCountKey {
            reason,
            l3_proto: ETH_P_IP,
            l4_proto,
            pad: 0,
        };
        out.counts.get(&key).copied().unwrap_or(0)
    };
    assert!(
        count(IPPROTO_UDP) >= SENT as u64,
        "filtered drops are counted"
    );
    assert!(count(IPPROTO_TCP) >= SENT as u64);
}

#[test]
fn rate_limit_suppresses_and_accounts_every_drop() {
    if !bpf_tests_enabled() {
        return;
    }
    const SENT: usize = 40;
    const LIMIT: u64 = 2;
    let config = Config {
        per_cpu_per_sec: LIMIT,
        ..Config::default()
    };
    let out = run(
        Entry::BtfTracePoint,
        config,
        Traffic::Udp(Ipv4Addr::LOCALHOST.into(), SENT),
    );
    let cpus = aya::util::nr_cpus().expect("possible CPUs") as u64;
    let ours = out.ours().len() as u64;
    // A burst may straddle one window edge per CPU: at most 2 windows.
    assert!(
        ours >= 1 && ours <= 2 * LIMIT * cpus,
        "{ours} records passed"
    );
    assert!(out.stats[STAT_RATE_LIMITED as usize] >= SENT as u64 - ours);
    // Every invocation is counted once, then either recorded, suppressed
    // or lost: nothing disappears unaccounted.
    assert_eq!(
        out.processed_by_counter(),
        out.events.len() as u64
            + out.stats[STAT_RATE_LIMITED as usize]
            + out.stats[STAT_RINGBUF_LOST as usize]
    );
    eprintln!(
        "rate limit {LIMIT}/cpu/s: sent {SENT}, records on our port {ours}, suppressed {}",
        out.stats[STAT_RATE_LIMITED as usize]
    );
}

#[test]
fn full_counter_map_is_counted_in_stats() {
    if !bpf_tests_enabled() {
        return;
    }
    const SENT: usize = 3;
    let config = Config {
        drop_counts_max_entries: Some(1),
        ..Config::default()
    };
    let out = run(Entry::BtfTracePoint, config, Traffic::TcpAndUdp(SENT));
    // UDP and TCP drops need two keys; whichever came second (or both, if
    // some other drop took the only slot) is counted as map-full instead.
    assert_eq!(out.counts.len(), 1, "{:?}", out.counts);
    assert!(out.stats[STAT_COUNTER_MAP_FULL as usize] >= SENT as u64);
    // Records do not depend on the counter map.
    assert!(out.ours().len() == SENT);
    assert_eq!(out.processed_by_counter(), out.events.len() as u64);
}
