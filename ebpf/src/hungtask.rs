//! hungtask: tasks the kernel's hung-task detector reports (`sched:sched_process_hang`).
//!
//! Object [`crate::HUNGTASK`] has two programs doing the same work; attach one. Prefer
//! [`PROG_BTF`] (`BtfTracePoint`, load with [`TP_BTF_NAME`]): it reads the hung task, which gives
//! its process id and cgroup. Fall back to [`PROG_TRACEPOINT`] (`TracePoint`, attach to
//! [`TRACEPOINT_CATEGORY`]/[`TRACEPOINT_NAME`]).
//!
//! Records in [`crate::EVENTS_MAP`] are [`HungTaskEvent`]s; every report is also counted in
//! [`HANGS_MAP`]. The C side is `ebpf/hungtask/hungtask.h`; a test checks the mirror below
//! against the object's BTF.

use crate::c_str;
use aya::maps::{MapData, MapError, PerCpuArray};
use std::borrow::{Borrow, Cow};

/// `tp_btf/sched_process_hang` program.
pub const PROG_BTF: &str = "hungtask_btf";
/// `tracepoint/sched/sched_process_hang` program.
pub const PROG_TRACEPOINT: &str = "hungtask_tp";
/// Name passed to `BtfTracePoint::load`.
pub const TP_BTF_NAME: &str = "sched_process_hang";
/// Category passed to `TracePoint::attach`.
pub const TRACEPOINT_CATEGORY: &str = "sched";
/// Name passed to `TracePoint::attach`.
pub const TRACEPOINT_NAME: &str = "sched_process_hang";
/// Per-CPU array, one u64 slot: reports seen by either program.
pub const HANGS_MAP: &str = "hangs";

/// [`HungTaskEvent::flags`]: the kernel passed the hung task, so `tgid` and `cgroup_id` were
/// read from it; otherwise both are zero.
pub const FLAG_TASK: u32 = 1 << 0;

/// One record from the ring buffer (`struct hungtask_event`): one hung-task report.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HungTaskEvent {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// cgroup v2 id of the hung task, with [`FLAG_TASK`].
    pub cgroup_id: u64,
    pub tid: u32,
    /// Process of the hung thread, with [`FLAG_TASK`].
    pub tgid: u32,
    pub flags: u32,
    /// Jiffies since the detector's check that first saw the task not switching, with
    /// [`FLAG_TASK`]: a lower bound of the blocked time (the task blocked up to one check
    /// interval before).
    pub blocked_jiffies: u32,
    pub comm: [u8; 16],
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding (checked against the C
// struct's BTF in tests).
unsafe impl aya::Pod for HungTaskEvent {}

impl HungTaskEvent {
    /// Size of the C struct and of each ring buffer record.
    pub const SIZE: usize = std::mem::size_of::<Self>();

    /// Decodes a ring buffer record; None if it is too short.
    pub fn from_bytes(buf: &[u8]) -> Option<Self> {
        crate::read_pod(buf)
    }

    pub fn comm(&self) -> Cow<'_, str> {
        c_str(&self.comm)
    }

    pub fn has_task(&self) -> bool {
        self.flags & FLAG_TASK != 0
    }
}

/// Reports counted in [`HANGS_MAP`] so far, summed over CPUs.
pub fn read_hangs<A: Borrow<MapData>>(map: &PerCpuArray<A, u64>) -> Result<u64, MapError> {
    Ok(map.get(&0, 0)?.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};

    #[test]
    fn event_matches_c_layout() {
        let btf = Btf::from_object(crate::HUNGTASK).unwrap();
        let zero = HungTaskEvent::from_bytes(&[0; HungTaskEvent::SIZE]).unwrap();
        let rust = rust_layout!(
            HungTaskEvent,
            zero,
            [ts_ns, cgroup_id, tid, tgid, flags, blocked_jiffies, comm]
        );
        assert_same(rust, HungTaskEvent::SIZE, c_layout(&btf, "hungtask_event"));
        assert_eq!(HungTaskEvent::SIZE, 48);
    }

    #[test]
    fn object_has_programs_and_maps() {
        let btf = Btf::from_object(crate::HUNGTASK).unwrap();
        for name in [PROG_BTF, PROG_TRACEPOINT, HANGS_MAP] {
            assert!(btf.has_type(name), "{name} missing from the object");
        }
    }

    #[test]
    fn decodes_a_record() {
        let mut raw = [0u8; HungTaskEvent::SIZE];
        raw[8..16].copy_from_slice(&77u64.to_ne_bytes());
        raw[16..20].copy_from_slice(&4243u32.to_ne_bytes());
        raw[20..24].copy_from_slice(&4242u32.to_ne_bytes());
        raw[24..28].copy_from_slice(&FLAG_TASK.to_ne_bytes());
        raw[32..37].copy_from_slice(b"fsync");
        let ev = HungTaskEvent::from_bytes(&raw).unwrap();
        assert_eq!((ev.cgroup_id, ev.tid, ev.tgid), (77, 4243, 4242));
        assert_eq!(ev.comm(), "fsync");
        assert!(ev.has_task());
        assert!(HungTaskEvent::from_bytes(&raw[..HungTaskEvent::SIZE - 1]).is_none());
    }
}
