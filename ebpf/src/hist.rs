//! Mirror of `include/huatuo_hist.bpf.h`: in-kernel log2 histograms.

/// Slots per histogram row; slot 0 holds values 0 and 1, slot k >= 1 values in
/// [2^k, 2^(k+1)), the last slot everything larger too.
pub const HIST_SLOTS: usize = 32;

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Log2Hist {
    pub slots: [u64; HIST_SLOTS],
}

// SAFETY: plain integers, no padding, any bit pattern is valid.
unsafe impl aya::Pod for Log2Hist {}

/// Checks the mirror against `struct huatuo_log2_hist` in the BTF of `object`, a compiled
/// program that uses the histogram header.
#[cfg(test)]
pub fn assert_layout_in(object: &[u8]) {
    use crate::layout::{assert_same, c_layout, rust_layout};
    let btf = crate::btf::Btf::from_object(object).expect("object BTF");
    assert_same(
        rust_layout!(
            Log2Hist,
            Log2Hist {
                slots: [0; HIST_SLOTS]
            },
            [slots]
        ),
        std::mem::size_of::<Log2Hist>(),
        c_layout(&btf, "huatuo_log2_hist"),
    );
}
