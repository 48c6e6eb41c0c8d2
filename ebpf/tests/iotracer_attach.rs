//! The iotracer contract on a live kernel: load the embedded object with aya filtered to a
//! throwaway loop device, attach each entry point flavour (tp_btf, then the classic tracepoints)
//! with each start hook (block_io_start, and block_rq_insert as on kernels before 6.5), read the
//! device with O_DIRECT from this process, and check what the kernel counted for it.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.

use aya::maps::HashMap as BpfHashMap;
use aya::EbpfLoader;
use huatuo_ebpf::iotracer::{self as abi, Io, IoKey};
use huatuo_otel_tests::attach::{attach_tracepoint, Entry};
use huatuo_otel_tests::loopdev::LoopDevice;
use huatuo_otel_tests::require_root_and_bpf;
use std::os::unix::fs::MetadataExt as _;

const READS: u64 = 200;

fn check(disk: &LoopDevice, entry: Entry, start: (&str, &str, &str)) {
    let rdev = std::fs::metadata(disk.path()).unwrap().rdev();
    let dev = huatuo_ebpf::iolatency::kernel_dev(libc::major(rdev), libc::minor(rdev));
    let mut ebpf = EbpfLoader::new()
        .override_global(abi::GLOBAL_TARGET_DEV, &dev, true)
        .load(huatuo_ebpf::IOTRACER)
        .expect("kernel accepts the iotracer object");
    for (name, btf, tracepoint) in [start, abi::ISSUE_HOOK, abi::COMPLETE_HOOK] {
        attach_tracepoint(
            &mut ebpf,
            entry,
            (btf, tracepoint),
            abi::TRACEPOINT_CATEGORY,
            name,
        );
    }
    disk.read_direct(READS).unwrap();
    let map: BpfHashMap<_, IoKey, Io> =
        BpfHashMap::try_from(ebpf.map(abi::IO_MAP).expect("io map")).expect("hash map");
    let pid = std::process::id();
    let ours: Vec<(IoKey, Io)> = map
        .iter()
        .map(Result::unwrap)
        .filter(|(key, _)| key.pid == pid)
        .collect();
    let what = format!("{entry:?} from {}", start.0);
    assert_eq!(
        ours.len(),
        1,
        "{what}: one owner for this process: {ours:?}"
    );
    let (key, io) = ours[0];
    assert!(key.cgroup_id > 0, "{what}: {key:?}");
    assert_eq!(io.reads, READS, "{what}: {io:?}");
    assert_eq!(io.read_bytes, READS * 4096, "{what}: {io:?}");
    assert_eq!((io.writes, io.write_bytes), (0, 0), "{what}: {io:?}");
    assert!(
        io.q2c_ns_sum >= io.d2c_ns_sum && io.d2c_ns_sum > 0,
        "{what}: {io:?}"
    );
    assert!(io.q2c_ns_max > 0 && io.d2c_ns_max > 0, "{what}: {io:?}");
    assert!(!io.comm().is_empty(), "{what}: {io:?}");
    eprintln!(
        "{what}: {} reads, q2c avg {} ns, d2c avg {} ns",
        io.reads,
        io.q2c_ns_sum / io.reads,
        io.d2c_ns_sum / io.reads
    );
}

/// One test for every flavour, one after the other, each with its own object.
#[test]
fn every_entry_point_counts_this_process_s_reads() {
    if !require_root_and_bpf() {
        return;
    }
    let disk = LoopDevice::create(16).unwrap();
    for entry in [Entry::BtfTracePoint, Entry::TracePoint] {
        for start in [abi::START_HOOK, abi::INSERT_HOOK] {
            check(&disk, entry, start);
        }
    }
}
