//! ras: hardware errors from the kernel's RAS tracepoints, whichever exist.
//!
//! Object [`crate::RAS`] has one classic tracepoint program per [`Source`]; attach those whose
//! tracepoint the kernel has. Records in [`crate::EVENTS_MAP`] are [`RasEvent`]s: the source and
//! the tracepoint's raw record, to decode with its tracefs format. [`COUNTS_MAP`] counts every
//! error by source. The C side is `ebpf/ras/ras.h`; a test checks the mirror against the
//! object's BTF.

use aya::maps::{MapData, PerCpuArray};

/// PERCPU_ARRAY, one [`RasCounts`] entry.
pub const COUNTS_MAP: &str = "ras_counts";
/// Raw record bytes kept per error (`RAS_RECORD_BYTES`).
pub const RECORD_BYTES: usize = 1024;

/// `enum ras_source`: which tracepoint reported the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Mce,
    Edac,
    Aer,
    Arm,
    NonStandard,
    MemoryFailure,
}

impl Source {
    /// Every source, in `enum ras_source` order.
    pub const ALL: [Source; 6] = [
        Source::Mce,
        Source::Edac,
        Source::Aer,
        Source::Arm,
        Source::NonStandard,
        Source::MemoryFailure,
    ];

    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.get(raw as usize).copied()
    }

    /// The program attached to this source's tracepoint.
    pub const fn program(self) -> &'static str {
        match self {
            Source::Mce => "ras_mce_record",
            Source::Edac => "ras_mc_event",
            Source::Aer => "ras_aer_event",
            Source::Arm => "ras_arm_event",
            Source::NonStandard => "ras_non_standard_event",
            Source::MemoryFailure => "ras_memory_failure_event",
        }
    }

    /// (category, name) of the tracepoint.
    pub const fn tracepoint(self) -> (&'static str, &'static str) {
        match self {
            Source::Mce => ("mce", "mce_record"),
            Source::Edac => ("ras", "mc_event"),
            Source::Aer => ("ras", "aer_event"),
            Source::Arm => ("ras", "arm_event"),
            Source::NonStandard => ("ras", "non_standard_event"),
            Source::MemoryFailure => ("ras", "memory_failure_event"),
        }
    }
}

/// `struct ras_counts`: errors by source, indexed by `enum ras_source`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RasCounts {
    pub count: [u64; Source::ALL.len()],
}

// SAFETY: plain integers, no padding.
unsafe impl aya::Pod for RasCounts {}

/// Errors by source, summed over CPUs.
pub fn read_counts(
    map: &PerCpuArray<MapData, RasCounts>,
) -> Result<Vec<(Source, u64)>, aya::maps::MapError> {
    let per_cpu = map.get(&0, 0)?;
    Ok(Source::ALL
        .iter()
        .enumerate()
        .map(|(index, &source)| (source, per_cpu.iter().map(|c| c.count[index]).sum()))
        .collect())
}

/// One record from the ring buffer (`struct ras_event`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RasEvent {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// `enum ras_source`.
    pub source: u32,
    pub cpu: u32,
    /// The tracepoint's record from its first byte, possibly followed by unrelated bytes.
    pub record: [u8; RECORD_BYTES],
}

// SAFETY: repr(C), integers and a byte array, no implicit padding (checked against the C struct's
// BTF in tests).
unsafe impl aya::Pod for RasEvent {}

impl RasEvent {
    /// Size of the C struct and of each ring buffer record.
    pub const SIZE: usize = std::mem::size_of::<Self>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};

    #[test]
    fn event_and_counts_match_c_layout() {
        let btf = Btf::from_object(crate::RAS).unwrap();
        let zero: RasEvent = crate::read_pod(&[0; RasEvent::SIZE]).unwrap();
        let rust = rust_layout!(RasEvent, zero, [ts_ns, source, cpu, record]);
        assert_same(rust, RasEvent::SIZE, c_layout(&btf, "ras_event"));
        let counts = RasCounts {
            count: [0; Source::ALL.len()],
        };
        assert_same(
            rust_layout!(RasCounts, counts, [count]),
            std::mem::size_of::<RasCounts>(),
            c_layout(&btf, "ras_counts"),
        );
    }

    #[test]
    fn sources_match_the_c_enum_and_the_programs() {
        let btf = Btf::from_object(crate::RAS).unwrap();
        let c_names = [
            "RAS_SOURCE_MCE",
            "RAS_SOURCE_EDAC",
            "RAS_SOURCE_AER",
            "RAS_SOURCE_ARM",
            "RAS_SOURCE_NON_STANDARD",
            "RAS_SOURCE_MEMORY_FAILURE",
        ];
        for (index, (source, c_name)) in Source::ALL.iter().zip(c_names).enumerate() {
            assert_eq!(btf.enum_value("ras_source", c_name), Some(index as i64));
            assert_eq!(Source::from_raw(index as u32), Some(*source));
            assert!(btf.has_type(source.program()), "{source:?} program");
        }
        assert_eq!(
            btf.enum_value("ras_source", "RAS_SOURCES"),
            Some(Source::ALL.len() as i64)
        );
        assert_eq!(Source::from_raw(6), None);
    }
}
