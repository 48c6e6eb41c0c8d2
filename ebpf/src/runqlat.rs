//! runqlat: run-queue latency (`sched:sched_wakeup`, `sched:sched_wakeup_new`,
//! `sched:sched_switch`) as an in-kernel log2 histogram of microseconds.
//!
//! Object [`crate::RUNQLAT`] has two programs per tracepoint doing the same work; attach one
//! of each pair, preferring the `tp_btf` one (loaded with the tracepoint's name). The
//! histogram map [`HIST_MAP`] has [`ROWS`] rows of [`crate::hist::Log2Hist`]; the C side is
//! `ebpf/runqlat/`.

/// Category of every tracepoint below.
pub const TRACEPOINT_CATEGORY: &str = "sched";
/// (tracepoint, `tp_btf` program, tracepoint program).
pub const HOOKS: [(&str, &str, &str); 3] = [
    ("sched_wakeup", "runqlat_wakeup_btf", "runqlat_wakeup_tp"),
    (
        "sched_wakeup_new",
        "runqlat_wakeup_new_btf",
        "runqlat_wakeup_new_tp",
    ),
    ("sched_switch", "runqlat_switch_btf", "runqlat_switch_tp"),
];

/// Histogram map (`PERCPU_ARRAY` of `Log2Hist`, values in microseconds).
pub const HIST_MAP: &str = "runqlat_hist";
/// Row of the whole host (`RUNQLAT_ROW_HOST`).
pub const ROW_HOST: u32 = 0;
/// Rows of [`HIST_MAP`] (`RUNQLAT_ROWS`).
pub const ROWS: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;

    #[test]
    fn object_has_programs_and_histogram_layout() {
        let btf = Btf::from_object(crate::RUNQLAT).unwrap();
        for (_, btf_prog, tp_prog) in HOOKS {
            assert!(btf.has_type(btf_prog), "{btf_prog} missing");
            assert!(btf.has_type(tp_prog), "{tp_prog} missing");
        }
        assert!(btf.has_type(HIST_MAP));
        crate::hist::assert_layout_in(crate::RUNQLAT);
    }
}
