//! The tcp_retransmit contract on a live kernel: load the embedded object with aya, attach both
//! hooks through each entry point (tp_btf, then the classic tracepoints), make a connection in a
//! throwaway network namespace lose packets so both ends retransmit, and check the counters and
//! the ring buffer records.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.
//!
//! Retransmits elsewhere on the host are counted too (and the two tests here run in parallel),
//! so assertions are made on this test's own connection, plus invariants that hold whatever else
//! retransmits.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::thread::sleep;
use std::time::{Duration, Instant};

mod support;

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::{Ebpf, EbpfLoader};
use huatuo_ebpf::net::{FAMILY_INET, FAMILY_INET6};
use huatuo_ebpf::tcp_retransmit::{
    self as abi, CountKey, Kind, Reason, RetransmitCounts, TcpRetransmitEvent,
};
use huatuo_ebpf::{EVENTS_MAP, STAT_COUNTER_MAP_FULL, STAT_RATE_LIMITED};
use huatuo_otel_tests::cgroup::own_cgroup_id;
use huatuo_otel_tests::netns::NetNs;
use huatuo_otel_tests::require_root_and_bpf;
use support::{attach, detach, stat, Entry, Hook};

const TCP_ESTABLISHED: u8 = 1;
const TCP_NEW_SYN_RECV: u8 = 12;
/// The server's first SYN-ACK retransmit comes after about 1 s, the client's timeouts after
/// 200 ms, 400 ms, ...: both kinds are there well within this.
const WAIT: Duration = Duration::from_secs(5);
const PAYLOAD: &[u8] = b"huatuo retransmit";

/// Segments and SYN-ACKs.
const HOOKS: [Hook; 2] = [
    (
        abi::TRACEPOINT_CATEGORY,
        abi::TRACEPOINT_SKB,
        abi::PROG_SKB_BTF,
        abi::PROG_SKB_TRACEPOINT,
    ),
    (
        abi::TRACEPOINT_CATEGORY,
        abi::TRACEPOINT_SYNACK,
        abi::PROG_SYNACK_BTF,
        abi::PROG_SYNACK_TRACEPOINT,
    ),
];

fn counts(ebpf: &Ebpf) -> HashMap<CountKey, u64> {
    let map: PerCpuArray<&MapData, RetransmitCounts> =
        PerCpuArray::try_from(ebpf.map(abi::COUNTS_MAP).expect("counts map")).expect("per-CPU");
    abi::read_counts(&map).expect("read counts")
}

/// Retransmits of a connection to a listener on `listen`, dialled at `dial`, through `entry`.
fn check(entry: Entry, tag: &str, listen: IpAddr, dial: IpAddr) {
    let mut ebpf = EbpfLoader::new()
        .load(huatuo_ebpf::TCP_RETRANSMIT)
        .expect("kernel accepts the tcp_retransmit object");
    let programs = attach(&mut ebpf, entry, &HOOKS);

    let ns = NetNs::create(tag).unwrap();
    // Other tests' namespaces may reuse our port numbers: the namespace tells ours apart.
    let netns_inum = std::fs::metadata(format!("/run/netns/{}", ns.name()))
        .unwrap()
        .ino() as u32;
    let mut conn = ns.lossy_connection(listen, dial).unwrap();
    let client_port = conn.client.local_addr().unwrap().port();
    let server_port = conn.server.port();
    conn.client.write_all(PAYLOAD).unwrap();

    let mut ring = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).expect("events")).expect("ring");
    let mut events = Vec::new();
    let mut drain = |events: &mut Vec<TcpRetransmitEvent>| {
        while let Some(item) = ring.next() {
            assert_eq!(item.len(), TcpRetransmitEvent::SIZE, "record size");
            events.push(TcpRetransmitEvent::from_bytes(&item).expect("whole record"));
        }
    };
    let ours = |e: &TcpRetransmitEvent, kind, port| {
        e.netns_inum == netns_inum && e.kind() == Some(kind) && port == server_port
    };
    let is_data = |e: &&TcpRetransmitEvent| ours(e, Kind::Data, e.dport);
    let is_synack = |e: &&TcpRetransmitEvent| ours(e, Kind::Synack, e.sport);
    let started = Instant::now();
    loop {
        drain(&mut events);
        let timeouts = events
            .iter()
            .filter(is_data)
            .filter(|e| e.reason() == Some(Reason::Timeout))
            .count();
        if timeouts > 0 && events.iter().any(|e| is_synack(&e)) {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "{entry:?}: no data timeout and SYN-ACK retransmit within {WAIT:?}: {events:?}"
        );
        sleep(Duration::from_millis(50));
    }
    detach(&mut ebpf, &programs);
    // Detaching does not wait for invocations already running on other CPUs; let them finish
    // so counters and records are final.
    sleep(Duration::from_millis(50));
    drop(conn);
    drop(ns);

    drain(&mut events);
    let counted = counts(&ebpf);
    let rate_limited = stat(&ebpf, STAT_RATE_LIMITED);
    let map_full = stat(&ebpf, STAT_COUNTER_MAP_FULL);
    // A dual-stack client's IPv4-mapped addresses are reported as the IPv4 they are.
    let (family, localhost) = match listen {
        IpAddr::V4(_) => (FAMILY_INET, Some(listen)),
        IpAddr::V6(_) => (FAMILY_INET6, Some(listen)),
    };
    let cgroup = own_cgroup_id().unwrap();
    let data: Vec<_> = events.iter().filter(is_data).collect();
    let synacks: Vec<_> = events.iter().filter(is_synack).collect();
    for e in data.iter().chain(&synacks) {
        assert_eq!(e.family, family, "{entry:?}: {e:?}");
        assert_eq!(e.src_addr(), localhost);
        assert_eq!(e.dst_addr(), localhost);
        assert_eq!(e.cgroup_id, cgroup, "{entry:?}: {e:?}");
        assert_ne!(e.ts_ns, 0);
    }
    for e in &data {
        assert_eq!(e.sport, client_port);
        assert_eq!(e.state, TCP_ESTABLISHED, "{entry:?}: {e:?}");
        assert_eq!(e.len as usize, PAYLOAD.len(), "{entry:?}: {e:?}");
        assert!(
            matches!(e.reason(), Some(Reason::Timeout | Reason::LossProbe)),
            "{entry:?}: {e:?}"
        );
    }
    for e in &synacks {
        assert_eq!(e.dport, client_port);
        assert_eq!(e.state, TCP_NEW_SYN_RECV, "{entry:?}: {e:?}");
        assert_eq!(e.len, 0);
        assert_eq!(e.reason(), Some(Reason::Timeout), "{entry:?}: {e:?}");
    }

    // Exactness: without a rate limit every retransmit counted produced a record.
    assert_eq!((rate_limited, map_full), (0, 0), "{entry:?}: stats");
    let mut recorded: HashMap<CountKey, u64> = HashMap::new();
    for e in &events {
        *recorded
            .entry(e.count_key().expect("known kind and reason"))
            .or_default() += 1;
    }
    assert_eq!(recorded, counted, "{entry:?}: records vs counters");
    eprintln!(
        "{entry:?} {listen} via {dial}: {} data and {} SYN-ACK retransmits on our connection; \
         counters {counted:?}",
        data.len(),
        synacks.len()
    );
}

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
/// 127.0.0.1 as a dual-stack IPv6 socket sees it.
const V4_MAPPED: IpAddr = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());

#[test]
fn tp_btf_ipv4() {
    if require_root_and_bpf() {
        check(Entry::BtfTracePoint, "attach-btf-v4", V4, V4);
    }
}

#[test]
fn tp_btf_ipv6() {
    if require_root_and_bpf() {
        check(Entry::BtfTracePoint, "attach-btf-v6", V6, V6);
    }
}

#[test]
fn tp_btf_ipv4_mapped_client() {
    if require_root_and_bpf() {
        check(Entry::BtfTracePoint, "attach-btf-mapped", V4, V4_MAPPED);
    }
}

#[test]
fn tracepoint_ipv4() {
    if require_root_and_bpf() {
        check(Entry::TracePoint, "attach-tp-v4", V4, V4);
    }
}

#[test]
fn tracepoint_ipv6() {
    if require_root_and_bpf() {
        check(Entry::TracePoint, "attach-tp-v6", V6, V6);
    }
}
