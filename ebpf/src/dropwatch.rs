//! dropwatch: packets freed by the kernel as drops (`kfree_skb`).
//!
//! Object [`crate::DROPWATCH`] has two programs doing the same work; attach
//! one. Prefer [`PROG_BTF`] (`BtfTracePoint`, load with [`TP_BTF_NAME`]) and
//! fall back to [`PROG_TRACEPOINT`] (`TracePoint`, attach to
//! [`TRACEPOINT_CATEGORY`]/[`TRACEPOINT_NAME`]) if it fails to load or attach.
//!
//! Every drop is counted in [`DROP_COUNTS_MAP`] whatever the filter or rate
//! limit; records in [`crate::EVENTS_MAP`] are [`DropwatchEvent`]s.
//! The C side of these types is `ebpf/dropwatch/dropwatch.h`; tests check
//! the mirrors below against the object's BTF.

use crate::c_str;
use aya::maps::{MapData, MapError, PerCpuArray, PerCpuHashMap};
use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::net::IpAddr;

/// `tp_btf/kfree_skb` program.
pub const PROG_BTF: &str = "dropwatch_btf";
/// `tracepoint/skb/kfree_skb` program.
pub const PROG_TRACEPOINT: &str = "dropwatch_tp";
/// Name passed to `BtfTracePoint::load`.
pub const TP_BTF_NAME: &str = "kfree_skb";
/// Category passed to `TracePoint::attach`.
pub const TRACEPOINT_CATEGORY: &str = "skb";
/// Name passed to `TracePoint::attach`.
pub const TRACEPOINT_NAME: &str = "kfree_skb";

/// PERCPU_ARRAY indexed by drop reason (below [`REASON_SLOTS`]) of
/// [`DropReasonCounts`]; sum values over CPUs. Read with [`read_counts`].
pub const DROP_COUNTS_BY_REASON_MAP: &str = "drop_counts_by_reason";
/// Reasons below this are counted in [`DROP_COUNTS_BY_REASON_MAP`].
pub const REASON_SLOTS: u32 = 256;
/// `.rodata` u32: reasons below it use the array (default [`REASON_SLOTS`];
/// 0 sends every drop to [`DROP_COUNTS_MAP`]).
pub const GLOBAL_REASON_SLOTS: &str = "reason_slots";
/// PERCPU_HASH of [`DropCountKey`] -> u64 drops for the other reasons; sum
/// values over CPUs. Read with [`read_counts`].
pub const DROP_COUNTS_MAP: &str = "drop_counts";
/// Capacity of [`DROP_COUNTS_MAP`]; beyond it new keys count in
/// `stats[STAT_COUNTER_MAP_FULL]`.
pub const DROP_COUNTS_MAX_ENTRIES: u32 = 4096;
/// `.rodata` u8: 0 = emit every drop, otherwise only drops whose L4
/// protocol equals this IPPROTO_* value (6 = TCP, 17 = UDP).
pub const GLOBAL_FILTER_L4_PROTO: &str = "filter_l4_proto";

/// [`DropwatchEvent::flags`]: the kernel reports no drop reason (< 5.17).
pub const FLAG_REASON_UNKNOWN: u32 = 1 << 0;
/// [`DropwatchEvent::flags`]: no IP header was readable, so family,
/// addresses and ports are zero.
pub const FLAG_NO_L3: u32 = 1 << 1;

/// L3 classes of `enum dropwatch_l3_class`, as the ethertype reported for them.
const L3_CLASS_PROTOS: [u16; 3] = [0, 0x0800, 0x86dd];
/// L4 classes of `enum dropwatch_l4_class`, as the IPPROTO_* reported for
/// them (0 = any other protocol).
const L4_CLASS_PROTOS: [u8; 6] = [0, 6, 17, 1, 58, 132];

/// Value of [`DROP_COUNTS_BY_REASON_MAP`] (`struct dropwatch_reason_counts`):
/// drops of one reason by L3 class and L4 class.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropReasonCounts {
    pub count: [[u64; 6]; 3],
}

// SAFETY: repr(C), integers only.
unsafe impl aya::Pod for DropReasonCounts {}

/// Totals of both drop-count maps, summed over CPUs, by [`DropCountKey`].
/// Array cells are reported with their class's protocol numbers (an
/// unlisted L4 protocol as 0).
pub fn read_counts<A: Borrow<MapData>, H: Borrow<MapData>>(
    by_reason: &PerCpuArray<A, DropReasonCounts>,
    by_key: &PerCpuHashMap<H, DropCountKey, u64>,
) -> Result<HashMap<DropCountKey, u64>, MapError> {
    let mut totals = HashMap::new();
    for reason in 0..by_reason.len() {
        let per_cpu = by_reason.get(&reason, 0)?;
        for (l3, l3_proto) in L3_CLASS_PROTOS.iter().enumerate() {
            for (l4, l4_proto) in L4_CLASS_PROTOS.iter().enumerate() {
                let total: u64 = per_cpu.iter().map(|c| c.count[l3][l4]).sum();
                if total > 0 {
                    let key = DropCountKey {
                        reason,
                        l3_proto: *l3_proto,
                        l4_proto: *l4_proto,
                        pad: 0,
                    };
                    *totals.entry(key).or_default() += total;
                }
            }
        }
    }
    for entry in by_key.iter() {
        let (key, per_cpu) = entry?;
        *totals.entry(key).or_default() += per_cpu.iter().sum::<u64>();
    }
    Ok(totals)
}

/// Key of [`DROP_COUNTS_MAP`] (`struct dropwatch_count_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DropCountKey {
    /// `enum skb_drop_reason` value; 0 if the kernel has none.
    pub reason: u32,
    /// Ethertype, host order (0x0800 IPv4, 0x86dd IPv6); 0 if unknown.
    pub l3_proto: u16,
    /// IPPROTO_*; 0 if unknown.
    pub l4_proto: u8,
    pub pad: u8,
}

// SAFETY: repr(C), integers only, no implicit padding (checked in tests).
unsafe impl aya::Pod for DropCountKey {}

/// One record from the ring buffer (`struct dropwatch_event`). Multi-byte
/// integers are host order except `saddr`/`daddr`, which are wire bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropwatchEvent {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// Kernel text address that freed the skb (symbolize via kallsyms).
    pub location: u64,
    /// cgroup v2 id: the socket owner's, else the current task's when it is in the packet's
    /// network namespace, else 0 (an unrelated softirq: attribute by `netns_inum`).
    pub cgroup_id: u64,
    pub netns_cookie: u64,
    pub netns_inum: u32,
    pub pid: u32,
    pub tid: u32,
    pub reason: u32,
    pub flags: u32,
    pub ifindex: u32,
    pub len: u32,
    pub l3_proto: u16,
    pub sport: u16,
    pub dport: u16,
    pub l4_proto: u8,
    pub family: u8,
    pub tcp_state: u8,
    pub pad: [u8; 3],
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub ifname: [u8; 16],
    pub comm: [u8; 16],
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding
// (checked against the C struct's BTF in tests).
unsafe impl aya::Pod for DropwatchEvent {}

impl DropwatchEvent {
    /// Size of the C struct and of each ring buffer record.
    pub const SIZE: usize = std::mem::size_of::<Self>();

    /// Decodes a ring buffer record; None if it is too short.
    pub fn from_bytes(buf: &[u8]) -> Option<Self> {
        crate::read_pod(buf)
    }

    pub fn comm(&self) -> Cow<'_, str> {
        c_str(&self.comm)
    }

    pub fn ifname(&self) -> Cow<'_, str> {
        c_str(&self.ifname)
    }

    pub fn reason_known(&self) -> bool {
        self.flags & FLAG_REASON_UNKNOWN == 0
    }

    pub fn src_addr(&self) -> Option<IpAddr> {
        crate::net::ip_addr(self.family, &self.saddr)
    }

    pub fn dst_addr(&self) -> Option<IpAddr> {
        crate::net::ip_addr(self.family, &self.daddr)
    }

    /// The counter key this drop was counted under.
    pub fn count_key(&self) -> DropCountKey {
        DropCountKey {
            reason: self.reason,
            l3_proto: self.l3_proto,
            l4_proto: self.l4_proto,
            pad: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use crate::layout::{assert_same, c_layout, rust_layout};
    use crate::net::FAMILY_INET;
    use std::mem::size_of;
    use std::net::Ipv4Addr;

    #[test]
    fn event_matches_c_layout() {
        let btf = Btf::from_object(crate::DROPWATCH).unwrap();
        let zero = DropwatchEvent::from_bytes(&[0; DropwatchEvent::SIZE]).unwrap();
        let rust = rust_layout!(
            DropwatchEvent,
            zero,
            [
                ts_ns,
                location,
                cgroup_id,
                netns_cookie,
                netns_inum,
                pid,
                tid,
                reason,
                flags,
                ifindex,
                len,
                l3_proto,
                sport,
                dport,
                l4_proto,
                family,
                tcp_state,
                pad,
                saddr,
                daddr,
                ifname,
                comm,
            ]
        );
        assert_same(
            rust,
            size_of::<DropwatchEvent>(),
            c_layout(&btf, "dropwatch_event"),
        );
        assert_eq!(DropwatchEvent::SIZE, 136);
    }

    #[test]
    fn count_key_matches_c_layout() {
        let btf = Btf::from_object(crate::DROPWATCH).unwrap();
        let rust = rust_layout!(
            DropCountKey,
            DropCountKey::default(),
            [reason, l3_proto, l4_proto, pad]
        );
        assert_same(
            rust,
            size_of::<DropCountKey>(),
            c_layout(&btf, "dropwatch_count_key"),
        );
    }

    #[test]
    fn reason_counts_match_c_layout() {
        let btf = Btf::from_object(crate::DROPWATCH).unwrap();
        let rust = rust_layout!(DropReasonCounts, DropReasonCounts::default(), [count]);
        assert_same(
            rust,
            size_of::<DropReasonCounts>(),
            c_layout(&btf, "dropwatch_reason_counts"),
        );
        assert_eq!(
            btf.enum_value("dropwatch_l3_class", "DROPWATCH_L3_CLASSES"),
            Some(L3_CLASS_PROTOS.len() as i64)
        );
        assert_eq!(
            btf.enum_value("dropwatch_l4_class", "DROPWATCH_L4_CLASSES"),
            Some(L4_CLASS_PROTOS.len() as i64)
        );
        for (i, name) in ["OTHER", "IPV4", "IPV6"].iter().enumerate() {
            let value = btf.enum_value("dropwatch_l3_class", &format!("DROPWATCH_L3_{name}"));
            assert_eq!(value, Some(i as i64), "L3 class {name}");
        }
        for (i, name) in ["OTHER", "TCP", "UDP", "ICMP", "ICMPV6", "SCTP"]
            .iter()
            .enumerate()
        {
            let value = btf.enum_value("dropwatch_l4_class", &format!("DROPWATCH_L4_{name}"));
            assert_eq!(value, Some(i as i64), "L4 class {name}");
        }
    }

    #[test]
    fn object_has_programs_maps_and_globals() {
        let btf = Btf::from_object(crate::DROPWATCH).unwrap();
        for name in [
            PROG_BTF,
            PROG_TRACEPOINT,
            DROP_COUNTS_MAP,
            DROP_COUNTS_BY_REASON_MAP,
            GLOBAL_FILTER_L4_PROTO,
            GLOBAL_REASON_SLOTS,
        ] {
            assert!(btf.has_type(name), "{name} missing from the object");
        }
    }

    #[test]
    fn decodes_a_record() {
        let mut raw = [0u8; DropwatchEvent::SIZE + 8];
        raw[64..66].copy_from_slice(&53u16.to_ne_bytes()); // dport
        raw[66] = 17; // l4_proto
        raw[67] = FAMILY_INET;
        raw[88..92].copy_from_slice(&[127, 0, 0, 1]); // daddr
        raw[104..106].copy_from_slice(b"lo");
        raw[120..124].copy_from_slice(b"curl");
        let ev = DropwatchEvent::from_bytes(&raw).unwrap();
        assert_eq!(ev.dport, 53);
        assert_eq!(ev.dst_addr(), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(ev.src_addr(), Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert_eq!(ev.ifname(), "lo");
        assert_eq!(ev.comm(), "curl");
        assert!(ev.reason_known());
        assert_eq!(ev.count_key().l4_proto, 17);
        assert!(DropwatchEvent::from_bytes(&raw[..DropwatchEvent::SIZE - 1]).is_none());
    }
}
