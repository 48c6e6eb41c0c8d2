//! The oom contract on a live kernel: load the embedded object with aya, attach each entry point
//! (tp_btf, then the classic tracepoint), make the OOM killer kill a process in a throwaway
//! memory cgroup, and check the record it produced.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.
//!
//! Other OOM kills on the host (the two tests here run in parallel) produce records too, so
//! assertions are made on the record of this test's own victim.

use std::thread::sleep;
use std::time::Duration;

use aya::maps::{PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, TracePoint};
use aya::EbpfLoader;
use huatuo_ebpf::oom::{self as abi, OomEvent, FLAG_VICTIM_DETAILS, FLAG_VICTIM_TASK};
use huatuo_ebpf::{EVENTS_MAP, OOM, STATS_MAP, STAT_RINGBUF_LOST};
use huatuo_otel_tests::memcg::MemoryCgroup;
use huatuo_otel_tests::require_root_and_bpf;

const LIMIT: u64 = 64 << 20;
/// Four times the limit: the OOM killer acts long before the hog is done.
const HOG_BYTES: usize = 256 << 20;
const OOM_SCORE_ADJ: i32 = 500;
const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
enum Entry {
    BtfTracePoint,
    TracePoint,
}

/// Attaches `entry`, has a hog killed in a fresh memory cgroup, and returns the victim's record
/// with the cgroup's id.
fn kill_one(entry: Entry) -> (OomEvent, u64, u32) {
    let page_shift = 12u32;
    let mut ebpf = EbpfLoader::new()
        .override_global(abi::GLOBAL_PAGE_SHIFT, &page_shift, true)
        .load(OOM)
        .expect("kernel accepts the oom object");
    let cgroup = MemoryCgroup::create(&format!("{entry:?}"), LIMIT).expect("memory cgroup");
    let mut hog = match entry {
        Entry::BtfTracePoint => {
            let vmlinux = aya::Btf::from_sys_fs().expect("kernel BTF");
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(abi::PROG_BTF)
                .expect("program oom_mark_victim_btf")
                .try_into()
                .expect("a tp_btf program");
            prog.load(abi::TP_BTF_NAME, &vmlinux)
                .expect("verifier accepts the tp_btf program");
            prog.attach().expect("attach tp_btf/mark_victim");
            cgroup
                .spawn_hog(HOG_BYTES, OOM_SCORE_ADJ)
                .expect("fork hog")
        }
        Entry::TracePoint => {
            let prog: &mut TracePoint = ebpf
                .program_mut(abi::PROG_TRACEPOINT)
                .expect("program oom_mark_victim_tp")
                .try_into()
                .expect("a tracepoint program");
            prog.load()
                .expect("verifier accepts the tracepoint program");
            prog.attach(abi::TRACEPOINT_CATEGORY, abi::TRACEPOINT_NAME)
                .expect("attach tracepoint oom/mark_victim");
            cgroup
                .spawn_hog(HOG_BYTES, OOM_SCORE_ADJ)
                .expect("fork hog")
        }
    };
    let signal = hog.wait_killed(WAIT).expect("the OOM killer kills the hog");
    assert_eq!(signal, libc::SIGKILL);
    // The record is submitted before the kill signal is even sent; this only covers a slow CPU.
    sleep(Duration::from_millis(50));

    let stats: PerCpuArray<_, u64> =
        PerCpuArray::try_from(ebpf.map(STATS_MAP).expect("stats")).expect("per-CPU array");
    let lost: u64 = stats.get(&STAT_RINGBUF_LOST, 0).unwrap().iter().sum();
    assert_eq!(lost, 0, "records lost");
    let mut ring = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).expect("events")).expect("ring");
    let mut ours = Vec::new();
    while let Some(item) = ring.next() {
        assert_eq!(item.len(), OomEvent::SIZE, "record size");
        let e = OomEvent::from_bytes(&item).expect("whole record");
        if e.victim_tid == hog.pid() {
            ours.push(e);
        }
    }
    assert_eq!(ours.len(), 1, "{entry:?}: records for the hog: {ours:?}");
    (ours[0], cgroup.id().expect("cgroup inode"), hog.pid())
}

/// What both entry points report on a kernel with the 6.9+ tracepoint.
fn check_common(entry: Entry, e: &OomEvent, memcg_id: u64, pid: u32) {
    assert_ne!(e.ts_ns, 0);
    // The hog's own page fault ran out of memory: it is the trigger as well as the victim.
    assert_eq!(e.trigger_pid, pid, "{entry:?}: {e:?}");
    assert_eq!(e.trigger_tid, pid);
    assert_eq!(e.trigger_memcg_id, memcg_id);
    assert_ne!(e.trigger_cgroup_id, 0);
    assert_eq!(e.victim_pid, pid);
    assert!(e.has_victim_details(), "{entry:?}: {e:?}");
    assert_eq!(e.victim_uid, 0);
    assert_eq!(i32::from(e.victim_oom_score_adj), OOM_SCORE_ADJ);
    assert_eq!(e.victim_comm(), e.trigger_comm());
    // Nearly all of the limit is the hog's anonymous memory. Its RSS also counts the pages it
    // still shares with this test process since the fork (charged to our cgroup, not its), so
    // it may exceed the limit.
    assert!(
        e.victim_anon_rss > LIMIT / 2,
        "{entry:?}: anon rss {}",
        e.victim_anon_rss
    );
    assert!(e.victim_total_vm >= HOG_BYTES as u64);
    assert_eq!(e.victim_shmem_rss, 0);
    assert_ne!(e.victim_pgtables, 0);
    assert_eq!(e.pad, [0; 6]);
}

#[test]
fn tp_btf_reads_the_victim_task() {
    if !require_root_and_bpf() {
        return;
    }
    let (e, memcg_id, pid) = kill_one(Entry::BtfTracePoint);
    check_common(Entry::BtfTracePoint, &e, memcg_id, pid);
    assert_eq!(e.flags, FLAG_VICTIM_TASK | FLAG_VICTIM_DETAILS);
    assert_eq!(e.victim_memcg_id, memcg_id);
    assert!(
        e.victim_memcg_usage > LIMIT / 2 && e.victim_memcg_usage <= LIMIT,
        "usage at the kill {}",
        e.victim_memcg_usage
    );
}

#[test]
fn tracepoint_reports_the_victim_without_its_task() {
    if !require_root_and_bpf() {
        return;
    }
    let (e, memcg_id, pid) = kill_one(Entry::TracePoint);
    check_common(Entry::TracePoint, &e, memcg_id, pid);
    assert_eq!(e.flags, FLAG_VICTIM_DETAILS);
    assert_eq!(e.victim_memcg_id, 0);
    assert_eq!(e.victim_memcg_usage, 0);
}
