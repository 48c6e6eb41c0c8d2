//! The waitrate contract on a live kernel: load the embedded object with aya, attach its three
//! tp_btf programs (sched_switch first), make two threads of this process compete for one CPU,
//! and check that this process's cgroup waited, mostly behind itself (both threads are in it);
//! then name that cgroup as a capture target and check that the competitor table fills with
//! this process's threads.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aya::maps::{Array, HashMap, PerCpuHashMap};
use aya::programs::BtfTracePoint;
use aya::Ebpf;
use huatuo_ebpf::waitrate::{self as abi, CaptureState, Competitor, WaitCounts};
use huatuo_ebpf::WAITRATE;
use huatuo_otel_tests::cgroup::own_cgroup_id;
use huatuo_otel_tests::cpu::pin;
use huatuo_otel_tests::require_root_and_bpf;

const CONTENTION: Duration = Duration::from_secs(1);

fn attach() -> Ebpf {
    let mut ebpf = Ebpf::load(WAITRATE).expect("kernel accepts the waitrate object");
    let vmlinux = aya::Btf::from_sys_fs().expect("kernel BTF");
    for (name, prog) in abi::HOOKS {
        let program: &mut BtfTracePoint = ebpf
            .program_mut(prog)
            .unwrap_or_else(|| panic!("program {prog}"))
            .try_into()
            .expect("a tp_btf program");
        program
            .load(name, &vmlinux)
            .unwrap_or_else(|e| panic!("verifier rejects {prog}: {e:?}"));
        program.attach().expect("attach tp_btf");
    }
    ebpf
}

/// Two threads of this process spinning on CPU 0 for [`CONTENTION`], yielding every 2 ms.
fn compete() {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() } as u32;
                pin(tid, 0).expect("pinning to CPU 0");
                while !stop.load(Ordering::Relaxed) {
                    let spin = Instant::now();
                    while spin.elapsed() < Duration::from_millis(2) {
                        std::hint::spin_loop();
                    }
                    std::thread::yield_now();
                }
            })
        })
        .collect();
    std::thread::sleep(CONTENTION);
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn waits_are_split_per_cgroup_and_captures_name_competitors() {
    if !require_root_and_bpf() {
        return;
    }
    let own = own_cgroup_id().unwrap();
    let mut ebpf = attach();
    compete();
    let waits: PerCpuHashMap<_, u64, WaitCounts> =
        PerCpuHashMap::try_from(ebpf.map(abi::WAITS_MAP).unwrap()).unwrap();
    let mut ns = [0u64; abi::KINDS];
    for counts in waits.get(&own, 0).expect("this cgroup waited").iter() {
        for (total, more) in ns.iter_mut().zip(counts.ns) {
            *total += more;
        }
    }
    // Each thread waits about half of the second behind the other, less what other tasks take.
    assert!(ns[abi::INNER] > 100_000_000, "{ns:?}");
    assert_eq!(ns[abi::THROTTLE], 0, "{ns:?}");

    let mut targets: HashMap<_, u64, u8> =
        HashMap::try_from(ebpf.map_mut(abi::TARGETS_MAP).unwrap()).unwrap();
    targets.insert(own, 1, 0).unwrap();
    let mut capture: Array<_, CaptureState> =
        Array::try_from(ebpf.map_mut(abi::CAPTURE_MAP).unwrap()).unwrap();
    capture.set(0, CaptureState { active: 1 }, 0).unwrap();
    compete();
    capture.set(0, CaptureState { active: 0 }, 0).unwrap();
    let competitors: PerCpuHashMap<_, Competitor, u64> =
        PerCpuHashMap::try_from(ebpf.map(abi::COMPETITORS_MAP).unwrap()).unwrap();
    let ours: u64 = competitors
        .iter()
        .map(|entry| entry.unwrap())
        .filter(|(task, _)| task.tgid == std::process::id() && task.cgroup_id == own)
        .map(|(_, per_cpu)| per_cpu.iter().sum::<u64>())
        .sum();
    assert!(ours > 100_000_000, "waited {ours} ns behind this process");
}
