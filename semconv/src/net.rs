//! Networking: packet drops (dropwatch), TCP retransmits (tcp_retransmit), transmit queue
//! timeouts (netdev_txqueue_timeout), receive latency (netrecvlat), link changes (netdev).

names! {
    /// A packet freed by the kernel as dropped (`skb:kfree_skb`).
    Event SKB_DROP = "huatuo.skb.drop", "event";
    /// Kernel drop reason without the `SKB_DROP_REASON_` prefix (`NO_SOCKET`), or `UNKNOWN` on kernels without reasons.
    Attribute SKB_DROP_REASON = "huatuo.skb.drop.reason", "string";
    /// Where the packet was freed, symbolized from `/proc/kallsyms` (`udp_queue_rcv_one_skb+0x3a`).
    Attribute SKB_DROP_LOCATION = "huatuo.skb.drop.location", "string";
    /// Bytes in the packet's kernel buffer (`skb->len`): the whole packet for drops, the TCP payload for retransmitted segments.
    Attribute SKB_LEN = "huatuo.skb.len", "int";
    /// TCP state of the packet's socket (`ESTABLISHED`, ...), when it has one.
    Attribute TCP_STATE = "huatuo.tcp.state", "string";
    /// Inode number of the network namespace (`/proc/<pid>/ns/net`).
    Attribute NETNS_INODE = "huatuo.netns.inode", "int";
    /// Kernel cgroup id (inode of the v2 cgroup directory) of the task concerned.
    Attribute CGROUP_ID = "huatuo.cgroup.id", "int";
    /// Cgroup path of the task concerned, relative to the cgroup mount.
    Attribute CGROUP_PATH = "huatuo.cgroup.path", "string";
    /// Transport protocol: `tcp`, `udp`, `icmp`, ... or `other`.
    Attribute NETWORK_TRANSPORT = "network.transport", "string";
    /// Network layer protocol: `ipv4`, `ipv6`, or `other`.
    Attribute NETWORK_TYPE = "network.type", "string";
    /// Network interface the packet was on.
    Attribute NETWORK_INTERFACE_NAME = "network.interface.name", "string";
    /// Source IP address of the packet.
    Attribute SOURCE_ADDRESS = "source.address", "string";
    /// Source port of the packet.
    Attribute SOURCE_PORT = "source.port", "int";
    /// Destination IP address of the packet.
    Attribute DESTINATION_ADDRESS = "destination.address", "string";
    /// Destination port of the packet.
    Attribute DESTINATION_PORT = "destination.port", "int";
    /// Process (thread group) id of the task running when the event happened.
    Attribute PROCESS_PID = "process.pid", "int";
    /// Thread id of the task running when the event happened.
    Attribute THREAD_ID = "thread.id", "int";
    /// Kernel task name (`comm`) of that thread.
    Attribute THREAD_NAME = "thread.name", "string";
    /// Every packet drop, counted in the kernel, by reason and protocol.
    Metric SKB_DROPS = "huatuo.skb.drops", "counter {packet}";
    /// A TCP segment or SYN-ACK sent again (`tcp:tcp_retransmit_skb`, `tcp:tcp_retransmit_synack`); source is the local end.
    Event TCP_RETRANSMIT = "huatuo.tcp.retransmit", "event";
    /// What was sent again: `data` (a segment of the send queue, SYN and FIN included) or `synack` (a listener's SYN-ACK).
    Attribute TCP_RETRANSMIT_KIND = "huatuo.tcp.retransmit.kind", "string";
    /// Why: `timeout` (retransmission timer), `fast_retransmit` (fast recovery), `loss_probe` (tail loss probe), `duplicate_syn` (SYN-ACK for a repeated SYN) or `other`.
    Attribute TCP_RETRANSMIT_REASON = "huatuo.tcp.retransmit.reason", "string";
    /// Every TCP retransmit, counted in the kernel, by kind, reason, TCP state and network type.
    Metric TCP_RETRANSMITS = "huatuo.tcp.retransmits", "counter {retransmit}";
    /// A transmit queue the netdev watchdog found stopped for longer than the device's `watchdog_timeo` (`net:net_dev_xmit_timeout`); the driver is reset next.
    Event NETDEV_TXQUEUE_TIMEOUT = "huatuo.netdev.txqueue_timeout", "event";
    /// Index of the device's transmit queue concerned.
    Attribute NETDEV_TXQUEUE_INDEX = "huatuo.netdev.txqueue.index", "int";
    /// Kernel driver bound to the device (`virtio_net`, `ixgbe`), empty when none is.
    Attribute NETDEV_DRIVER = "huatuo.netdev.driver", "string";
    /// Transmit queue timeouts, by interface.
    Metric NETDEV_TXQUEUE_TIMEOUTS = "huatuo.netdev.txqueue_timeouts", "counter {timeout}";
    /// A received TCP packet that reached a stage of the receive path later than the stage's threshold after the kernel stamped it on receive (netrecvlat). Source is the sender (the peer), destination the local end; `process.pid`, `thread.id` and `thread.name` (the reader) only at stage `user_copy`, the socket's cgroup and TCP state from stage `tcp` on, `network.interface.name` only at stage `netif`.
    Event NET_RX_LATENCY = "huatuo.net.rx_latency", "event";
    /// Stage of the receive path the latency was taken at: `netif` (entering the stack, `net:netif_receive_skb`), `tcp` (processed by its established TCP socket, `tcp:tcp_probe`) or `user_copy` (copied to the reading process, `skb:skb_copy_datagram_iovec`).
    Attribute NET_RX_LATENCY_STAGE = "huatuo.net.rx_latency.stage", "string";
    /// Nanoseconds from the packet's receive stamp to the stage.
    Attribute NET_RX_LATENCY_DURATION_NS = "huatuo.net.rx_latency.duration_ns", "int";
    /// The stage's threshold in nanoseconds (`[tracers.netrecvlat] *_threshold_us`): packets at least this late are reported.
    Attribute NET_RX_LATENCY_THRESHOLD_NS = "huatuo.net.rx_latency.threshold_ns", "int";
    /// Present (true) when the packet carried its sender's delivery time (CLOCK_MONOTONIC, e.g. over a veth pair within one namespace) instead of a receive stamp, so the latency counts from the sender.
    Attribute NET_RX_LATENCY_SENDER_TIMESTAMP = "huatuo.net.rx_latency.sender_timestamp", "boolean";
    /// Why a packet was not measured: `no_timestamp` (no receive stamp: RX software timestamps were off), `clock_step` (stamped in the future or before a step of the wall clock) or `other_clock` (stamped on CLOCK_TAI).
    Attribute NET_RX_LATENCY_SKIP_REASON = "huatuo.net.rx_latency.skip_reason", "string";
    /// Latency of every received TCP packet from its receive stamp to each stage, by stage (`huatuo.net.rx_latency.stage`); log2 buckets counted in the kernel.
    Metric NET_RX_LATENCY_DURATION = "huatuo.net.rx_latency.duration", "histogram s";
    /// Received TCP packets whose latency could not be taken, by stage and reason, counted in the kernel.
    Metric NET_RX_LATENCY_SKIPPED = "huatuo.net.rx_latency.skipped", "counter {packet}";
    /// A network interface's link changed (rtnetlink `RTM_NEWLINK`): set up or down by an administrator, or its carrier came or went. `network.interface.name` is the interface; the state attributes are those after the change.
    Event NETDEV_LINK_CHANGE = "huatuo.netdev.link_change", "event";
    /// Interface index in its network namespace.
    Attribute NETDEV_IFINDEX = "huatuo.netdev.ifindex", "int";
    /// What changed, in order: `admin_up`/`admin_down` (IFF_UP) then `carrier_up`/`carrier_down` (IFF_LOWER_UP; an interface set down loses its carrier with it).
    Attribute NETDEV_LINK_CHANGES = "huatuo.netdev.link.changes", "string[]";
    /// One change of `huatuo.netdev.link.changes`, on the counter.
    Attribute NETDEV_LINK_CHANGE_KIND = "huatuo.netdev.link.change", "string";
    /// Administrative state (IFF_UP): `up` or `down`.
    Attribute NETDEV_ADMIN_STATE = "huatuo.netdev.admin_state", "string";
    /// Carrier as the kernel reports it (IFF_LOWER_UP, only while administratively up): `up` or `down`.
    Attribute NETDEV_CARRIER = "huatuo.netdev.carrier", "string";
    /// RFC 2863 operational state (`up`, `down`, `lowerlayerdown`, `dormant`, `testing`, `notpresent`, `unknown`).
    Attribute NETDEV_OPERSTATE = "huatuo.netdev.operstate", "string";
    /// Version of the driver (`ethtool -i`), when it reports one.
    Attribute NETDEV_DRIVER_VERSION = "huatuo.netdev.driver.version", "string";
    /// Firmware version of the device (`ethtool -i`), when it has one.
    Attribute NETDEV_FIRMWARE_VERSION = "huatuo.netdev.firmware.version", "string";
    /// Link changes of network interfaces, by interface, driver and change.
    Metric NETDEV_LINK_CHANGES_TOTAL = "huatuo.netdev.link_changes", "counter {change}";
    /// Queueing discipline kind (`fq_codel`, `mq`, `pfifo_fast`, `htb`, `netem`, ...) of an interface's root qdisc.
    Attribute QDISC_KIND = "huatuo.qdisc.kind", "string";
    /// Bytes sent through the interface's root qdisc (rtnetlink `TCA_STATS2` basic).
    Metric QDISC_BYTES = "huatuo.qdisc.bytes", "counter By";
    /// Packets sent through the root qdisc.
    Metric QDISC_PACKETS = "huatuo.qdisc.packets", "counter {packet}";
    /// Packets the root qdisc dropped.
    Metric QDISC_DROPS = "huatuo.qdisc.drops", "counter {packet}";
    /// Times the root qdisc was over its limit (shaped or delayed a packet).
    Metric QDISC_OVERLIMITS = "huatuo.qdisc.overlimits", "counter {event}";
    /// Packets the driver handed back to the root qdisc to send again.
    Metric QDISC_REQUEUES = "huatuo.qdisc.requeues", "counter {packet}";
    /// Bytes queued in the root qdisc at the time of collection.
    Metric QDISC_BACKLOG = "huatuo.qdisc.backlog", "gauge By";
    /// Packets queued in the root qdisc at the time of collection.
    Metric QDISC_QUEUE_LENGTH = "huatuo.qdisc.queue_length", "gauge {packet}";
}
