//! The sched_tick contract on a live kernel: load the embedded object with aya, with the tick
//! handler's address from /proc/kallsyms, attach each entry point (tp_btf, then the classic
//! tracepoint), and with a threshold of 1 ns (every tick is late by more than that) check that
//! ticks are counted per CPU and recorded with a kernel stack. With the real threshold nothing
//! would be late on an idle test machine; the agent's e2e test covers the whole path.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.

use std::time::{Duration, Instant};

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};
use huatuo_ebpf::sched_tick::{self as abi, SchedTickEvent};
use huatuo_ebpf::{EVENTS_MAP, SCHED_TICK};
use huatuo_otel_tests::require_root_and_bpf;

/// A few ticks at any HZ (100..1000), and a busy CPU keeps its tick running.
const WAIT: Duration = Duration::from_secs(3);

/// The tick's hrtimer function, as the agent finds it.
fn tick_handler() -> u64 {
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("/proc/kallsyms");
    abi::TICK_HANDLER_SYMBOLS
        .iter()
        .find_map(|wanted| {
            kallsyms.lines().find_map(|line| {
                let mut fields = line.split_whitespace();
                let addr = fields.next()?;
                let _kind = fields.next()?;
                (fields.next()? == *wanted).then(|| u64::from_str_radix(addr, 16).ok())?
            })
        })
        .expect("a tick handler in /proc/kallsyms")
}

fn load() -> Ebpf {
    let handler = tick_handler();
    assert_ne!(handler, 0, "kallsyms hides addresses");
    EbpfLoader::new()
        .override_global(abi::GLOBAL_TICK_HANDLER, &handler, true)
        .override_global(abi::GLOBAL_THRESHOLD_NS, &1u64, true)
        .load(SCHED_TICK)
        .expect("kernel accepts the object")
}

/// Spins until `done` or the deadline, so this CPU's tick keeps firing (an idle CPU stops it).
fn spin_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        if done() {
            return true;
        }
    }
    false
}

fn assert_ticks_recorded(ebpf: &mut Ebpf) {
    let late: PerCpuArray<MapData, u64> =
        PerCpuArray::try_from(ebpf.take_map(abi::LATE_TICKS_MAP).expect("late_ticks"))
            .expect("a per-CPU array");
    let mut ring =
        RingBuf::try_from(ebpf.take_map(EVENTS_MAP).expect("events")).expect("a ring buffer");
    let mut record = None;
    let found = spin_until(|| {
        if let Some(item) = ring.next() {
            record = Some(huatuo_ebpf::read_pod::<SchedTickEvent>(&item).expect("a full record"));
        }
        record.is_some()
    });
    assert!(found, "no late tick recorded within {WAIT:?}");
    let record = record.unwrap();
    assert!(record.delay_ns >= 1);
    assert!(
        (record.cpu as usize) < aya::util::nr_cpus().unwrap(),
        "{record:?}"
    );
    assert!(
        record.stack.frames().len() >= 3,
        "a stack through the timer interrupt: {:?}",
        record.stack.frames()
    );
    assert!(record
        .stack
        .frames()
        .iter()
        .all(|&ip| ip >= 0xffff_0000_0000_0000));
    let counted: u64 = late.get(&0, 0).expect("read late_ticks").iter().sum();
    assert!(counted >= 1, "late ticks not counted");
}

#[test]
fn tp_btf_entry_point_attaches_and_records_ticks() {
    if !require_root_and_bpf() {
        return;
    }
    let mut ebpf = load();
    let vmlinux = aya::Btf::from_sys_fs().expect("kernel BTF");
    let prog: &mut BtfTracePoint = ebpf
        .program_mut(abi::PROG_BTF)
        .expect("program sched_tick_btf")
        .try_into()
        .expect("a tp_btf program");
    prog.load(abi::TP_BTF_NAME, &vmlinux)
        .expect("verifier accepts the tp_btf program");
    prog.attach().expect("attach tp_btf/hrtimer_expire_entry");
    assert_ticks_recorded(&mut ebpf);
}

#[test]
fn tracepoint_entry_point_attaches_and_records_ticks() {
    if !require_root_and_bpf() {
        return;
    }
    let mut ebpf = load();
    let prog: &mut TracePoint = ebpf
        .program_mut(abi::PROG_TRACEPOINT)
        .expect("program sched_tick_tp")
        .try_into()
        .expect("a tracepoint program");
    prog.load()
        .expect("verifier accepts the tracepoint program");
    prog.attach(abi::TRACEPOINT_CATEGORY, abi::TRACEPOINT_NAME)
        .expect("attach tracepoint timer/hrtimer_expire_entry");
    assert_ticks_recorded(&mut ebpf);
}
