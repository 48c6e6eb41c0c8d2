//! oom: tasks chosen by the OOM killer (`oom:mark_victim`).
//!
//! Object [`crate::OOM`] has two programs doing the same work; attach one. Prefer [`PROG_BTF`]
//! (`BtfTracePoint`, load with [`TP_BTF_NAME`]): on Linux 6.9+ it reads the victim's task, which
//! gives its process id and memory cgroup. Fall back to [`PROG_TRACEPOINT`] (`TracePoint`,
//! attach to [`TRACEPOINT_CATEGORY`]/[`TRACEPOINT_NAME`]). Set [`GLOBAL_PAGE_SHIFT`] before load.
//!
//! Records in [`crate::EVENTS_MAP`] are [`OomEvent`]s. The C side is `ebpf/oom/oom.h`; a test
//! checks the mirror below against the object's BTF.

use crate::c_str;
use std::borrow::Cow;

/// `tp_btf/mark_victim` program.
pub const PROG_BTF: &str = "oom_mark_victim_btf";
/// `tracepoint/oom/mark_victim` program.
pub const PROG_TRACEPOINT: &str = "oom_mark_victim_tp";
/// Name passed to `BtfTracePoint::load`.
pub const TP_BTF_NAME: &str = "mark_victim";
/// Category passed to `TracePoint::attach`.
pub const TRACEPOINT_CATEGORY: &str = "oom";
/// Name passed to `TracePoint::attach`.
pub const TRACEPOINT_NAME: &str = "mark_victim";
/// `.rodata` u32: log2 of the page size, to turn page counts into bytes (default 12).
pub const GLOBAL_PAGE_SHIFT: &str = "page_shift";

/// [`OomEvent::flags`]: the kernel passed the victim's task, so `victim_pid` is its process id
/// and `victim_memcg_id` / `victim_memcg_usage` were read from it.
pub const FLAG_VICTIM_TASK: u32 = 1 << 0;
/// [`OomEvent::flags`]: the victim's comm, uid, oom_score_adj and memory sizes are known
/// (Linux 6.9+); otherwise those fields are zero.
pub const FLAG_VICTIM_DETAILS: u32 = 1 << 1;

/// One record from the ring buffer (`struct oom_event`): one OOM kill. Sizes are bytes; ids of
/// memory cgroups are directory inodes in the memory controller's hierarchy (v1 or v2); 0 means
/// unknown.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OomEvent {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// cgroup v2 id of the task whose allocation triggered the OOM.
    pub trigger_cgroup_id: u64,
    pub trigger_memcg_id: u64,
    pub victim_memcg_id: u64,
    /// The victim's memory cgroup usage at the kill; 0 unless [`FLAG_VICTIM_TASK`] and the cgroup
    /// is not the root (which the kernel does not charge).
    pub victim_memcg_usage: u64,
    pub victim_total_vm: u64,
    pub victim_anon_rss: u64,
    pub victim_file_rss: u64,
    pub victim_shmem_rss: u64,
    pub victim_pgtables: u64,
    pub trigger_pid: u32,
    pub trigger_tid: u32,
    /// Process id with [`FLAG_VICTIM_TASK`], else the thread the kernel reported.
    pub victim_pid: u32,
    pub victim_tid: u32,
    pub victim_uid: u32,
    pub flags: u32,
    pub victim_oom_score_adj: i16,
    pub pad: [u8; 6],
    pub trigger_comm: [u8; 16],
    pub victim_comm: [u8; 16],
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding (checked against the C
// struct's BTF in tests).
unsafe impl aya::Pod for OomEvent {}

impl OomEvent {
    /// Size of the C struct and of each ring buffer record.
    pub const SIZE: usize = std::mem::size_of::<Self>();

    /// Decodes a ring buffer record; None if it is too short.
    pub fn from_bytes(buf: &[u8]) -> Option<Self> {
        crate::read_pod(buf)
    }

    pub fn trigger_comm(&self) -> Cow<'_, str> {
        c_str(&self.trigger_comm)
    }

    pub fn victim_comm(&self) -> Cow<'_, str> {
        c_str(&self.victim_comm)
    }

    pub fn has_victim_task(&self) -> bool {
        self.flags & FLAG_VICTIM_TASK != 0
    }

    pub fn has_victim_details(&self) -> bool {
        self.flags & FLAG_VICTIM_DETAILS != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};

    #[test]
    fn event_matches_c_layout() {
        let btf = Btf::from_object(crate::OOM).unwrap();
        let zero = OomEvent::from_bytes(&[0; OomEvent::SIZE]).unwrap();
        let rust = rust_layout!(
            OomEvent,
            zero,
            [
                ts_ns,
                trigger_cgroup_id,
                trigger_memcg_id,
                victim_memcg_id,
                victim_memcg_usage,
                victim_total_vm,
                victim_anon_rss,
                victim_file_rss,
                victim_shmem_rss,
                victim_pgtables,
                trigger_pid,
                trigger_tid,
                victim_pid,
                victim_tid,
                victim_uid,
                flags,
                victim_oom_score_adj,
                pad,
                trigger_comm,
                victim_comm,
            ]
        );
        assert_same(rust, OomEvent::SIZE, c_layout(&btf, "oom_event"));
        assert_eq!(OomEvent::SIZE, 144);
    }

    #[test]
    fn object_has_programs_and_globals() {
        let btf = Btf::from_object(crate::OOM).unwrap();
        for name in [PROG_BTF, PROG_TRACEPOINT, GLOBAL_PAGE_SHIFT] {
            assert!(btf.has_type(name), "{name} missing from the object");
        }
    }

    #[test]
    fn decodes_a_record() {
        let mut raw = [0u8; OomEvent::SIZE];
        raw[48..56].copy_from_slice(&(70u64 << 20).to_ne_bytes()); // victim_anon_rss
        raw[88..92].copy_from_slice(&4242u32.to_ne_bytes()); // victim_pid
        raw[100..104].copy_from_slice(&FLAG_VICTIM_TASK.to_ne_bytes());
        raw[104..106].copy_from_slice(&(-500i16).to_ne_bytes());
        raw[112..116].copy_from_slice(b"bash");
        raw[128..135].copy_from_slice(b"python3");
        let ev = OomEvent::from_bytes(&raw).unwrap();
        assert_eq!(ev.victim_anon_rss, 70 << 20);
        assert_eq!(ev.victim_pid, 4242);
        assert_eq!(ev.victim_oom_score_adj, -500);
        assert_eq!(ev.trigger_comm(), "bash");
        assert_eq!(ev.victim_comm(), "python3");
        assert!(ev.has_victim_task());
        assert!(!ev.has_victim_details());
        assert!(OomEvent::from_bytes(&raw[..OomEvent::SIZE - 1]).is_none());
    }
}
