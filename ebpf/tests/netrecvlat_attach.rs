//! The netrecvlat contract on a live kernel: load the embedded object with aya, attach the three
//! stages through each entry point (tp_btf, then the classic tracepoints), send TCP over loopback
//! in a throwaway network namespace to a reader that waits before reading, and check the
//! histogram rows and the records of that connection at every stage.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::thread::sleep;
use std::time::{Duration, Instant};

mod support;

use aya::maps::{Array, MapData, PerCpuArray, RingBuf};
use aya::{Ebpf, EbpfLoader};
use huatuo_ebpf::hist::Log2Hist;
use huatuo_ebpf::net::{FAMILY_INET, FAMILY_INET6};
use huatuo_ebpf::netrecvlat::{self as abi, NetrecvlatEvent, Stage, WallClock};
use huatuo_ebpf::{EVENTS_MAP, STAT_RATE_LIMITED};
use huatuo_otel_tests::cgroup::own_cgroup_id;
use huatuo_otel_tests::netns::NetNs;
use huatuo_otel_tests::require_root_and_bpf;
use support::{attach, detach, stat, Entry};

const TCP_ESTABLISHED: u8 = 1;
/// Netif and TCP thresholds: every packet is over them.
const EVERY_PACKET_NS: u64 = 1;
const USER_COPY_THRESHOLD_NS: u64 = 20_000_000;
const READ_DELAY: Duration = Duration::from_millis(100);
const MESSAGES: usize = 10;
const PAYLOAD: &[u8] = b"huatuo netrecvlat";
const WAIT: Duration = Duration::from_secs(5);

/// Packets counted in each stage's row, over all CPUs and slots.
fn counted(ebpf: &Ebpf) -> [u64; 3] {
    let map: PerCpuArray<&MapData, Log2Hist> =
        PerCpuArray::try_from(ebpf.map(abi::LATENCY_HIST_MAP).expect("histogram")).unwrap();
    Stage::ALL.map(|stage| {
        map.get(&(stage as u32), 0)
            .expect("read histogram row")
            .iter()
            .flat_map(|h| h.slots)
            .sum()
    })
}

fn check(entry: Entry, tag: &str, addr: IpAddr) {
    let thresholds = [EVERY_PACKET_NS, EVERY_PACKET_NS, USER_COPY_THRESHOLD_NS];
    let mut ebpf = EbpfLoader::new()
        .override_global(abi::GLOBAL_THRESHOLD_NS, &thresholds, true)
        .load(huatuo_ebpf::NETRECVLAT)
        .expect("kernel accepts the netrecvlat object");
    let (offset, _) = abi::measure_wall_clock();
    let mut clock: Array<&mut MapData, WallClock> =
        Array::try_from(ebpf.map_mut(abi::WALL_CLOCK_MAP).expect("wall clock")).unwrap();
    clock
        .set(
            0,
            WallClock {
                real_minus_mono_ns: offset,
                stepped_at_mono_ns: 0,
            },
            0,
        )
        .unwrap();
    let _stamping = abi::enable_rx_timestamps().expect("RX timestamps");
    // The kernel switches stamping on from a work item.
    sleep(Duration::from_millis(100));
    let programs = attach(&mut ebpf, entry, &abi::HOOKS);
    let before = counted(&ebpf);

    let ns = NetNs::create(tag).unwrap();
    let netns_inum = std::fs::metadata(format!("/run/netns/{}", ns.name()))
        .unwrap()
        .ino() as u32;
    let listener = ns.enter(|| TcpListener::bind((addr, 0))).unwrap().unwrap();
    let server_port = listener.local_addr().unwrap().port();
    let mut client = ns
        .enter(|| TcpStream::connect((addr, server_port)))
        .unwrap()
        .unwrap();
    client.set_nodelay(true).unwrap();
    let client_port = client.local_addr().unwrap().port();
    let (mut server, _) = listener.accept().unwrap();
    for _ in 0..MESSAGES {
        client.write_all(PAYLOAD).unwrap();
        sleep(Duration::from_millis(2));
    }
    sleep(READ_DELAY);
    let mut buf = vec![0u8; PAYLOAD.len() * MESSAGES];
    server.read_exact(&mut buf).unwrap();

    let mut ring = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).expect("events")).expect("ring");
    let mut events = Vec::new();
    let ours = |e: &NetrecvlatEvent, stage| {
        e.stage() == Some(stage)
            && e.netns_inum == netns_inum
            && (e.sport, e.dport) == (client_port, server_port)
    };
    let started = Instant::now();
    loop {
        while let Some(item) = ring.next() {
            assert_eq!(item.len(), NetrecvlatEvent::SIZE, "record size");
            events.push(NetrecvlatEvent::from_bytes(&item).expect("whole record"));
        }
        if Stage::ALL
            .iter()
            .all(|s| events.iter().any(|e| ours(e, *s)))
        {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "{entry:?}: not every stage of our connection reported within {WAIT:?}: {events:?}"
        );
        sleep(Duration::from_millis(50));
    }
    detach(&mut ebpf, &programs);
    sleep(Duration::from_millis(50));
    drop((client, server, listener));
    drop(ns);

    let after = counted(&ebpf);
    // Every message is a packet at netif and TCP; unread ones may be merged before the copy.
    let at_least = [MESSAGES as u64, MESSAGES as u64, 1];
    for i in 0..3 {
        assert!(
            after[i] >= before[i] + at_least[i],
            "{entry:?}: histogram {before:?} -> {after:?}"
        );
    }
    let family = if addr.is_ipv4() {
        FAMILY_INET
    } else {
        FAMILY_INET6
    };
    let cgroup = own_cgroup_id().unwrap();
    for e in events.iter().filter(|e| e.netns_inum == netns_inum) {
        let Some(stage) = e.stage() else {
            panic!("{entry:?}: unknown stage in {e:?}")
        };
        if (e.sport, e.dport) != (client_port, server_port) {
            continue;
        }
        assert_eq!(e.family, family, "{entry:?}: {e:?}");
        assert_eq!(e.src_addr(), Some(addr));
        assert_eq!(e.dst_addr(), Some(addr));
        assert!(
            e.latency_ns >= thresholds[stage as usize],
            "{entry:?}: {e:?}"
        );
        assert_ne!(e.ts_ns, 0);
        match stage {
            Stage::Netif => {
                assert_eq!(e.ifname(), "lo", "{entry:?}: {e:?}");
                assert_eq!((e.state, e.cgroup_id, e.pid), (0, 0, 0), "{entry:?}: {e:?}");
            }
            Stage::Tcp => {
                assert_eq!(e.state, TCP_ESTABLISHED, "{entry:?}: {e:?}");
                assert_eq!(e.cgroup_id, cgroup, "{entry:?}: {e:?}");
                assert_eq!(e.pid, 0, "{entry:?}: {e:?}");
            }
            Stage::UserCopy => {
                assert_eq!(e.state, TCP_ESTABLISHED, "{entry:?}: {e:?}");
                assert_eq!(e.cgroup_id, cgroup, "{entry:?}: {e:?}");
                assert_eq!(e.pid, std::process::id(), "{entry:?}: {e:?}");
                assert!(
                    e.latency() >= READ_DELAY / 2,
                    "{entry:?}: copied {:?} after receive, read after {READ_DELAY:?}",
                    e.latency()
                );
            }
        }
    }
    assert_eq!(
        stat(&ebpf, STAT_RATE_LIMITED),
        0,
        "{entry:?}: no limit was set"
    );
    eprintln!(
        "{entry:?} {addr}: histogram {before:?} -> {after:?}; {} records of our connection",
        events.iter().filter(|e| e.netns_inum == netns_inum).count()
    );
}

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

#[test]
fn tp_btf_ipv4() {
    if require_root_and_bpf() {
        check(Entry::BtfTracePoint, "nrl-attach-btf-v4", V4);
    }
}

#[test]
fn tp_btf_ipv6() {
    if require_root_and_bpf() {
        check(Entry::BtfTracePoint, "nrl-attach-btf-v6", V6);
    }
}

#[test]
fn tracepoint_ipv4() {
    if require_root_and_bpf() {
        check(Entry::TracePoint, "nrl-attach-tp-v4", V4);
    }
}
