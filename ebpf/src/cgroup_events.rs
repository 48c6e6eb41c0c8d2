//! cgroup_events: cgroups of the unified hierarchy created and removed (`cgroup:cgroup_mkdir`,
//! `cgroup:cgroup_rmdir`), which keep the agent's attribution cache fresh.
//!
//! Object [`crate::CGROUP_EVENTS`] has two programs per tracepoint; attach one of each pair.
//! Prefer the `tp_btf` ones ([`MKDIR_PROG_BTF`], [`RMDIR_PROG_BTF`]); fall back to the classic
//! tracepoint ones ([`MKDIR_PROG_TRACEPOINT`], [`RMDIR_PROG_TRACEPOINT`]).
//!
//! Records in [`crate::EVENTS_MAP`] are [`CgroupEvent`]s. The C side is
//! `ebpf/cgroup_events/cgroup_events.h`; a test checks the mirror below against the object's BTF.

use crate::c_str;
use std::borrow::Cow;

pub const MKDIR_PROG_BTF: &str = "cgroup_mkdir_btf";
pub const RMDIR_PROG_BTF: &str = "cgroup_rmdir_btf";
pub const MKDIR_PROG_TRACEPOINT: &str = "cgroup_mkdir_tp";
pub const RMDIR_PROG_TRACEPOINT: &str = "cgroup_rmdir_tp";
/// Category passed to `TracePoint::attach`.
pub const TRACEPOINT_CATEGORY: &str = "cgroup";
/// Names passed to `TracePoint::attach` and `BtfTracePoint::load`.
pub const MKDIR_TRACEPOINT: &str = "cgroup_mkdir";
pub const RMDIR_TRACEPOINT: &str = "cgroup_rmdir";

/// [`CgroupEvent::kind`] values.
pub const KIND_MKDIR: u32 = 1;
pub const KIND_RMDIR: u32 = 2;
/// [`CgroupEvent::flags`]: the path was cut to fit.
pub const FLAG_TRUNCATED: u32 = 1 << 0;
pub const PATH_LEN: usize = 512;

/// One record from the ring buffer (`struct cgroup_event`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupEvent {
    /// Kernfs id (the directory's inode); 0 on kernels before 5.5 through the classic
    /// tracepoint, where userspace reads the inode itself.
    pub id: u64,
    pub kind: u32,
    pub flags: u32,
    /// Relative to the hierarchy's mount, NUL-terminated.
    pub path: [u8; PATH_LEN],
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding (checked against the C
// struct's BTF in tests).
unsafe impl aya::Pod for CgroupEvent {}

impl CgroupEvent {
    /// Size of the C struct and of each ring buffer record.
    pub const SIZE: usize = std::mem::size_of::<Self>();

    pub fn path(&self) -> Cow<'_, str> {
        c_str(&self.path)
    }

    pub fn is_truncated(&self) -> bool {
        self.flags & FLAG_TRUNCATED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};

    #[test]
    fn event_matches_c_layout() {
        let btf = Btf::from_object(crate::CGROUP_EVENTS).unwrap();
        let zero: CgroupEvent = crate::read_pod(&[0; CgroupEvent::SIZE]).unwrap();
        let rust = rust_layout!(CgroupEvent, zero, [id, kind, flags, path]);
        assert_same(rust, CgroupEvent::SIZE, c_layout(&btf, "cgroup_event"));
        assert_eq!(
            btf.enum_value("cgroup_event_kind", "CGROUP_EVENT_MKDIR"),
            Some(i64::from(KIND_MKDIR))
        );
        assert_eq!(
            btf.enum_value("cgroup_event_kind", "CGROUP_EVENT_RMDIR"),
            Some(i64::from(KIND_RMDIR))
        );
    }

    #[test]
    fn object_has_the_four_programs() {
        let btf = Btf::from_object(crate::CGROUP_EVENTS).unwrap();
        for name in [
            MKDIR_PROG_BTF,
            RMDIR_PROG_BTF,
            MKDIR_PROG_TRACEPOINT,
            RMDIR_PROG_TRACEPOINT,
        ] {
            assert!(btf.has_type(name), "{name} missing from the object");
        }
    }
}
