//! memreclaim: tasks stalled in direct reclaim or memory cgroup reclaim
//! (`vmscan:mm_vmscan_direct_reclaim_begin/_end`, `vmscan:mm_vmscan_memcg_reclaim_begin/_end`).
//!
//! Object [`crate::MEMRECLAIM`] has two programs per tracepoint doing the same work; attach one
//! of each ([`HOOKS`]): the `BtfTracePoint` one, else the `TracePoint` one. Set
//! [`GLOBAL_STALL_THRESHOLD_NS`] before load.
//!
//! Every stall is counted in [`STALL_MAP`], a log2 histogram of microseconds with one row per
//! [`Kind`]; those at or above the threshold also in [`STALLS_MAP`] and as [`MemreclaimEvent`]
//! records in [`crate::EVENTS_MAP`]. The C side is `ebpf/memreclaim/memreclaim.h`; tests check
//! the mirrors against the object's BTF.
//!
//! [`OPTIONAL_HOOKS`], attached where the kernel has them: zone compactions
//! (`compaction:mm_compaction_begin/_end`) counted in [`COMPACT_MAP`] by [`CompactionKind`], and
//! kswapd's time awake per NUMA node (`vmscan:mm_vmscan_kswapd_wake/_sleep`) in [`KSWAPD_MAP`].

use crate::c_str;
use aya::maps::{Array, MapData, MapError, PerCpuArray};
use std::borrow::{Borrow, Cow};
use std::collections::HashMap;

/// Category of every tracepoint but the compaction ones.
pub const TRACEPOINT_CATEGORY: &str = "vmscan";
/// Category of the compaction tracepoints.
pub const COMPACTION_CATEGORY: &str = "compaction";

/// One tracepoint: its category, its name (also the `tp_btf` name), its `tp_btf` program and its
/// tracepoint program.
pub struct Hook {
    pub category: &'static str,
    pub tracepoint: &'static str,
    pub prog_btf: &'static str,
    pub prog_tracepoint: &'static str,
}

/// Every tracepoint the tracer needs.
pub const HOOKS: [Hook; 4] = [
    Hook {
        category: TRACEPOINT_CATEGORY,
        tracepoint: "mm_vmscan_direct_reclaim_begin",
        prog_btf: "direct_begin_btf",
        prog_tracepoint: "direct_begin_tp",
    },
    Hook {
        category: TRACEPOINT_CATEGORY,
        tracepoint: "mm_vmscan_direct_reclaim_end",
        prog_btf: "direct_end_btf",
        prog_tracepoint: "direct_end_tp",
    },
    Hook {
        category: TRACEPOINT_CATEGORY,
        tracepoint: "mm_vmscan_memcg_reclaim_begin",
        prog_btf: "memcg_begin_btf",
        prog_tracepoint: "memcg_begin_tp",
    },
    Hook {
        category: TRACEPOINT_CATEGORY,
        tracepoint: "mm_vmscan_memcg_reclaim_end",
        prog_btf: "memcg_end_btf",
        prog_tracepoint: "memcg_end_tp",
    },
];

/// The tracepoints of the compaction and kswapd counts: attached where the kernel has them
/// (compaction needs `CONFIG_COMPACTION`).
pub const OPTIONAL_HOOKS: [Hook; 4] = [
    Hook {
        category: COMPACTION_CATEGORY,
        tracepoint: "mm_compaction_begin",
        prog_btf: "compaction_begin_btf",
        prog_tracepoint: "compaction_begin_tp",
    },
    Hook {
        category: COMPACTION_CATEGORY,
        tracepoint: "mm_compaction_end",
        prog_btf: "compaction_end_btf",
        prog_tracepoint: "compaction_end_tp",
    },
    Hook {
        category: TRACEPOINT_CATEGORY,
        tracepoint: "mm_vmscan_kswapd_wake",
        prog_btf: "kswapd_wake_btf",
        prog_tracepoint: "kswapd_wake_tp",
    },
    Hook {
        category: TRACEPOINT_CATEGORY,
        tracepoint: "mm_vmscan_kswapd_sleep",
        prog_btf: "kswapd_sleep_btf",
        prog_tracepoint: "kswapd_sleep_tp",
    },
];

/// `.rodata` u64: stalls at or above it (nanoseconds) become records.
pub const GLOBAL_STALL_THRESHOLD_NS: &str = "stall_threshold_ns";
/// Histogram map ([`crate::hist::Log2Hist`] rows), row = [`Kind`], values in microseconds.
pub const STALL_MAP: &str = "stall_us";
/// Per-CPU array of u64, one slot per [`Kind`]: stalls at or above the threshold.
pub const STALLS_MAP: &str = "stalls";
/// Hash map of the tasks inside a reclaim or a compaction.
pub const START_MAP: &str = "reclaim_start";
/// Histogram map ([`crate::hist::Log2Hist`] rows), row = [`CompactionKind`], values in
/// microseconds: one count per compaction of a zone.
pub const COMPACT_MAP: &str = "compact_us";
/// Array of [`KswapdNode`], index = NUMA node, [`MAX_NODES`] rows.
pub const KSWAPD_MAP: &str = "kswapd";
/// `MEMRECLAIM_MAX_NODES`: nodes above are not counted.
pub const MAX_NODES: u32 = 64;

/// `MEMRECLAIM_COMPACT_*`: who ran a compaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompactionKind {
    /// The page allocator, on the allocating task's time (a stall).
    Direct = 0,
    /// The background kcompactd thread, proactive compaction included.
    Kcompactd = 1,
    /// A write to `vm.compact_memory` or to a node's `compact` file.
    Manual = 2,
}

impl CompactionKind {
    pub const ALL: [CompactionKind; 3] = [
        CompactionKind::Direct,
        CompactionKind::Kcompactd,
        CompactionKind::Manual,
    ];

    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.get(raw as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            CompactionKind::Direct => "direct",
            CompactionKind::Kcompactd => "kcompactd",
            CompactionKind::Manual => "manual",
        }
    }
}

/// One node's kswapd (`struct memreclaim_kswapd`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KswapdNode {
    /// CLOCK_MONOTONIC nanoseconds at the first wake of the current run; 0 while asleep.
    pub awake_since_ns: u64,
    /// Total time of the runs that ended.
    pub awake_ns: u64,
    /// Wakes: one per balancing pass.
    pub wakeups: u64,
}

// SAFETY: repr(C), integers only, no padding (checked against the C struct's BTF in tests).
unsafe impl aya::Pod for KswapdNode {}

impl KswapdNode {
    /// Time awake up to `now_ns` (CLOCK_MONOTONIC), the current run included.
    pub fn awake_ns_at(&self, now_ns: u64) -> u64 {
        let current = if self.awake_since_ns == 0 {
            0
        } else {
            now_ns.saturating_sub(self.awake_since_ns)
        };
        self.awake_ns + current
    }
}

/// Nodes whose kswapd ever woke while the programs were attached, by node.
pub fn read_kswapd<A: Borrow<MapData>>(
    map: &Array<A, KswapdNode>,
) -> Result<Vec<(u32, KswapdNode)>, MapError> {
    let mut nodes = Vec::new();
    for node in 0..MAX_NODES {
        let value = map.get(&node, 0)?;
        if value.wakeups != 0 {
            nodes.push((node, value));
        }
    }
    Ok(nodes)
}

/// `MEMRECLAIM_*`: which reclaim stalled the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The page allocator reclaiming on the allocating task's time.
    Direct = 0,
    /// Reclaim in a memory cgroup whose charge went over its limit.
    Memcg = 1,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Direct, Kind::Memcg];

    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.get(raw as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Memcg => "memcg",
        }
    }
}

/// One record from the ring buffer (`struct memreclaim_event`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemreclaimEvent {
    /// CLOCK_MONOTONIC nanoseconds at the end of the reclaim.
    pub ts_ns: u64,
    pub duration_ns: u64,
    /// Pages the reclaim freed.
    pub nr_reclaimed: u64,
    /// cgroup v2 id of the task.
    pub cgroup_id: u64,
    /// Directory inode of the task's memory cgroup (v1 or v2 hierarchy); 0 if unknown.
    pub memcg_id: u64,
    pub pid: u32,
    pub tid: u32,
    /// [`Kind`] as a number.
    pub kind: u32,
    pub pad: u32,
    pub comm: [u8; 16],
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding (checked against the C
// struct's BTF in tests).
unsafe impl aya::Pod for MemreclaimEvent {}

impl MemreclaimEvent {
    /// Size of the C struct and of each ring buffer record.
    pub const SIZE: usize = std::mem::size_of::<Self>();

    pub fn comm(&self) -> Cow<'_, str> {
        c_str(&self.comm)
    }
}

/// Stalls at or above the threshold counted in [`STALLS_MAP`] so far, by kind, summed over CPUs.
pub fn read_stalls<A: Borrow<MapData>>(
    map: &PerCpuArray<A, u64>,
) -> Result<HashMap<Kind, u64>, MapError> {
    Kind::ALL
        .into_iter()
        .map(|kind| Ok((kind, map.get(&(kind as u32), 0)?.iter().sum())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};

    #[test]
    fn event_matches_c_layout() {
        let btf = Btf::from_object(crate::MEMRECLAIM).unwrap();
        let zero: MemreclaimEvent = crate::read_pod(&[0; MemreclaimEvent::SIZE]).unwrap();
        let rust = rust_layout!(
            MemreclaimEvent,
            zero,
            [
                ts_ns,
                duration_ns,
                nr_reclaimed,
                cgroup_id,
                memcg_id,
                pid,
                tid,
                kind,
                pad,
                comm
            ]
        );
        assert_same(
            rust,
            MemreclaimEvent::SIZE,
            c_layout(&btf, "memreclaim_event"),
        );
        assert_eq!(MemreclaimEvent::SIZE, 72);
    }

    #[test]
    fn kswapd_node_matches_c_layout() {
        let btf = Btf::from_object(crate::MEMRECLAIM).unwrap();
        let rust = rust_layout!(
            KswapdNode,
            KswapdNode::default(),
            [awake_since_ns, awake_ns, wakeups]
        );
        assert_same(
            rust,
            std::mem::size_of::<KswapdNode>(),
            c_layout(&btf, "memreclaim_kswapd"),
        );
    }

    #[test]
    fn a_run_in_progress_counts_up_to_now() {
        let asleep = KswapdNode {
            awake_since_ns: 0,
            awake_ns: 500,
            wakeups: 3,
        };
        assert_eq!(asleep.awake_ns_at(10_000), 500);
        let awake = KswapdNode {
            awake_since_ns: 9_000,
            ..asleep
        };
        assert_eq!(awake.awake_ns_at(10_000), 1_500);
    }

    #[test]
    fn histogram_matches_c_layout() {
        crate::hist::assert_layout_in(crate::MEMRECLAIM);
    }

    #[test]
    fn object_has_programs_maps_and_globals() {
        let btf = Btf::from_object(crate::MEMRECLAIM).unwrap();
        let names = HOOKS
            .iter()
            .chain(&OPTIONAL_HOOKS)
            .flat_map(|h| [h.prog_btf, h.prog_tracepoint])
            .chain([
                GLOBAL_STALL_THRESHOLD_NS,
                STALL_MAP,
                STALLS_MAP,
                START_MAP,
                COMPACT_MAP,
                KSWAPD_MAP,
            ]);
        for name in names {
            assert!(btf.has_type(name), "{name} missing from the object");
        }
    }

    #[test]
    fn kinds_are_the_headers() {
        assert_eq!(Kind::from_raw(0), Some(Kind::Direct));
        assert_eq!(Kind::from_raw(1).map(Kind::name), Some("memcg"));
        assert_eq!(Kind::from_raw(2), None);
        assert_eq!(
            CompactionKind::from_raw(1).map(CompactionKind::name),
            Some("kcompactd")
        );
        assert_eq!(CompactionKind::from_raw(3), None);
    }
}
