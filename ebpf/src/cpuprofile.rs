//! cpuprofile: on-CPU stack sampling for autotracing CPU captures.
//!
//! Object [`crate::CPUPROFILE`] has one `perf_event` program, [`PROG`], attached to a cpu-clock
//! event on every CPU for the length of a capture. It counts samples in [`SAMPLES_MAP`]
//! (`PERCPU_HASH` of [`CpuProfileKey`] → u64) with stacks in [`STACKS_MAP`] (`STACK_TRACE`,
//! [`STACK_DEPTH`] frames). With [`GLOBAL_FILTER_CGROUP`] set to 1, only tasks under the cgroup
//! whose directory fd is in slot 0 of [`TARGET_CGROUP_MAP`] are sampled. The C side is
//! `ebpf/cpuprofile/cpuprofile.h`; a test checks the mirror against the object's BTF.

use crate::c_str;
use std::borrow::Cow;

pub const PROG: &str = "cpuprofile_sample";
pub const SAMPLES_MAP: &str = "samples";
pub const STACKS_MAP: &str = "stacks";
pub const TARGET_CGROUP_MAP: &str = "target_cgroup";
pub const GLOBAL_FILTER_CGROUP: &str = "filter_cgroup";
pub const STACK_DEPTH: usize = 32;

/// A key of [`SAMPLES_MAP`] (`struct cpuprofile_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CpuProfileKey {
    pub pid: u32,
    /// Negative: no user stack (a kernel thread) or it could not be stored.
    pub user_stack_id: i32,
    /// Negative: no kernel stack or it could not be stored.
    pub kernel_stack_id: i32,
    pub comm: [u8; 16],
    pub pad: u32,
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding (checked against the C
// struct's BTF in tests).
unsafe impl aya::Pod for CpuProfileKey {}

impl CpuProfileKey {
    pub fn comm(&self) -> Cow<'_, str> {
        c_str(&self.comm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};

    #[test]
    fn key_matches_c_layout() {
        let btf = Btf::from_object(crate::CPUPROFILE).unwrap();
        let zero = CpuProfileKey {
            pid: 0,
            user_stack_id: 0,
            kernel_stack_id: 0,
            comm: [0; 16],
            pad: 0,
        };
        let rust = rust_layout!(
            CpuProfileKey,
            zero,
            [pid, user_stack_id, kernel_stack_id, comm, pad]
        );
        assert_same(
            rust,
            std::mem::size_of::<CpuProfileKey>(),
            c_layout(&btf, "cpuprofile_key"),
        );
        assert!(btf.has_type(PROG), "{PROG} missing from the object");
    }
}
