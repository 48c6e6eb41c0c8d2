//! tcp_retransmit: TCP segments and SYN-ACKs the kernel sends again
//! (`tcp:tcp_retransmit_skb`, `tcp:tcp_retransmit_synack`).
//!
//! Object [`crate::TCP_RETRANSMIT`] has two programs per hook doing the same
//! work; attach one of each. Prefer the `BtfTracePoint` ones
//! ([`PROG_SKB_BTF`], [`PROG_SYNACK_BTF`], loaded with the tracepoint's
//! name) and fall back to the `TracePoint` ones ([`PROG_SKB_TRACEPOINT`],
//! [`PROG_SYNACK_TRACEPOINT`]) if they fail to load or attach.
//!
//! Every retransmit is counted in [`COUNTS_MAP`] whatever the rate limit;
//! records in [`crate::EVENTS_MAP`] are [`TcpRetransmitEvent`]s. The C side
//! of these types is `ebpf/tcp_retransmit/tcp_retransmit.h`; tests check the
//! mirrors below against the object's BTF.

use aya::maps::{MapData, MapError, PerCpuArray};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::net::IpAddr;

/// Category of both tracepoints.
pub const TRACEPOINT_CATEGORY: &str = "tcp";
/// Segment retransmits: tracepoint name, also the `tp_btf` name.
pub const TRACEPOINT_SKB: &str = "tcp_retransmit_skb";
/// SYN-ACK retransmits: tracepoint name, also the `tp_btf` name.
pub const TRACEPOINT_SYNACK: &str = "tcp_retransmit_synack";
/// `tp_btf/tcp_retransmit_skb` program.
pub const PROG_SKB_BTF: &str = "tcp_retransmit_skb_btf";
/// `tracepoint/tcp/tcp_retransmit_skb` program.
pub const PROG_SKB_TRACEPOINT: &str = "tcp_retransmit_skb_tp";
/// `tp_btf/tcp_retransmit_synack` program.
pub const PROG_SYNACK_BTF: &str = "tcp_retransmit_synack_btf";
/// `tracepoint/tcp/tcp_retransmit_synack` program.
pub const PROG_SYNACK_TRACEPOINT: &str = "tcp_retransmit_synack_tp";

/// PERCPU_ARRAY with one [`RetransmitCounts`]; read with [`read_counts`].
pub const COUNTS_MAP: &str = "retransmit_counts";

const KINDS: usize = 2;
const REASONS: usize = 5;
/// TCP states index the counters directly; slot 0 holds 0 and states beyond the array.
const STATE_SLOTS: usize = 16;
/// Address families of `enum tcp_retransmit_l3_class`, by class.
const L3_CLASS_FAMILIES: [u8; 3] = [0, crate::net::FAMILY_INET, crate::net::FAMILY_INET6];

/// `enum tcp_retransmit_kind`: what was sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A segment of the send queue (SYN and FIN included).
    Data = 0,
    /// A listener's SYN-ACK for a pending connection.
    Synack = 1,
}

impl Kind {
    const ALL: [Kind; KINDS] = [Kind::Data, Kind::Synack];

    pub fn from_raw(raw: u8) -> Option<Self> {
        Self::ALL.get(usize::from(raw)).copied()
    }
}

/// `enum tcp_retransmit_reason`: why it was sent again (the C header says how each is told).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Other = 0,
    /// The retransmission timer fired (RTO loss recovery for data).
    Timeout = 1,
    /// Fast recovery: duplicate ACKs, SACK or RACK marked the segment lost.
    FastRetransmit = 2,
    /// A tail loss probe.
    LossProbe = 3,
    /// A SYN-ACK resent because the peer repeated its SYN.
    DuplicateSyn = 4,
}

impl Reason {
    const ALL: [Reason; REASONS] = [
        Reason::Other,
        Reason::Timeout,
        Reason::FastRetransmit,
        Reason::LossProbe,
        Reason::DuplicateSyn,
    ];

    pub fn from_raw(raw: u8) -> Option<Self> {
        Self::ALL.get(usize::from(raw)).copied()
    }
}

/// Value of [`COUNTS_MAP`] (`struct tcp_retransmit_counts`): retransmits by kind, reason, TCP
/// state slot and address-family class.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetransmitCounts {
    pub count: [[[[u64; L3_CLASS_FAMILIES.len()]; STATE_SLOTS]; REASONS]; KINDS],
}

// SAFETY: repr(C), integers only.
unsafe impl aya::Pod for RetransmitCounts {}

/// What one retransmit was counted under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountKey {
    pub kind: Kind,
    pub reason: Reason,
    /// `TCP_*` state; 0 when unknown or beyond the counters' range.
    pub state: u8,
    /// `AF_INET`, `AF_INET6`, or 0.
    pub family: u8,
}

/// Totals of [`COUNTS_MAP`], summed over CPUs; only keys counted at least once.
pub fn read_counts<A: Borrow<MapData>>(
    map: &PerCpuArray<A, RetransmitCounts>,
) -> Result<HashMap<CountKey, u64>, MapError> {
    let per_cpu = map.get(&0, 0)?;
    let mut totals = HashMap::new();
    for kind in Kind::ALL {
        for reason in Reason::ALL {
            for state in 0..STATE_SLOTS {
                for (l3, family) in L3_CLASS_FAMILIES.iter().enumerate() {
                    let total: u64 = per_cpu
                        .iter()
                        .map(|c| c.count[kind as usize][reason as usize][state][l3])
                        .sum();
                    if total > 0 {
                        let key = CountKey {
                            kind,
                            reason,
                            state: state as u8,
                            family: *family,
                        };
                        totals.insert(key, total);
                    }
                }
            }
        }
    }
    Ok(totals)
}

/// One record from the ring buffer (`struct tcp_retransmit_event`). Multi-byte integers are host
/// order except `saddr`/`daddr`, which are wire bytes. Source is the local end.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRetransmitEvent {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// cgroup v2 id of the socket's owner (of the current task on kernels before 5.15); 0 for
    /// kernel sockets.
    pub cgroup_id: u64,
    pub netns_inum: u32,
    /// skb->len; 0 for SYN-ACKs.
    pub len: u32,
    pub sport: u16,
    pub dport: u16,
    pub family: u8,
    /// `TCP_*` state of the socket (of the request for SYN-ACKs).
    pub state: u8,
    /// [`Kind`] value.
    pub kind: u8,
    /// [`Reason`] value.
    pub reason: u8,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding
// (checked against the C struct's BTF in tests).
unsafe impl aya::Pod for TcpRetransmitEvent {}

impl TcpRetransmitEvent {
    /// Size of the C struct and of each ring buffer record.
    pub const SIZE: usize = std::mem::size_of::<Self>();

    /// Decodes a ring buffer record; None if it is too short.
    pub fn from_bytes(buf: &[u8]) -> Option<Self> {
        crate::read_pod(buf)
    }

    pub fn src_addr(&self) -> Option<IpAddr> {
        crate::net::ip_addr(self.family, &self.saddr)
    }

    pub fn dst_addr(&self) -> Option<IpAddr> {
        crate::net::ip_addr(self.family, &self.daddr)
    }

    pub fn kind(&self) -> Option<Kind> {
        Kind::from_raw(self.kind)
    }

    pub fn reason(&self) -> Option<Reason> {
        Reason::from_raw(self.reason)
    }

    /// The counter key this retransmit was counted under; None for a kind or reason this build
    /// does not know (an object newer than the agent).
    pub fn count_key(&self) -> Option<CountKey> {
        let in_range = usize::from(self.state) < STATE_SLOTS;
        Some(CountKey {
            kind: self.kind()?,
            reason: self.reason()?,
            state: if in_range { self.state } else { 0 },
            family: self.family,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};
    use crate::net::{FAMILY_INET, FAMILY_INET6};
    use std::mem::size_of;
    use std::net::Ipv4Addr;

    fn btf() -> Btf {
        Btf::from_object(crate::TCP_RETRANSMIT).unwrap()
    }

    #[test]
    fn event_matches_c_layout() {
        let zero = TcpRetransmitEvent::from_bytes(&[0; TcpRetransmitEvent::SIZE]).unwrap();
        let rust = rust_layout!(
            TcpRetransmitEvent,
            zero,
            [
                ts_ns, cgroup_id, netns_inum, len, sport, dport, family, state, kind, reason,
                saddr, daddr,
            ]
        );
        assert_same(
            rust,
            size_of::<TcpRetransmitEvent>(),
            c_layout(&btf(), "tcp_retransmit_event"),
        );
        assert_eq!(TcpRetransmitEvent::SIZE, 64);
    }

    #[test]
    fn counts_match_c_layout_and_enums() {
        let btf = btf();
        let rust = rust_layout!(RetransmitCounts, RetransmitCounts::default(), [count]);
        assert_same(
            rust,
            size_of::<RetransmitCounts>(),
            c_layout(&btf, "tcp_retransmit_counts"),
        );
        let value = |e: &str, v: &str| {
            btf.enum_value(e, v)
                .unwrap_or_else(|| panic!("enum {e} lacks {v}"))
        };
        assert_eq!(
            value("tcp_retransmit_kind", "TCP_RETRANSMIT_KINDS"),
            KINDS as i64
        );
        for (kind, name) in Kind::ALL.iter().zip(["DATA", "SYNACK"]) {
            let v = value(
                "tcp_retransmit_kind",
                &format!("TCP_RETRANSMIT_KIND_{name}"),
            );
            assert_eq!(v, *kind as i64, "{kind:?}");
        }
        assert_eq!(
            value("tcp_retransmit_reason", "TCP_RETRANSMIT_REASONS"),
            REASONS as i64
        );
        let reasons = [
            "OTHER",
            "TIMEOUT",
            "FAST_RETRANSMIT",
            "LOSS_PROBE",
            "DUPLICATE_SYN",
        ];
        for (reason, name) in Reason::ALL.iter().zip(reasons) {
            let v = value(
                "tcp_retransmit_reason",
                &format!("TCP_RETRANSMIT_REASON_{name}"),
            );
            assert_eq!(v, *reason as i64, "{reason:?}");
        }
        assert_eq!(
            value("tcp_retransmit_l3_class", "TCP_RETRANSMIT_L3_CLASSES"),
            L3_CLASS_FAMILIES.len() as i64
        );
        for (i, name) in ["OTHER", "IPV4", "IPV6"].iter().enumerate() {
            let v = value(
                "tcp_retransmit_l3_class",
                &format!("TCP_RETRANSMIT_L3_{name}"),
            );
            assert_eq!(v, i as i64, "L3 class {name}");
        }
    }

    #[test]
    fn object_has_programs_and_maps() {
        let btf = btf();
        for name in [
            PROG_SKB_BTF,
            PROG_SKB_TRACEPOINT,
            PROG_SYNACK_BTF,
            PROG_SYNACK_TRACEPOINT,
            COUNTS_MAP,
        ] {
            assert!(btf.has_type(name), "{name} missing from the object");
        }
    }

    #[test]
    fn decodes_a_record() {
        let mut raw = [0u8; TcpRetransmitEvent::SIZE + 8];
        raw[24..26].copy_from_slice(&40000u16.to_ne_bytes()); // sport
        raw[26..28].copy_from_slice(&8080u16.to_ne_bytes()); // dport
        raw[28] = FAMILY_INET;
        raw[29] = 1; // ESTABLISHED
        raw[31] = Reason::LossProbe as u8;
        raw[32..36].copy_from_slice(&[10, 0, 0, 1]); // saddr
        raw[48..52].copy_from_slice(&[10, 0, 0, 2]); // daddr
        let ev = TcpRetransmitEvent::from_bytes(&raw).unwrap();
        assert_eq!((ev.sport, ev.dport), (40000, 8080));
        assert_eq!(ev.src_addr(), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(ev.dst_addr(), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
        assert_eq!(
            ev.count_key(),
            Some(CountKey {
                kind: Kind::Data,
                reason: Reason::LossProbe,
                state: 1,
                family: FAMILY_INET,
            })
        );
        assert!(TcpRetransmitEvent::from_bytes(&raw[..TcpRetransmitEvent::SIZE - 1]).is_none());

        raw[29] = 200; // a state beyond the counters is counted in slot 0
        raw[28] = FAMILY_INET6;
        let ev = TcpRetransmitEvent::from_bytes(&raw).unwrap();
        assert_eq!(ev.count_key().map(|k| k.state), Some(0));
        raw[30] = 7; // an unknown kind
        assert_eq!(
            TcpRetransmitEvent::from_bytes(&raw).unwrap().count_key(),
            None
        );
    }
}
