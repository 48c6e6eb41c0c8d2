//! sched_tick: scheduler ticks that ran late (`timer:hrtimer_expire_entry` on the tick's hrtimer).
//!
//! Object [`crate::SCHED_TICK`] has two programs doing the same work; attach one. Prefer
//! [`PROG_BTF`] (`BtfTracePoint`, load with [`TP_BTF_NAME`]); fall back to [`PROG_TRACEPOINT`]
//! (`TracePoint`, attach to [`TRACEPOINT_CATEGORY`]/[`TRACEPOINT_NAME`]). Before loading, set
//! [`GLOBAL_TICK_HANDLER`] (without it no tick matches) and [`GLOBAL_THRESHOLD_NS`].
//!
//! Records in [`crate::EVENTS_MAP`] are [`SchedTickEvent`]s; [`LATE_TICKS_MAP`] counts every
//! late tick per CPU. The C side is `ebpf/sched_tick/sched_tick.h`; a test checks the mirror
//! below against the object's BTF.

use crate::c_str;
use crate::stack::KernelStack;
use std::borrow::Cow;

/// `tp_btf/hrtimer_expire_entry` program.
pub const PROG_BTF: &str = "sched_tick_btf";
/// `tracepoint/timer/hrtimer_expire_entry` program.
pub const PROG_TRACEPOINT: &str = "sched_tick_tp";
/// Name passed to `BtfTracePoint::load`.
pub const TP_BTF_NAME: &str = "hrtimer_expire_entry";
/// Category passed to `TracePoint::attach`.
pub const TRACEPOINT_CATEGORY: &str = "timer";
/// Name passed to `TracePoint::attach`.
pub const TRACEPOINT_NAME: &str = "hrtimer_expire_entry";
/// `.rodata` u64: address of the tick's hrtimer function.
pub const GLOBAL_TICK_HANDLER: &str = "tick_handler";
/// `.rodata` u64: ticks at least this late (ns) are reported.
pub const GLOBAL_THRESHOLD_NS: &str = "threshold_ns";
/// PERCPU_ARRAY, one u64 entry: late ticks (at or past the threshold), per CPU.
pub const LATE_TICKS_MAP: &str = "late_ticks";
/// Names of the tick's hrtimer function, newest kernels first (renamed in 6.9).
pub const TICK_HANDLER_SYMBOLS: &[&str] = &["tick_nohz_handler", "tick_sched_timer"];

/// One record from the ring buffer (`struct sched_tick_event`): one late tick.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedTickEvent {
    /// CLOCK_MONOTONIC nanoseconds at which the tick ran.
    pub ts_ns: u64,
    /// How long after its programmed expiry the tick ran.
    pub delay_ns: u64,
    pub cgroup_id: u64,
    /// Process (tgid) of the interrupted task; 0 for the idle task.
    pub pid: u32,
    pub tid: u32,
    pub cpu: u32,
    pub pad: u32,
    pub comm: [u8; 16],
    pub stack: KernelStack,
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding (checked against the C
// struct's BTF in tests).
unsafe impl aya::Pod for SchedTickEvent {}

impl SchedTickEvent {
    /// Size of the C struct and of each ring buffer record.
    pub const SIZE: usize = std::mem::size_of::<Self>();

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
    fn event_matches_c_layout() {
        let btf = Btf::from_object(crate::SCHED_TICK).unwrap();
        let zero: SchedTickEvent = crate::read_pod(&[0; SchedTickEvent::SIZE]).unwrap();
        let rust = rust_layout!(
            SchedTickEvent,
            zero,
            [ts_ns, delay_ns, cgroup_id, pid, tid, cpu, pad, comm, stack]
        );
        assert_same(
            rust,
            SchedTickEvent::SIZE,
            c_layout(&btf, "sched_tick_event"),
        );
        crate::stack::assert_layout_in(crate::SCHED_TICK);
    }

    #[test]
    fn object_has_programs_maps_and_globals() {
        let btf = Btf::from_object(crate::SCHED_TICK).unwrap();
        for name in [
            PROG_BTF,
            PROG_TRACEPOINT,
            LATE_TICKS_MAP,
            GLOBAL_TICK_HANDLER,
            GLOBAL_THRESHOLD_NS,
        ] {
            assert!(btf.has_type(name), "{name} missing from the object");
        }
    }
}
