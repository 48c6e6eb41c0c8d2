//! iotracer: block IO of one disk by submitting process and cgroup, counted in the kernel for the
//! length of an autotracing capture.
//!
//! Object [`crate::IOTRACER`] has two programs per tracepoint doing the same work (attach one of
//! each pair, preferring `tp_btf`), for [`START_HOOK`] (6.5+; else [`INSERT_HOOK`]),
//! [`ISSUE_HOOK`] and [`COMPLETE_HOOK`]. Set [`GLOBAL_TARGET_DEV`] (u32, the disk's kernel
//! `dev_t`) before load; read [`IO_MAP`] (`HASH` of [`IoKey`] → [`Io`]) after the capture. The
//! C side is `ebpf/iotracer/iotracer.h`; a test checks the mirror against the object's BTF.

use crate::c_str;
use std::borrow::Cow;

/// Category of every tracepoint below.
pub const TRACEPOINT_CATEGORY: &str = "block";
/// (tracepoint, `tp_btf` program, tracepoint program): where a request starts, in the
/// submitter's context.
pub const START_HOOK: (&str, &str, &str) =
    ("block_io_start", "iotracer_start_btf", "iotracer_start_tp");
/// Where a request starts on kernels without `block_io_start`.
pub const INSERT_HOOK: (&str, &str, &str) = (
    "block_rq_insert",
    "iotracer_insert_btf",
    "iotracer_insert_tp",
);
pub const ISSUE_HOOK: (&str, &str, &str) =
    ("block_rq_issue", "iotracer_issue_btf", "iotracer_issue_tp");
pub const COMPLETE_HOOK: (&str, &str, &str) = (
    "block_rq_complete",
    "iotracer_complete_btf",
    "iotracer_complete_tp",
);

/// `.rodata` u32: the captured disk's `dev_t` as the kernel encodes it (major << 20 | minor).
pub const GLOBAL_TARGET_DEV: &str = "target_dev";
pub const IO_MAP: &str = "io_by_owner";
/// Capacity of [`IO_MAP`]; requests of further owners count as `counter_map_full`.
pub const MAX_OWNERS: usize = 4096;

/// A key of [`IO_MAP`] (`struct iotracer_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoKey {
    pub cgroup_id: u64,
    pub pid: u32,
    pub pad: u32,
}

/// A value of [`IO_MAP`] (`struct iotracer_io`): requests of one owner completed during the
/// capture; latencies in nanoseconds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Io {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub reads: u64,
    pub writes: u64,
    pub others: u64,
    pub q2c_ns_sum: u64,
    pub q2c_ns_max: u64,
    pub d2c_ns_sum: u64,
    pub d2c_ns_max: u64,
    pub comm: [u8; 16],
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding (checked against the C
// structs' BTF in tests).
unsafe impl aya::Pod for IoKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Io {}

impl Io {
    pub fn comm(&self) -> Cow<'_, str> {
        c_str(&self.comm)
    }

    pub fn requests(&self) -> u64 {
        self.reads + self.writes + self.others
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};

    #[test]
    fn records_match_c_layout_and_programs_exist() {
        let btf = Btf::from_object(crate::IOTRACER).unwrap();
        let key = IoKey {
            cgroup_id: 0,
            pid: 0,
            pad: 0,
        };
        assert_same(
            rust_layout!(IoKey, key, [cgroup_id, pid, pad]),
            std::mem::size_of::<IoKey>(),
            c_layout(&btf, "iotracer_key"),
        );
        assert_same(
            rust_layout!(
                Io,
                Io::default(),
                [
                    read_bytes,
                    write_bytes,
                    reads,
                    writes,
                    others,
                    q2c_ns_sum,
                    q2c_ns_max,
                    d2c_ns_sum,
                    d2c_ns_max,
                    comm
                ]
            ),
            std::mem::size_of::<Io>(),
            c_layout(&btf, "iotracer_io"),
        );
        for (_, btf_prog, tp_prog) in [START_HOOK, INSERT_HOOK, ISSUE_HOOK, COMPLETE_HOOK] {
            assert!(btf.has_type(btf_prog), "{btf_prog} missing");
            assert!(btf.has_type(tp_prog), "{tp_prog} missing");
        }
        for name in [IO_MAP, GLOBAL_TARGET_DEV] {
            assert!(btf.has_type(name), "{name} missing");
        }
    }
}
