//! The memreclaim contract on a live kernel: load the embedded object with aya, attach each entry
//! point flavour (tp_btf, then the classic tracepoints), make a process reclaim in a throwaway
//! memory cgroup and check the memcg row of the histogram, the stall counter and the records;
//! then compact memory through `vm.compact_memory` and check the `manual` row of the compaction
//! histogram. kswapd cannot be woken safely on a shared host: its programs only have to load,
//! attach and leave a readable map.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.

use std::time::Duration;

use aya::maps::Array;
use aya::maps::{PerCpuArray, RingBuf};
use aya::{Ebpf, EbpfLoader};
use huatuo_ebpf::hist::Log2Hist;
use huatuo_ebpf::memreclaim::{self as abi, CompactionKind, Kind, KswapdNode, MemreclaimEvent};
use huatuo_ebpf::{EVENTS_MAP, MEMRECLAIM};
use huatuo_otel_tests::attach::{attach_tracepoint, Entry};
use huatuo_otel_tests::memcg::MemoryCgroup;
use huatuo_otel_tests::require_root_and_bpf;

const LIMIT: u64 = 32 << 20;
const HOG_BYTES: usize = 128 << 20;
const WAIT: Duration = Duration::from_secs(30);

/// Loads with every reclaim over the threshold, and attaches every hook, the optional ones too.
fn attach(entry: Entry) -> Ebpf {
    let mut ebpf = EbpfLoader::new()
        .override_global(abi::GLOBAL_STALL_THRESHOLD_NS, &0u64, true)
        .load(MEMRECLAIM)
        .expect("kernel accepts the memreclaim object");
    for hook in abi::HOOKS.iter().chain(&abi::OPTIONAL_HOOKS) {
        let programs = (hook.prog_btf, hook.prog_tracepoint);
        attach_tracepoint(&mut ebpf, entry, programs, hook.category, hook.tracepoint);
    }
    ebpf
}

fn check(entry: Entry) {
    let mut ebpf = attach(entry);
    let cgroup = MemoryCgroup::create(&format!("memreclaim-attach-{entry:?}"), LIMIT).unwrap();
    let mut hog = cgroup.spawn_hog(HOG_BYTES, 500).unwrap();
    assert_eq!(hog.wait_killed(WAIT).unwrap(), libc::SIGKILL);

    let histogram: PerCpuArray<_, Log2Hist> =
        PerCpuArray::try_from(ebpf.map(abi::STALL_MAP).expect("histogram")).expect("per-CPU");
    let memcg = Kind::Memcg as u32;
    let reclaims: u64 = histogram
        .get(&memcg, 0)
        .expect("row")
        .iter()
        .flat_map(|h| h.slots)
        .sum();
    let stalls: PerCpuArray<_, u64> =
        PerCpuArray::try_from(ebpf.map(abi::STALLS_MAP).expect("stalls")).expect("per-CPU");
    let stalled = abi::read_stalls(&stalls).expect("stalls")[&Kind::Memcg];
    // Threshold 0: every reclaim is a stall.
    assert!(reclaims > 0, "{entry:?}: no memcg reclaim counted");
    assert!(stalled >= reclaims, "{entry:?}: {stalled} < {reclaims}");

    let mut ring = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).expect("events")).expect("ring");
    let mut ours = Vec::new();
    while let Some(item) = ring.next() {
        assert_eq!(item.len(), MemreclaimEvent::SIZE, "record size");
        let e: MemreclaimEvent = huatuo_ebpf::read_pod(&item).expect("whole record");
        if e.pid == hog.pid() && e.kind == memcg {
            ours.push(e);
        }
    }
    let e = ours
        .first()
        .unwrap_or_else(|| panic!("{entry:?}: no record of the hog"));
    assert_eq!(e.tid, hog.pid());
    assert_eq!(e.memcg_id, cgroup.id().unwrap(), "{entry:?}: {e:?}");
    assert!(e.duration_ns > 0 && e.cgroup_id > 0, "{entry:?}: {e:?}");
    eprintln!(
        "{entry:?}: {reclaims} memcg reclaims, {} records of the hog",
        ours.len()
    );

    // This process writes the sysctl, so it runs the compaction itself: `manual`.
    std::fs::write("/proc/sys/vm/compact_memory", "1").expect("writing vm.compact_memory");
    let histogram: PerCpuArray<_, Log2Hist> =
        PerCpuArray::try_from(ebpf.map(abi::COMPACT_MAP).expect("compactions")).expect("per-CPU");
    let compactions = |kind: CompactionKind| -> u64 {
        histogram
            .get(&(kind as u32), 0)
            .expect("row")
            .iter()
            .flat_map(|h| h.slots)
            .sum()
    };
    let manual = compactions(CompactionKind::Manual);
    assert!(manual > 0, "{entry:?}: no manual compaction counted");
    let kswapd: Array<_, KswapdNode> =
        Array::try_from(ebpf.map(abi::KSWAPD_MAP).expect("kswapd")).expect("array");
    let nodes = abi::read_kswapd(&kswapd).expect("kswapd rows");
    eprintln!(
        "{entry:?}: {manual} zone compactions by vm.compact_memory, {} direct; kswapd: {nodes:?}",
        compactions(CompactionKind::Direct)
    );
}

/// One test for both flavours, one after the other: two attached sets would count each stall twice.
#[test]
fn both_entry_points_measure_memcg_reclaim() {
    if !require_root_and_bpf() {
        return;
    }
    check(Entry::BtfTracePoint);
    check(Entry::TracePoint);
}
