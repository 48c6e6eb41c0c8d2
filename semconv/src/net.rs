//! Networking: packet drops (dropwatch), TCP retransmits (tcp_retransmit), transmit queue
//! timeouts (netdev_txqueue_timeout).

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
}
