//! Mirror of `include/huatuo_stack.bpf.h`: a kernel stack captured into a record.

/// Frames a [`KernelStack`] holds at most.
pub const STACK_DEPTH: usize = 64;

/// `struct huatuo_kstack`: return addresses, innermost first.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelStack {
    pub depth: u32,
    pub pad: u32,
    pub ips: [u64; STACK_DEPTH],
}

// SAFETY: plain integers, no padding, any bit pattern is valid.
unsafe impl aya::Pod for KernelStack {}

impl KernelStack {
    /// The captured frames; a depth beyond the array (a corrupt record) is cut to it.
    pub fn frames(&self) -> &[u64] {
        &self.ips[..(self.depth as usize).min(STACK_DEPTH)]
    }
}

/// Checks the mirror against `struct huatuo_kstack` in the BTF of `object`, a compiled program
/// that uses the stack header.
#[cfg(test)]
pub fn assert_layout_in(object: &[u8]) {
    use crate::layout::{assert_same, c_layout, rust_layout};
    let btf = crate::btf::Btf::from_object(object).expect("object BTF");
    let zero = KernelStack {
        depth: 0,
        pad: 0,
        ips: [0; STACK_DEPTH],
    };
    assert_same(
        rust_layout!(KernelStack, zero, [depth, pad, ips]),
        std::mem::size_of::<KernelStack>(),
        c_layout(&btf, "huatuo_kstack"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_stop_at_depth_and_at_the_array() {
        let mut stack = KernelStack {
            depth: 2,
            pad: 0,
            ips: [7; STACK_DEPTH],
        };
        assert_eq!(stack.frames(), &[7, 7]);
        stack.depth = 1000;
        assert_eq!(stack.frames().len(), STACK_DEPTH);
    }
}
