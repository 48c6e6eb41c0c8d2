//! Root qdisc statistics of every interface of the agent's network namespace, from an rtnetlink
//! dump (`RTM_GETQDISC`), as `tc -s qdisc` shows them: bytes, packets, drops, overlimits and
//! requeues (counters), backlog and queue length (levels), by interface and qdisc kind. Only root
//! qdiscs: a multiqueue root (`mq`) already sums its per-queue children, and children of
//! classful qdiscs would make the series count follow the user's tc configuration. `noqueue`
//! (virtual interfaces) has nothing to report. Interfaces are filtered by `collectors.qdisc`.

use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use anyhow::Context as _;
use huatuo_config::Config;
use huatuo_semconv::net as names;
use opentelemetry::KeyValue;
use rtnetlink::packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcStats2};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Bound on one dump: the kernel answers at once, a stuck socket must not stall the collector.
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Qdisc;

/// What one root qdisc reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QdiscStats {
    pub ifindex: u32,
    pub kind: String,
    pub bytes: u64,
    pub packets: u64,
    pub drops: u64,
    pub overlimits: u64,
    pub requeues: u64,
    pub backlog: u64,
    pub qlen: u64,
}

impl Collector for Qdisc {
    type State = ();
    const NAME: &'static str = "qdisc";
    const METRICS: &'static [&'static str] = &[
        names::QDISC_BYTES,
        names::QDISC_PACKETS,
        names::QDISC_DROPS,
        names::QDISC_OVERLIMITS,
        names::QDISC_REQUEUES,
        names::QDISC_BACKLOG,
        names::QDISC_QUEUE_LENGTH,
    ];

    fn enabled(config: &Config) -> bool {
        config.collectors.qdisc.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    fn collect(
        &self,
        config: &Config,
        _: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        for stats in dump()? {
            // An interface removed since the dump has no name and no series.
            let Some(interface) = interface_name(stats.ifindex) else {
                continue;
            };
            if !config.collectors.qdisc.allows(&interface) {
                continue;
            }
            let attributes = vec![
                KeyValue::new(names::NETWORK_INTERFACE_NAME, interface),
                KeyValue::new(names::QDISC_KIND, stats.kind.clone()),
            ];
            for (metric, value) in [
                (names::QDISC_BYTES, stats.bytes),
                (names::QDISC_PACKETS, stats.packets),
                (names::QDISC_DROPS, stats.drops),
                (names::QDISC_OVERLIMITS, stats.overlimits),
                (names::QDISC_REQUEUES, stats.requeues),
                (names::QDISC_BACKLOG, stats.backlog),
                (names::QDISC_QUEUE_LENGTH, stats.qlen),
            ] {
                out.add(metric, value, attributes.clone());
            }
        }
        Ok(())
    }
}

/// The statistics of a root qdisc message; `None` for other qdiscs and for `noqueue`.
pub fn decode(message: &TcMessage) -> Option<QdiscStats> {
    if message.header.parent != TcHandle::ROOT {
        return None;
    }
    let mut stats = QdiscStats {
        ifindex: u32::try_from(message.header.index).ok()?,
        ..Default::default()
    };
    // TCA_STATS2 (64-bit bytes, requeues) when the kernel sends it, else the old TCA_STATS.
    let mut has_stats2 = false;
    for attribute in &message.attributes {
        match attribute {
            TcAttribute::Kind(kind) => stats.kind = kind.clone(),
            TcAttribute::Stats2(parts) => {
                has_stats2 = true;
                for part in parts {
                    match part {
                        TcStats2::Basic(basic) => {
                            stats.bytes = basic.bytes;
                            stats.packets = basic.packets.into();
                        }
                        TcStats2::Queue(queue) => {
                            stats.drops = queue.drops.into();
                            stats.overlimits = queue.overlimits.into();
                            stats.requeues = queue.requeues.into();
                            stats.backlog = queue.backlog.into();
                            stats.qlen = queue.qlen.into();
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !has_stats2 {
        let old = message.attributes.iter().find_map(|a| match a {
            TcAttribute::Stats(s) => Some(s),
            _ => None,
        })?;
        stats.bytes = old.bytes;
        stats.packets = old.packets.into();
        stats.drops = old.drops.into();
        stats.overlimits = old.overlimits.into();
        stats.backlog = old.backlog.into();
        stats.qlen = old.qlen.into();
    }
    (!stats.kind.is_empty() && stats.kind != "noqueue").then_some(stats)
}

/// Every qdisc of the agent's network namespace, decoded.
fn dump() -> anyhow::Result<Vec<QdiscStats>> {
    let mut socket = Socket::new(NETLINK_ROUTE).context("opening an rtnetlink socket")?;
    socket.bind_auto().context("binding the rtnetlink socket")?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .context("connecting the rtnetlink socket")?;
    set_receive_timeout(&socket, DUMP_TIMEOUT)?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut request = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default())),
    );
    request.finalize();
    let mut buffer = vec![0; request.buffer_len()];
    request.serialize(&mut buffer);
    socket
        .send(&buffer, 0)
        .context("sending the rtnetlink qdisc dump request")?;
    let mut found = Vec::new();
    loop {
        let (datagram, _) = socket
            .recv_from_full()
            .context("reading the rtnetlink qdisc dump")?;
        let mut offset = 0;
        while offset < datagram.len() {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&datagram[offset..])
                .context("decoding an rtnetlink qdisc message")?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::Done(_) => return Ok(found),
                NetlinkPayload::Error(e) => {
                    anyhow::bail!("the kernel refused the qdisc dump: {e:?}")
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewQueueDiscipline(tc)) => {
                    found.extend(decode(&tc));
                }
                _ => {}
            }
            if length == 0 {
                anyhow::bail!("rtnetlink message of length 0 in the qdisc dump");
            }
            // Messages are 4-byte aligned in a datagram.
            offset += (length + 3) & !3;
        }
    }
}

fn set_receive_timeout(socket: &Socket, timeout: Duration) -> anyhow::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: the option value is a valid timeval of the size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .context("setting the rtnetlink receive timeout");
    }
    Ok(())
}

fn interface_name(ifindex: u32) -> Option<String> {
    let mut buffer = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer has the IF_NAMESIZE bytes if_indextoname writes at most.
    let name = unsafe { libc::if_indextoname(ifindex, buffer.as_mut_ptr()) };
    if name.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buffer.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::Emitable;
    use rtnetlink::packet_route::tc::{TcHeader, TcStats, TcStatsBasic, TcStatsQueue};

    fn message(parent: TcHandle, attributes: Vec<TcAttribute>) -> TcMessage {
        let mut message = TcMessage::default();
        message.header = TcHeader {
            index: 7,
            parent,
            ..Default::default()
        };
        message.attributes = attributes;
        message
    }

    /// Through the wire format and back, as the kernel's messages arrive.
    fn round_trip(message: TcMessage) -> TcMessage {
        let mut netlink = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::from(RouteNetlinkMessage::NewQueueDiscipline(message)),
        );
        netlink.finalize();
        let mut bytes = vec![0; netlink.buffer_len()];
        netlink.serialize(&mut bytes);
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes)
            .unwrap()
            .payload
        {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewQueueDiscipline(tc)) => tc,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stats2_of_a_root_qdisc() {
        let mut basic = TcStatsBasic::default();
        basic.bytes = 5_000_000_000;
        basic.packets = 1000;
        let mut queue = TcStatsQueue::default();
        queue.qlen = 3;
        queue.backlog = 4500;
        queue.drops = 7;
        queue.requeues = 2;
        queue.overlimits = 11;
        let tc = round_trip(message(
            TcHandle::ROOT,
            vec![
                TcAttribute::Kind("fq_codel".into()),
                TcAttribute::Stats2(vec![TcStats2::Basic(basic), TcStats2::Queue(queue)]),
            ],
        ));
        assert_eq!(
            decode(&tc),
            Some(QdiscStats {
                ifindex: 7,
                kind: "fq_codel".into(),
                bytes: 5_000_000_000,
                packets: 1000,
                drops: 7,
                overlimits: 11,
                requeues: 2,
                backlog: 4500,
                qlen: 3,
            })
        );
        assert!(tc.buffer_len() > 0);
    }

    #[test]
    fn old_stats_children_and_noqueue() {
        let mut old = TcStats::default();
        old.bytes = 100;
        old.packets = 2;
        old.drops = 1;
        let tc = round_trip(message(
            TcHandle::ROOT,
            vec![
                TcAttribute::Kind("pfifo_fast".into()),
                TcAttribute::Stats(old),
            ],
        ));
        let stats = decode(&tc).unwrap();
        assert_eq!((stats.bytes, stats.packets, stats.drops), (100, 2, 1));
        let child = message(
            TcHandle { major: 1, minor: 1 },
            vec![
                TcAttribute::Kind("fq_codel".into()),
                TcAttribute::Stats(old),
            ],
        );
        assert_eq!(decode(&child), None);
        let noqueue = message(
            TcHandle::ROOT,
            vec![TcAttribute::Kind("noqueue".into()), TcAttribute::Stats(old)],
        );
        assert_eq!(decode(&noqueue), None);
    }

    #[test]
    fn dumps_this_host() {
        // Every namespace has at least loopback (noqueue); the dump itself must work unprivileged.
        let all = dump().unwrap();
        assert!(all.iter().all(|s| s.kind != "noqueue" && s.ifindex > 0));
    }
}
