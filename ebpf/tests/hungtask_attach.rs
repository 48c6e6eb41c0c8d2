//! The hungtask contract on a live kernel: load the embedded object with aya, attach each entry
//! point (tp_btf, then the classic tracepoint), block a thread of this test in state D with the
//! detector's timeout lowered, and check the record of that thread and the report counter.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.
//!
//! One test for both entry points: they share the host-wide sysctl and would race on it.

use std::thread::sleep;
use std::time::{Duration, Instant};

use aya::maps::{PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, TracePoint};
use aya::Ebpf;
use huatuo_ebpf::hungtask::{self as abi, HungTaskEvent, FLAG_TASK};
use huatuo_ebpf::{EVENTS_MAP, HUNGTASK, STATS_MAP, STAT_RINGBUF_LOST};
use huatuo_otel_tests::cgroup::own_cgroup_id;
use huatuo_otel_tests::dstate::{DStateTasks, HungTaskDetector};
use huatuo_otel_tests::require_root_and_bpf;

/// The detector checks every timeout (2 s) and reports a task blocked for longer than that.
const WAIT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug)]
enum Entry {
    BtfTracePoint,
    TracePoint,
}

fn attach(entry: Entry) -> Ebpf {
    let mut ebpf = Ebpf::load(HUNGTASK).expect("kernel accepts the hungtask object");
    match entry {
        Entry::BtfTracePoint => {
            let vmlinux = aya::Btf::from_sys_fs().expect("kernel BTF");
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(abi::PROG_BTF)
                .expect("program hungtask_btf")
                .try_into()
                .expect("a tp_btf program");
            prog.load(abi::TP_BTF_NAME, &vmlinux)
                .expect("verifier accepts the tp_btf program");
            prog.attach().expect("attach tp_btf/sched_process_hang");
        }
        Entry::TracePoint => {
            let prog: &mut TracePoint = ebpf
                .program_mut(abi::PROG_TRACEPOINT)
                .expect("program hungtask_tp")
                .try_into()
                .expect("a tracepoint program");
            prog.load()
                .expect("verifier accepts the tracepoint program");
            prog.attach(abi::TRACEPOINT_CATEGORY, abi::TRACEPOINT_NAME)
                .expect("attach tracepoint sched/sched_process_hang");
        }
    }
    ebpf
}

/// Blocks a writer until the detector reports it; returns its record, its tid and the count.
fn report_one(entry: Entry) -> (HungTaskEvent, u32, u64) {
    let mut ebpf = attach(entry);
    let mut ring = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).expect("events")).expect("ring");
    let tasks = DStateTasks::start().expect("a writer in state D");
    let tid = tasks.blocked_tid();
    let deadline = Instant::now() + WAIT;
    let mut ours = None;
    while ours.is_none() && Instant::now() < deadline {
        while let Some(item) = ring.next() {
            assert_eq!(item.len(), HungTaskEvent::SIZE, "record size");
            let e = HungTaskEvent::from_bytes(&item).expect("whole record");
            if e.tid == tid {
                ours = Some(e);
            }
        }
        sleep(Duration::from_millis(100));
    }
    drop(tasks);
    let e = ours.unwrap_or_else(|| panic!("{entry:?}: no report of tid {tid} within {WAIT:?}"));

    let hangs: PerCpuArray<_, u64> =
        PerCpuArray::try_from(ebpf.map(abi::HANGS_MAP).expect("hangs")).expect("per-CPU array");
    let stats: PerCpuArray<_, u64> =
        PerCpuArray::try_from(ebpf.map(STATS_MAP).expect("stats")).expect("per-CPU array");
    let lost: u64 = stats.get(&STAT_RINGBUF_LOST, 0).unwrap().iter().sum();
    assert_eq!(lost, 0, "records lost");
    (e, tid, abi::read_hangs(&hangs).unwrap())
}

#[test]
fn both_entry_points_report_a_task_in_state_d() {
    if !require_root_and_bpf() {
        return;
    }
    let _detector = HungTaskDetector::with_timeout(2).expect("hung-task sysctls");

    let (e, tid, hangs) = report_one(Entry::BtfTracePoint);
    assert_ne!(e.ts_ns, 0);
    assert_eq!(e.flags, FLAG_TASK);
    assert_eq!(e.tgid, std::process::id());
    assert_eq!(e.cgroup_id, own_cgroup_id().unwrap());
    assert_eq!(e.comm(), "dstate-writer2");
    // Reported once blocked past the 2 s timeout: at least 2 s of jiffies, at any HZ >= 100.
    assert!(e.blocked_jiffies >= 200, "{} jiffies", e.blocked_jiffies);
    assert!(hangs >= 1, "{tid}: {hangs} reports counted");

    let (e, _, hangs) = report_one(Entry::TracePoint);
    assert_eq!(e.flags, 0);
    assert_eq!((e.tgid, e.cgroup_id, e.blocked_jiffies), (0, 0, 0));
    assert_eq!(e.comm(), "dstate-writer2");
    assert!(hangs >= 1);
}
