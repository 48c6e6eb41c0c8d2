//! netrecvlat: how long received TCP packets took from their receive stamp to three stages
//! (`net:netif_receive_skb`, `tcp:tcp_probe`, `skb:skb_copy_datagram_iovec`).
//!
//! Object [`crate::NETRECVLAT`] has two programs per hook doing the same work; attach one of
//! each, preferring the `tp_btf` one (see [`HOOKS`]). Before attaching, set the per-stage
//! thresholds ([`GLOBAL_THRESHOLD_NS`]) and write [`WallClock`] into [`WALL_CLOCK_MAP`]; keep it
//! current while the programs run. Every measured packet is counted in the per-stage log2
//! histogram [`LATENCY_HIST_MAP`] (microseconds); packets that could not be measured in
//! [`SKIPPED_MAP`]; packets over their threshold become [`NetrecvlatEvent`]s in
//! [`crate::EVENTS_MAP`].
//!
//! The C side of these types is `ebpf/netrecvlat/netrecvlat.h`; tests check the mirrors below
//! against the object's BTF.

use crate::c_str;
use aya::maps::{MapData, MapError, PerCpuArray};
use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// (tracepoint category, tracepoint and `tp_btf` name, `tp_btf` program, tracepoint program),
/// one per stage, in [`Stage`] order.
pub const HOOKS: [(&str, &str, &str, &str); STAGES] = [
    (
        "net",
        "netif_receive_skb",
        "netif_receive_skb_btf",
        "netif_receive_skb_tp",
    ),
    ("tcp", "tcp_probe", "tcp_probe_btf", "tcp_probe_tp"),
    (
        "skb",
        "skb_copy_datagram_iovec",
        "skb_copy_datagram_iovec_btf",
        "skb_copy_datagram_iovec_tp",
    ),
];

/// `.rodata` `[u64; 3]`: per [`Stage`], packets at least this many ns old are reported.
pub const GLOBAL_THRESHOLD_NS: &str = "threshold_ns";
/// PERCPU_ARRAY of [`crate::hist::Log2Hist`], one row per [`Stage`], in microseconds.
pub const LATENCY_HIST_MAP: &str = "latency_us";
/// PERCPU_ARRAY with one [`Skips`]; read with [`read_skips`].
pub const SKIPPED_MAP: &str = "skipped";
/// ARRAY with one [`WallClock`], written by userspace.
pub const WALL_CLOCK_MAP: &str = "wall_clock";

/// Number of stages: rows of the histogram.
pub const STAGES: usize = 3;
const SKIP_CAUSES: usize = 3;

/// `enum netrecvlat_stage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Entering the stack (`net:netif_receive_skb`).
    Netif = 0,
    /// Processed by its established TCP socket (`tcp:tcp_probe`).
    Tcp = 1,
    /// Copied to the reading process (`skb:skb_copy_datagram_iovec`).
    UserCopy = 2,
}

impl Stage {
    pub const ALL: [Stage; STAGES] = [Stage::Netif, Stage::Tcp, Stage::UserCopy];

    pub fn from_raw(raw: u8) -> Option<Self> {
        Self::ALL.get(usize::from(raw)).copied()
    }
}

/// `enum netrecvlat_skip`: why a packet was not measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipCause {
    /// No receive stamp: nothing had RX software timestamps enabled.
    NoTimestamp = 0,
    /// Stamped in the future or before the last wall-clock step.
    ClockStep = 1,
    /// Stamped on a clock that cannot be compared (CLOCK_TAI).
    OtherClock = 2,
}

impl SkipCause {
    pub const ALL: [SkipCause; SKIP_CAUSES] = [
        SkipCause::NoTimestamp,
        SkipCause::ClockStep,
        SkipCause::OtherClock,
    ];
}

/// Value of [`SKIPPED_MAP`] (`struct netrecvlat_skips`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skips {
    pub count: [[u64; SKIP_CAUSES]; STAGES],
}

// SAFETY: repr(C), integers only.
unsafe impl aya::Pod for Skips {}

/// Totals of [`SKIPPED_MAP`], summed over CPUs; only pairs counted at least once.
pub fn read_skips<A: Borrow<MapData>>(
    map: &PerCpuArray<A, Skips>,
) -> Result<HashMap<(Stage, SkipCause), u64>, MapError> {
    let per_cpu = map.get(&0, 0)?;
    let mut totals = HashMap::new();
    for stage in Stage::ALL {
        for cause in SkipCause::ALL {
            let total: u64 = per_cpu
                .iter()
                .map(|s| s.count[stage as usize][cause as usize])
                .sum();
            if total > 0 {
                totals.insert((stage, cause), total);
            }
        }
    }
    Ok(totals)
}

/// Value of [`WALL_CLOCK_MAP`] (`struct netrecvlat_wall_clock`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WallClock {
    /// CLOCK_REALTIME - CLOCK_MONOTONIC, in ns.
    pub real_minus_mono_ns: i64,
    /// CLOCK_MONOTONIC ns of the last wall-clock step seen; packets stamped earlier are skipped.
    pub stepped_at_mono_ns: u64,
}

// SAFETY: repr(C), integers only.
unsafe impl aya::Pod for WallClock {}

/// CLOCK_REALTIME - CLOCK_MONOTONIC now (what [`WallClock::real_minus_mono_ns`] holds), and the
/// CLOCK_MONOTONIC ns it was taken at. The realtime read is bracketed by two monotonic ones, so
/// the offset is off by at most half their gap.
pub fn measure_wall_clock() -> (i64, u64) {
    let before = crate::clock_ns(libc::CLOCK_MONOTONIC);
    let real = crate::clock_ns(libc::CLOCK_REALTIME);
    let after = crate::clock_ns(libc::CLOCK_MONOTONIC);
    ((real - (before + after) / 2) as i64, after as u64)
}

/// Asks the kernel to stamp every received packet (`net_enable_timestamp`) for as long as the
/// returned socket is open: any IP socket with RX software timestamping on does that host-wide
/// (the kernel switches it on from a work item, so shortly after this returns).
pub fn enable_rx_timestamps() -> std::io::Result<OwnedFd> {
    let socket = |family| {
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    // A host without IPv4 still has IPv6; either kind turns stamping on (Unix sockets do not).
    let socket = socket(libc::AF_INET).or_else(|_| socket(libc::AF_INET6))?;
    let flags: libc::c_uint = libc::SOF_TIMESTAMPING_RX_SOFTWARE;
    // SAFETY: the option value is a c_uint of the given size, valid for the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            (&flags as *const libc::c_uint).cast(),
            std::mem::size_of_val(&flags) as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(socket)
}

/// One record from the ring buffer (`struct netrecvlat_event`). Multi-byte integers are host
/// order except `saddr`/`daddr`, which are wire bytes. Source is the sender (the peer).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetrecvlatEvent {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// From the receive stamp to the stage.
    pub latency_ns: u64,
    /// cgroup v2 id of the socket's owner; 0 at [`Stage::Netif`].
    pub cgroup_id: u64,
    /// Of the socket, or of the receiving device at [`Stage::Netif`].
    pub netns_inum: u32,
    /// Reader's tgid at [`Stage::UserCopy`], else 0.
    pub pid: u32,
    pub tid: u32,
    /// skb->len.
    pub len: u32,
    pub sport: u16,
    pub dport: u16,
    pub family: u8,
    /// `TCP_*` state of the socket; 0 at [`Stage::Netif`].
    pub state: u8,
    /// [`Stage`] value.
    pub stage: u8,
    /// 1 when the stamp was a sender's CLOCK_MONOTONIC delivery time.
    pub mono_stamp: u8,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub comm: [u8; 16],
    pub ifname: [u8; 16],
}

// SAFETY: repr(C), integers and byte arrays only, no implicit padding
// (checked against the C struct's BTF in tests).
unsafe impl aya::Pod for NetrecvlatEvent {}

impl NetrecvlatEvent {
    /// Size of the C struct and of each ring buffer record.
    pub const SIZE: usize = std::mem::size_of::<Self>();

    /// Decodes a ring buffer record; None if it is too short.
    pub fn from_bytes(buf: &[u8]) -> Option<Self> {
        crate::read_pod(buf)
    }

    pub fn stage(&self) -> Option<Stage> {
        Stage::from_raw(self.stage)
    }

    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_ns)
    }

    pub fn src_addr(&self) -> Option<IpAddr> {
        crate::net::ip_addr(self.family, &self.saddr)
    }

    pub fn dst_addr(&self) -> Option<IpAddr> {
        crate::net::ip_addr(self.family, &self.daddr)
    }

    pub fn comm(&self) -> Cow<'_, str> {
        c_str(&self.comm)
    }

    pub fn ifname(&self) -> Cow<'_, str> {
        c_str(&self.ifname)
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

    fn btf() -> Btf {
        Btf::from_object(crate::NETRECVLAT).unwrap()
    }

    #[test]
    fn event_matches_c_layout() {
        let zero = NetrecvlatEvent::from_bytes(&[0; NetrecvlatEvent::SIZE]).unwrap();
        let rust = rust_layout!(
            NetrecvlatEvent,
            zero,
            [
                ts_ns, latency_ns, cgroup_id, netns_inum, pid, tid, len, sport, dport, family,
                state, stage, mono_stamp, saddr, daddr, comm, ifname,
            ]
        );
        assert_same(
            rust,
            size_of::<NetrecvlatEvent>(),
            c_layout(&btf(), "netrecvlat_event"),
        );
        assert_eq!(NetrecvlatEvent::SIZE, 112);
    }

    #[test]
    fn maps_match_c_layout_and_enums() {
        let btf = btf();
        assert_same(
            rust_layout!(Skips, Skips::default(), [count]),
            size_of::<Skips>(),
            c_layout(&btf, "netrecvlat_skips"),
        );
        assert_same(
            rust_layout!(
                WallClock,
                WallClock::default(),
                [real_minus_mono_ns, stepped_at_mono_ns]
            ),
            size_of::<WallClock>(),
            c_layout(&btf, "netrecvlat_wall_clock"),
        );
        crate::hist::assert_layout_in(crate::NETRECVLAT);
        let value = |e: &str, v: &str| {
            btf.enum_value(e, v)
                .unwrap_or_else(|| panic!("enum {e} lacks {v}"))
        };
        assert_eq!(
            value("netrecvlat_stage", "NETRECVLAT_STAGES"),
            STAGES as i64
        );
        for (stage, name) in Stage::ALL.iter().zip(["NETIF", "TCP", "USER_COPY"]) {
            let v = value("netrecvlat_stage", &format!("NETRECVLAT_STAGE_{name}"));
            assert_eq!(v, *stage as i64, "{stage:?}");
        }
        assert_eq!(
            value("netrecvlat_skip", "NETRECVLAT_SKIPS"),
            SKIP_CAUSES as i64
        );
        let causes = ["NO_TIMESTAMP", "CLOCK_STEP", "OTHER_CLOCK"];
        for (cause, name) in SkipCause::ALL.iter().zip(causes) {
            let v = value("netrecvlat_skip", &format!("NETRECVLAT_SKIP_{name}"));
            assert_eq!(v, *cause as i64, "{cause:?}");
        }
    }

    #[test]
    fn object_has_programs_and_maps() {
        let btf = btf();
        let programs = HOOKS.iter().flat_map(|(_, _, b, t)| [*b, *t]);
        for name in programs.chain([LATENCY_HIST_MAP, SKIPPED_MAP, WALL_CLOCK_MAP]) {
            assert!(btf.has_type(name), "{name} missing from the object");
        }
    }

    #[test]
    fn wall_clock_offset_is_the_wall_clock() {
        let (offset, now) = measure_wall_clock();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        assert!((offset + now as i64 - unix).abs() < 50_000_000);
    }

    #[test]
    fn rx_timestamps_socket_opens_unprivileged() {
        enable_rx_timestamps().unwrap();
    }

    #[test]
    fn decodes_a_record() {
        let mut raw = [0u8; NetrecvlatEvent::SIZE + 8];
        raw[8..16].copy_from_slice(&7_000_000u64.to_ne_bytes()); // latency
        raw[40..42].copy_from_slice(&8080u16.to_ne_bytes()); // sport
        raw[42..44].copy_from_slice(&40000u16.to_ne_bytes()); // dport
        raw[44] = FAMILY_INET;
        raw[45] = 1; // ESTABLISHED
        raw[46] = Stage::UserCopy as u8;
        raw[48..52].copy_from_slice(&[10, 0, 0, 2]); // saddr
        raw[64..68].copy_from_slice(&[10, 0, 0, 1]); // daddr
        raw[80..84].copy_from_slice(b"curl");
        raw[96..99].copy_from_slice(b"lo\0");
        let ev = NetrecvlatEvent::from_bytes(&raw).unwrap();
        assert_eq!((ev.sport, ev.dport), (8080, 40000));
        assert_eq!(ev.stage(), Some(Stage::UserCopy));
        assert_eq!(ev.latency(), Duration::from_millis(7));
        assert_eq!(ev.src_addr(), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
        assert_eq!(ev.dst_addr(), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(ev.comm(), "curl");
        assert_eq!(ev.ifname(), "lo");
        assert!(NetrecvlatEvent::from_bytes(&raw[..NetrecvlatEvent::SIZE - 1]).is_none());
        raw[46] = 3;
        assert_eq!(NetrecvlatEvent::from_bytes(&raw).unwrap().stage(), None);
    }
}
