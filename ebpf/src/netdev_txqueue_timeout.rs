//! netdev_txqueue_timeout: transmit queues the netdev watchdog declares stuck
//! (`net:net_dev_xmit_timeout`).
//!
//! Object [`crate::NETDEV_TXQUEUE_TIMEOUT`] has two programs doing the same work; attach one.
//! Prefer [`PROG_BTF`] (`BtfTracePoint`, load with [`TP_BTF_NAME`]); fall back to
//! [`PROG_TRACEPOINT`] (`TracePoint`, attach to [`TRACEPOINT_CATEGORY`]/[`TRACEPOINT_NAME`]).
//!
//! Records in [`crate::EVENTS_MAP`] are [`TxqTimeoutEvent`]s. The C side is
//! `ebpf/netdev_txqueue_timeout/netdev_txqueue_timeout.h`; a test checks the mirror below against
//! the object's BTF.

use crate::c_str;
use std::borrow::Cow;

/// `tp_btf/net_dev_xmit_timeout` program.
pub const PROG_BTF: &str = "txq_timeout_btf";
/// `tracepoint/net/net_dev_xmit_timeout` program.
pub const PROG_TRACEPOINT: &str = "txq_timeout_tp";
/// Name passed to `BtfTracePoint::load`.
pub const TP_BTF_NAME: &str = "net_dev_xmit_timeout";
/// Category passed to `TracePoint::attach`.
pub const TRACEPOINT_CATEGORY: &str = "net";
/// Name passed to `TracePoint::attach`.
pub const TRACEPOINT_NAME: &str = "net_dev_xmit_timeout";

/// One record from the ring buffer (`struct txq_timeout_event`): one stalled transmit queue.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxqTimeoutEvent {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    pub queue: u32,
    pub pad: u32,
    pub dev: [u8; 16],
    /// Empty when the device has no bound driver.
    pub driver: [u8; 32],
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding (checked against the C
// struct's BTF in tests).
unsafe impl aya::Pod for TxqTimeoutEvent {}

impl TxqTimeoutEvent {
    /// Size of the C struct and of each ring buffer record.
    pub const SIZE: usize = std::mem::size_of::<Self>();

    /// Decodes a ring buffer record; None if it is too short.
    pub fn from_bytes(buf: &[u8]) -> Option<Self> {
        crate::read_pod(buf)
    }

    pub fn dev(&self) -> Cow<'_, str> {
        c_str(&self.dev)
    }

    pub fn driver(&self) -> Cow<'_, str> {
        c_str(&self.driver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};

    #[test]
    fn event_matches_c_layout() {
        let btf = Btf::from_object(crate::NETDEV_TXQUEUE_TIMEOUT).unwrap();
        let zero = TxqTimeoutEvent::from_bytes(&[0; TxqTimeoutEvent::SIZE]).unwrap();
        let rust = rust_layout!(TxqTimeoutEvent, zero, [ts_ns, queue, pad, dev, driver]);
        assert_same(
            rust,
            TxqTimeoutEvent::SIZE,
            c_layout(&btf, "txq_timeout_event"),
        );
        assert_eq!(TxqTimeoutEvent::SIZE, 64);
    }

    #[test]
    fn object_has_programs() {
        let btf = Btf::from_object(crate::NETDEV_TXQUEUE_TIMEOUT).unwrap();
        for name in [PROG_BTF, PROG_TRACEPOINT] {
            assert!(btf.has_type(name), "{name} missing from the object");
        }
    }

    #[test]
    fn decodes_a_record() {
        let mut raw = [0u8; TxqTimeoutEvent::SIZE];
        raw[8..12].copy_from_slice(&3u32.to_ne_bytes());
        raw[16..20].copy_from_slice(b"eth0");
        raw[32..38].copy_from_slice(b"virtio");
        let ev = TxqTimeoutEvent::from_bytes(&raw).unwrap();
        assert_eq!(
            (ev.queue, ev.dev(), ev.driver()),
            (3, "eth0".into(), "virtio".into())
        );
        assert!(TxqTimeoutEvent::from_bytes(&raw[..TxqTimeoutEvent::SIZE - 1]).is_none());
    }
}
