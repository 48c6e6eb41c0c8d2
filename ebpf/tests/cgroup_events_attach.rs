//! The cgroup_events contract on a live kernel: load the embedded object with aya, attach each
//! entry point pair (tp_btf, then the classic tracepoints), create and remove a nested cgroup in
//! the unified hierarchy, and check both records: the directory's inode as id, the path
//! relative to the mount. Directories of other hierarchies (this host's v1 ones) are left out.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use aya::maps::RingBuf;
use aya::programs::{BtfTracePoint, TracePoint};
use aya::Ebpf;
use huatuo_ebpf::cgroup_events::{self as abi, CgroupEvent};
use huatuo_ebpf::{CGROUP_EVENTS, EVENTS_MAP};
use huatuo_otel_tests::cgroup::unified_root;
use huatuo_otel_tests::require_root_and_bpf;

const WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
enum Entry {
    BtfTracePoint,
    TracePoint,
}

fn attach(entry: Entry) -> Ebpf {
    let mut ebpf = Ebpf::load(CGROUP_EVENTS).expect("kernel accepts the cgroup_events object");
    let pairs = [
        (
            abi::MKDIR_PROG_BTF,
            abi::MKDIR_PROG_TRACEPOINT,
            abi::MKDIR_TRACEPOINT,
        ),
        (
            abi::RMDIR_PROG_BTF,
            abi::RMDIR_PROG_TRACEPOINT,
            abi::RMDIR_TRACEPOINT,
        ),
    ];
    for (btf_prog, tp_prog, name) in pairs {
        match entry {
            Entry::BtfTracePoint => {
                let vmlinux = aya::Btf::from_sys_fs().expect("kernel BTF");
                let prog: &mut BtfTracePoint = ebpf
                    .program_mut(btf_prog)
                    .expect("tp_btf program")
                    .try_into()
                    .expect("a tp_btf program");
                prog.load(name, &vmlinux).expect("verifier accepts it");
                prog.attach().expect("attach tp_btf");
            }
            Entry::TracePoint => {
                let prog: &mut TracePoint = ebpf
                    .program_mut(tp_prog)
                    .expect("tracepoint program")
                    .try_into()
                    .expect("a tracepoint program");
                prog.load().expect("verifier accepts it");
                prog.attach(abi::TRACEPOINT_CATEGORY, name)
                    .expect("attach the tracepoint");
            }
        }
    }
    ebpf
}

/// Creates and removes `<unified>/huatuo-test-<pid>-cgroup-events/leaf` and a directory of the
/// same name in the v1 memory hierarchy; returns the records about them and the leaf's inode.
fn mkdir_rmdir(entry: Entry) -> (Vec<CgroupEvent>, u64, String) {
    let mut ebpf = attach(entry);
    let mut ring = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).expect("events")).expect("ring");
    let parent = format!("/huatuo-test-{}-cgroup-events", std::process::id());
    let path = format!("{parent}/leaf");
    let root = unified_root().unwrap();
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory").join(&parent[1..]);
    std::fs::create_dir_all(root.join(&path[1..])).unwrap();
    let inode = std::fs::metadata(root.join(&path[1..])).unwrap().ino();
    let v1_created = std::fs::create_dir(&v1).is_ok();
    std::fs::remove_dir(root.join(&path[1..])).unwrap();
    std::fs::remove_dir(root.join(&parent[1..])).unwrap();
    if v1_created {
        std::fs::remove_dir(&v1).unwrap();
    }
    let deadline = Instant::now() + WAIT;
    let mut ours = Vec::new();
    while ours.len() < 4 && Instant::now() < deadline {
        while let Some(item) = ring.next() {
            assert_eq!(item.len(), CgroupEvent::SIZE, "record size");
            let e: CgroupEvent = huatuo_ebpf::read_pod(&item).expect("whole record");
            if e.path().starts_with(&parent) {
                ours.push(e);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (ours, inode, path)
}

#[test]
fn both_entry_points_report_unified_cgroups_created_and_removed() {
    if !require_root_and_bpf() {
        return;
    }
    for entry in [Entry::BtfTracePoint, Entry::TracePoint] {
        let (events, inode, path) = mkdir_rmdir(entry);
        // parent mkdir, leaf mkdir, leaf rmdir, parent rmdir: none from the v1 hierarchy.
        assert_eq!(events.len(), 4, "{entry:?}: {events:?}");
        let leaf: Vec<_> = events.iter().filter(|e| e.path() == path).collect();
        assert_eq!(leaf.len(), 2, "{entry:?}");
        assert_eq!(
            (leaf[0].kind, leaf[1].kind),
            (abi::KIND_MKDIR, abi::KIND_RMDIR)
        );
        for e in leaf {
            // Linux 5.5+: the record's id is the kernfs id either way.
            assert_eq!(e.id, inode, "{entry:?}");
            assert!(!e.is_truncated());
        }
    }
}
