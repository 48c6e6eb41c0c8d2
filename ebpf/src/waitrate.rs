//! waitrate: per-cgroup run-queue wait split into inner, external, throttle and other
//! (`sched:sched_wakeup`, `sched:sched_wakeup_new`, `sched:sched_switch`, `tp_btf` only: the
//! programs read both tasks of a switch and their cgroups).
//!
//! Object [`crate::WAITRATE`] counts into [`WAITS_MAP`] (`PERCPU_HASH` of the v2 cgroup id →
//! [`WaitCounts`]) and keeps each CPU's run time per cgroup in [`OCCUPANCY_MAP`] (`HASH` of
//! [`OccupancyKey`] → u64 ns). During a capture the agent puts the target's cgroup ids in
//! [`TARGETS_MAP`] and sets [`CaptureState::active`] in [`CAPTURE_MAP`]; the kernel then fills
//! [`COMPETITORS_MAP`] (`PERCPU_HASH` of [`Competitor`] → u64 ns). The C side is
//! `ebpf/waitrate/waitrate.h`; a test checks the mirror against the object's BTF.

use crate::c_str;
use std::borrow::Cow;

/// Category of every tracepoint below.
pub const TRACEPOINT_CATEGORY: &str = "sched";
/// (tracepoint, `tp_btf` program); there is no classic tracepoint program. Attach in this
/// order: sched_switch ends waits and sets up each CPU's occupancy, so attached after the
/// wakeups (each attach takes a while) it would find waits that began long before it could
/// end them.
pub const HOOKS: [(&str, &str); 3] = [
    ("sched_switch", "waitrate_switch"),
    ("sched_wakeup", "waitrate_wakeup"),
    ("sched_wakeup_new", "waitrate_wakeup_new"),
];

pub const WAITS_MAP: &str = "waits";
pub const OCCUPANCY_MAP: &str = "occupancy";
pub const CAPTURE_MAP: &str = "capture";
pub const TARGETS_MAP: &str = "targets";
pub const COMPETITORS_MAP: &str = "competitors";
/// Capacity of [`TARGETS_MAP`] (`WAITRATE_MAX_TARGETS`).
pub const MAX_TARGETS: usize = 64;

/// `enum waitrate_kind`: the index of each part of [`WaitCounts::ns`].
pub const INNER: usize = 0;
pub const EXTERNAL: usize = 1;
pub const THROTTLE: usize = 2;
pub const OTHER: usize = 3;
pub const KINDS: usize = 4;

/// A value of [`WAITS_MAP`] (`struct waitrate_counts`), one CPU's share.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitCounts {
    /// Cumulative nanoseconds by kind ([`INNER`], [`EXTERNAL`], [`THROTTLE`], [`OTHER`]).
    pub ns: [u64; KINDS],
    /// Waits ended.
    pub waits: u64,
}

/// A key of [`OCCUPANCY_MAP`] (`struct waitrate_occupancy_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OccupancyKey {
    pub cgroup_id: u64,
    pub cpu: u32,
    pub pad: u32,
}

/// A key of [`COMPETITORS_MAP`] (`struct waitrate_competitor`): a task that ran while the
/// capture's target waited on the same CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Competitor {
    pub cgroup_id: u64,
    pub tgid: u32,
    pub tid: u32,
    pub comm: [u8; 16],
}

impl Competitor {
    pub fn comm(&self) -> Cow<'_, str> {
        c_str(&self.comm)
    }
}

/// The value of [`CAPTURE_MAP`] (`struct waitrate_capture`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureState {
    pub active: u64,
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding (checked against the C
// structs' BTF in tests).
unsafe impl aya::Pod for WaitCounts {}
// SAFETY: as above.
unsafe impl aya::Pod for OccupancyKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Competitor {}
// SAFETY: as above.
unsafe impl aya::Pod for CaptureState {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};

    #[test]
    fn structs_and_kinds_match_c_layout() {
        let btf = Btf::from_object(crate::WAITRATE).unwrap();
        let counts = rust_layout!(WaitCounts, WaitCounts::default(), [ns, waits]);
        assert_same(
            counts,
            std::mem::size_of::<WaitCounts>(),
            c_layout(&btf, "waitrate_counts"),
        );
        let key = OccupancyKey {
            cgroup_id: 0,
            cpu: 0,
            pad: 0,
        };
        assert_same(
            rust_layout!(OccupancyKey, key, [cgroup_id, cpu, pad]),
            std::mem::size_of::<OccupancyKey>(),
            c_layout(&btf, "waitrate_occupancy_key"),
        );
        let competitor = Competitor {
            cgroup_id: 0,
            tgid: 0,
            tid: 0,
            comm: [0; 16],
        };
        assert_same(
            rust_layout!(Competitor, competitor, [cgroup_id, tgid, tid, comm]),
            std::mem::size_of::<Competitor>(),
            c_layout(&btf, "waitrate_competitor"),
        );
        assert_same(
            rust_layout!(CaptureState, CaptureState::default(), [active]),
            std::mem::size_of::<CaptureState>(),
            c_layout(&btf, "waitrate_capture"),
        );
        for (variant, index) in [
            ("WAITRATE_INNER", INNER),
            ("WAITRATE_EXTERNAL", EXTERNAL),
            ("WAITRATE_THROTTLE", THROTTLE),
            ("WAITRATE_OTHER", OTHER),
            ("WAITRATE_KINDS", KINDS),
        ] {
            assert_eq!(
                btf.enum_value("waitrate_kind", variant),
                Some(index as i64),
                "{variant}"
            );
        }
        for (_, prog) in HOOKS {
            assert!(btf.has_type(prog), "{prog} missing");
        }
        for map in [
            WAITS_MAP,
            OCCUPANCY_MAP,
            CAPTURE_MAP,
            TARGETS_MAP,
            COMPETITORS_MAP,
        ] {
            assert!(btf.has_type(map), "{map} missing");
        }
    }
}
