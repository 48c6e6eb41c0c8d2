//! The softirq contract on a live kernel: load the embedded object with aya, attach each entry
//! point flavour (tp_btf, then the classic tracepoints), run UDP round trips over a throwaway
//! network namespace's loopback and check the NET_RX row of the histogram and the records.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.

use aya::maps::{PerCpuArray, RingBuf};
use aya::{Ebpf, EbpfLoader};
use huatuo_ebpf::hist::Log2Hist;
use huatuo_ebpf::softirq::{self as abi, SoftirqEvent};
use huatuo_ebpf::{EVENTS_MAP, SOFTIRQ};
use huatuo_otel_tests::attach::{attach_tracepoint, Entry};
use huatuo_otel_tests::netns::NetNs;
use huatuo_otel_tests::require_root_and_bpf;

const NET_RX: u32 = 3;
const ROUND_TRIPS: usize = 1_000;

/// Loads with NET_RX watched and every wait over the threshold, and attaches both hooks.
fn attach(entry: Entry) -> Ebpf {
    let mut ebpf = EbpfLoader::new()
        .override_global(abi::GLOBAL_WATCHED_VECTORS, &(1u32 << NET_RX), true)
        .override_global(abi::GLOBAL_LATENCY_THRESHOLD_NS, &0u64, true)
        .load(SOFTIRQ)
        .expect("kernel accepts the softirq object");
    let hooks = [
        (
            abi::PROG_RAISE_BTF,
            abi::PROG_RAISE_TRACEPOINT,
            abi::TRACEPOINT_RAISE,
        ),
        (
            abi::PROG_ENTRY_BTF,
            abi::PROG_ENTRY_TRACEPOINT,
            abi::TRACEPOINT_ENTRY,
        ),
    ];
    for (btf, tracepoint, name) in hooks {
        attach_tracepoint(
            &mut ebpf,
            entry,
            (btf, tracepoint),
            abi::TRACEPOINT_CATEGORY,
            name,
        );
    }
    ebpf
}

fn net_rx_waits(ebpf: &Ebpf, vector: u32) -> u64 {
    let map: PerCpuArray<_, Log2Hist> =
        PerCpuArray::try_from(ebpf.map(abi::LATENCY_MAP).expect("histogram")).expect("per-CPU");
    map.get(&vector, 0)
        .expect("row")
        .iter()
        .flat_map(|h| h.slots)
        .sum()
}

fn check(entry: Entry) {
    let mut ebpf = attach(entry);
    let ns = NetNs::create(&format!("softirq-attach-{entry:?}")).unwrap();
    ns.udp_round_trips(ROUND_TRIPS).unwrap();
    let counted = net_rx_waits(&ebpf, NET_RX);
    // Two datagrams per round trip; a tenth of the packets is the order of magnitude.
    assert!(
        counted >= (2 * ROUND_TRIPS / 10) as u64,
        "{entry:?}: {counted} NET_RX waits"
    );
    // Unwatched vectors are not measured, though the timer raises TIMER all the time.
    assert_eq!(net_rx_waits(&ebpf, 1), 0, "{entry:?}: TIMER measured");

    let mut ring = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).expect("events")).expect("ring");
    let pid = std::process::id();
    let mut ours = 0;
    while let Some(item) = ring.next() {
        assert_eq!(item.len(), SoftirqEvent::SIZE, "record size");
        let e: SoftirqEvent = huatuo_ebpf::read_pod(&item).expect("whole record");
        assert_eq!(e.vector, NET_RX, "{entry:?}: {e:?}");
        assert!(e.ts_ns > 0 && e.comm[0] != 0, "{entry:?}: {e:?}");
        if e.pid == pid {
            assert!(e.cgroup_id > 0, "{entry:?}: {e:?}");
            ours += 1;
        }
    }
    assert!(ours > 0, "{entry:?}: no record from this process");
    eprintln!("{entry:?}: {counted} NET_RX waits, {ours} records from this process");
}

/// One test for both flavours, one after the other: two attached sets would count each wait twice.
#[test]
fn both_entry_points_measure_net_rx() {
    if !require_root_and_bpf() {
        return;
    }
    check(Entry::BtfTracePoint);
    check(Entry::TracePoint);
}
