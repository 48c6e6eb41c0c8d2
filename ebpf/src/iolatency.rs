//! iolatency: block request latency per disk and cgroup (`block:block_rq_insert`, `block:block_rq_issue`,
//! `block:block_rq_complete`) as in-kernel log2 histograms of microseconds.
//!
//! Object [`crate::IOLATENCY`] has two programs per tracepoint doing the same work; attach one
//! of each pair, preferring the `tp_btf` one (loaded with the tracepoint's name). The keyed
//! histogram maps [`Q2C_MAP`] and [`D2C_MAP`] (`PERCPU_HASH`, key [`IolatKey`], value
//! [`crate::hist::Log2Hist`]) are keyed by the disk's kernel `dev_t` and the submitter's cgroup;
//! the C side is `ebpf/iolatency/`.

/// Category of every tracepoint below.
pub const TRACEPOINT_CATEGORY: &str = "block";
/// (tracepoint, `tp_btf` program, tracepoint program).
pub const HOOKS: [(&str, &str, &str); 3] = [
    ("block_rq_insert", "iolat_insert_btf", "iolat_insert_tp"),
    ("block_rq_issue", "iolat_issue_btf", "iolat_issue_tp"),
    (
        "block_rq_complete",
        "iolat_complete_btf",
        "iolat_complete_tp",
    ),
];

/// Queue insertion to completion, by disk.
pub const Q2C_MAP: &str = "q2c_hist";
/// Issue to the driver to completion, by disk.
pub const D2C_MAP: &str = "d2c_hist";

/// Key of the histogram maps (`struct iolat_key`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IolatKey {
    /// The disk's kernel `dev_t` ([`dev_numbers`]).
    pub dev: u32,
    pub pad: u32,
    /// Unified cgroup id of the task that started the request.
    pub cgroup_id: u64,
}

// SAFETY: plain integers, explicit padding, any bit pattern is valid.
unsafe impl aya::Pod for IolatKey {}

/// Bits of the minor number in a kernel `dev_t` (`MINORBITS`; userspace's encoding differs).
const MINOR_BITS: u32 = 20;

/// (major, minor) of a kernel `dev_t`.
pub fn dev_numbers(dev: u32) -> (u32, u32) {
    (dev >> MINOR_BITS, dev & ((1 << MINOR_BITS) - 1))
}

/// The kernel `dev_t` of (major, minor), as the block tracepoints report it.
pub fn kernel_dev(major: u32, minor: u32) -> u32 {
    (major << MINOR_BITS) | minor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;

    #[test]
    fn object_has_programs_and_histogram_layout() {
        let btf = Btf::from_object(crate::IOLATENCY).unwrap();
        for (_, btf_prog, tp_prog) in HOOKS {
            assert!(btf.has_type(btf_prog), "{btf_prog} missing");
            assert!(btf.has_type(tp_prog), "{tp_prog} missing");
        }
        for map in [Q2C_MAP, D2C_MAP] {
            assert!(btf.has_type(map), "{map} missing");
        }
        crate::hist::assert_layout_in(crate::IOLATENCY);
    }

    #[test]
    fn key_layout_matches_c() {
        use crate::layout::{assert_same, c_layout, rust_layout};
        let btf = Btf::from_object(crate::IOLATENCY).unwrap();
        assert_same(
            rust_layout!(
                IolatKey,
                IolatKey {
                    dev: 0,
                    pad: 0,
                    cgroup_id: 0
                },
                [dev, pad, cgroup_id]
            ),
            std::mem::size_of::<IolatKey>(),
            c_layout(&btf, "iolat_key"),
        );
    }

    #[test]
    fn kernel_dev_t_splits_into_major_and_minor() {
        assert_eq!(dev_numbers((7 << 20) | 3), (7, 3));
        assert_eq!(dev_numbers((259 << 20) | 65536), (259, 65536));
        assert_eq!(dev_numbers(kernel_dev(8, 16)), (8, 16));
    }
}
