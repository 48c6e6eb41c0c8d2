//! softirq: how long softirq vectors wait between being raised and running
//! (`irq:softirq_raise`, `irq:softirq_entry`).
//!
//! Object [`crate::SOFTIRQ`] has two programs per tracepoint doing the same work; attach one of
//! each: the `BtfTracePoint` ones ([`PROG_RAISE_BTF`], [`PROG_ENTRY_BTF`], loaded with the
//! tracepoint's name), else the `TracePoint` ones. Set [`GLOBAL_WATCHED_VECTORS`] and
//! [`GLOBAL_LATENCY_THRESHOLD_NS`] before load.
//!
//! Every wait of a watched vector is counted in [`LATENCY_MAP`], a log2 histogram of
//! microseconds with one row per vector; records in [`crate::EVENTS_MAP`] are
//! [`SoftirqEvent`]s. The C side is `ebpf/softirq/softirq.h`; tests check the mirrors against the
//! object's BTF.

use crate::c_str;
use std::borrow::Cow;

/// Category of both tracepoints.
pub const TRACEPOINT_CATEGORY: &str = "irq";
/// Tracepoint name, also the `tp_btf` name.
pub const TRACEPOINT_RAISE: &str = "softirq_raise";
/// Tracepoint name, also the `tp_btf` name.
pub const TRACEPOINT_ENTRY: &str = "softirq_entry";
/// `tp_btf/softirq_raise` program.
pub const PROG_RAISE_BTF: &str = "softirq_raise_btf";
/// `tracepoint/irq/softirq_raise` program.
pub const PROG_RAISE_TRACEPOINT: &str = "softirq_raise_tp";
/// `tp_btf/softirq_entry` program.
pub const PROG_ENTRY_BTF: &str = "softirq_entry_btf";
/// `tracepoint/irq/softirq_entry` program.
pub const PROG_ENTRY_TRACEPOINT: &str = "softirq_entry_tp";

/// `.rodata` u32: bit n set measures vector n.
pub const GLOBAL_WATCHED_VECTORS: &str = "watched_vectors";
/// `.rodata` u64: waits at or above it (nanoseconds) become records.
pub const GLOBAL_LATENCY_THRESHOLD_NS: &str = "latency_threshold_ns";
/// Histogram map ([`crate::hist::Log2Hist`] rows), row = vector, values in microseconds.
pub const LATENCY_MAP: &str = "latency_us";

/// The kernel's softirq vectors (`softirq_to_name`), by number: the rows of [`LATENCY_MAP`].
pub const VECTOR_NAMES: [&str; 10] = [
    "HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU",
];

/// One record from the ring buffer (`struct softirq_event`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftirqEvent {
    /// CLOCK_MONOTONIC nanoseconds at the handler's entry.
    pub ts_ns: u64,
    pub latency_ns: u64,
    /// cgroup v2 id of the task that was running.
    pub cgroup_id: u64,
    pub cpu: u32,
    pub vector: u32,
    /// Process of the task that was running; 0 for the idle task.
    pub pid: u32,
    pub tid: u32,
    pub comm: [u8; 16],
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding (checked against the C
// struct's BTF in tests).
unsafe impl aya::Pod for SoftirqEvent {}

impl SoftirqEvent {
    /// Size of the C struct and of each ring buffer record.
    pub const SIZE: usize = std::mem::size_of::<Self>();

    pub fn comm(&self) -> Cow<'_, str> {
        c_str(&self.comm)
    }

    /// The vector's kernel name, or its number when unknown.
    pub fn vector_name(&self) -> Cow<'static, str> {
        vector_name(self.vector)
    }
}

/// The kernel name of vector `vector`, or its number when unknown.
pub fn vector_name(vector: u32) -> Cow<'static, str> {
    match VECTOR_NAMES.get(vector as usize) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(vector.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};

    #[test]
    fn event_matches_c_layout() {
        let btf = Btf::from_object(crate::SOFTIRQ).unwrap();
        let zero: SoftirqEvent = crate::read_pod(&[0; SoftirqEvent::SIZE]).unwrap();
        let rust = rust_layout!(
            SoftirqEvent,
            zero,
            [ts_ns, latency_ns, cgroup_id, cpu, vector, pid, tid, comm]
        );
        assert_same(rust, SoftirqEvent::SIZE, c_layout(&btf, "softirq_event"));
        assert_eq!(SoftirqEvent::SIZE, 56);
    }

    #[test]
    fn histogram_matches_c_layout() {
        crate::hist::assert_layout_in(crate::SOFTIRQ);
    }

    #[test]
    fn object_has_programs_maps_and_globals() {
        let btf = Btf::from_object(crate::SOFTIRQ).unwrap();
        for name in [
            PROG_RAISE_BTF,
            PROG_RAISE_TRACEPOINT,
            PROG_ENTRY_BTF,
            PROG_ENTRY_TRACEPOINT,
            LATENCY_MAP,
            GLOBAL_WATCHED_VECTORS,
            GLOBAL_LATENCY_THRESHOLD_NS,
        ] {
            assert!(btf.has_type(name), "{name} missing from the object");
        }
    }

    /// The names the kernel prints for each vector number (`irq:softirq_raise`'s format), which
    /// are also the rows of the histogram map (SOFTIRQ_VECTORS in the header).
    #[test]
    fn vector_names_are_the_kernels() {
        assert_eq!(vector_name(3), "NET_RX");
        assert_eq!(vector_name(2), "NET_TX");
        assert_eq!(vector_name(9), "RCU");
        assert_eq!(vector_name(12), "12");
        let format = std::fs::read_to_string("/sys/kernel/tracing/events/irq/softirq_raise/format");
        if let Ok(format) = format {
            for (n, name) in VECTOR_NAMES.iter().enumerate() {
                assert!(format.contains(&format!("{{ {n}, \"{name}\" }}")), "{name}");
            }
        }
    }
}
