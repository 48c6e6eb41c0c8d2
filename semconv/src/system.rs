//! Host metrics from procfs: CPU, memory, disks, network. Existing OpenTelemetry `system.*`
//! conventions where there is one (instrument and unit as specified there), `huatuo.*` for what
//! they do not cover (load, PSI, vmstat, buddyinfo, SNMP counters, sockets, ARP).

names! {
    /// CPU mode: `user`, `nice`, `system`, `idle`, `iowait`, `interrupt` (hard IRQ), `softirq`, `steal` (guest time is part of `user` and `nice`, as in `/proc/stat`); cpuidle's gauge also has `total` (user + system).
    Attribute CPU_MODE = "cpu.mode", "string";
    /// Seconds the host's CPUs spent in each mode, summed over all CPUs (`/proc/stat`).
    Metric SYSTEM_CPU_TIME = "system.cpu.time", "counter s";
    /// Share of CPU time spent in each mode since the previous collection, all CPUs together (0 to 1).
    Metric SYSTEM_CPU_UTILIZATION = "system.cpu.utilization", "gauge 1";
    /// Task state counted by `huatuo.cpu.tasks`: `runnable` (running or waiting for a CPU, `procs_running`) or `iowait` (sleeping in an IO wait such as a block request or a page lock: the kernel's nr_iowait, shown as `procs_blocked`). `iowait` is a subset of the uninterruptible (D-state) tasks; the kernel's nr_uninterruptible is only in debugfs (`sched/debug`), which the agent does not mount, and counting D-state tasks means reading every `/proc/<pid>/stat`: the `dload` tracer does that for its `huatuo.dload.load1` gauge.
    Attribute TASK_STATE = "huatuo.task.state", "string";
    /// Tasks by state at the time of collection (`/proc/stat`).
    Metric CPU_TASKS = "huatuo.cpu.tasks", "gauge {task}";
    /// Context switches on all CPUs (`ctxt` in `/proc/stat`).
    Metric CPU_CONTEXT_SWITCHES = "huatuo.cpu.context_switches", "counter {switch}";
    /// Processes and threads created (`processes` in `/proc/stat`).
    Metric SYSTEM_PROCESS_CREATED = "system.process.created", "counter {process}";
    /// Softirq type: `HI`, `TIMER`, `NET_TX`, `NET_RX`, `BLOCK`, `IRQ_POLL`, `TASKLET`, `SCHED`, `HRTIMER`, `RCU`.
    Attribute SOFTIRQ_TYPE = "huatuo.softirq.type", "string";
    /// Softirqs raised and run, by type, all CPUs (`softirq` in `/proc/stat`).
    Metric CPU_SOFTIRQS = "huatuo.cpu.softirqs", "counter {softirq}";
    /// 1-minute load average: tasks runnable or in uninterruptible sleep, exponentially averaged (`/proc/loadavg`).
    Metric LOAD_AVERAGE_1M = "huatuo.cpu.load_average.1m", "gauge {task}";
    /// 5-minute load average (`/proc/loadavg`).
    Metric LOAD_AVERAGE_5M = "huatuo.cpu.load_average.5m", "gauge {task}";
    /// 15-minute load average (`/proc/loadavg`).
    Metric LOAD_AVERAGE_15M = "huatuo.cpu.load_average.15m", "gauge {task}";

    /// Memory state: `used` (MemTotal - MemFree - Buffers - Cached), `free`, `buffers`, `cached` (page cache); they add up to the total.
    Attribute SYSTEM_MEMORY_STATE = "system.memory.state", "string";
    /// Host memory by state, bytes (`/proc/meminfo`).
    Metric SYSTEM_MEMORY_USAGE = "system.memory.usage", "updowncounter By";
    /// Host memory managed by the kernel (`MemTotal`), bytes.
    Metric SYSTEM_MEMORY_LIMIT = "system.memory.limit", "updowncounter By";
    /// Memory available for new allocations without swapping (`MemAvailable`, Linux 3.14+), bytes.
    Metric SYSTEM_MEMORY_LINUX_AVAILABLE = "system.memory.linux.available", "updowncounter By";
    /// Shared memory and tmpfs (`Shmem`), bytes.
    Metric SYSTEM_MEMORY_LINUX_SHARED = "system.memory.linux.shared", "updowncounter By";
    /// Slab state: `reclaimable` (`SReclaimable`) or `unreclaimable` (`SUnreclaim`).
    Attribute SYSTEM_MEMORY_LINUX_SLAB_STATE = "system.memory.linux.slab.state", "string";
    /// Kernel slab memory by state, bytes.
    Metric SYSTEM_MEMORY_LINUX_SLAB_USAGE = "system.memory.linux.slab.usage", "updowncounter By";
    /// Swap state: `used` or `free`.
    Attribute SYSTEM_PAGING_STATE = "system.paging.state", "string";
    /// Swap space by state (`SwapTotal`, `SwapFree`), bytes.
    Metric SYSTEM_PAGING_USAGE = "system.paging.usage", "updowncounter By";
    /// Page fault type: `major` (needed IO) or `minor`.
    Attribute SYSTEM_PAGING_FAULT_TYPE = "system.paging.fault.type", "string";
    /// Page faults by type (`pgmajfault`, `pgfault` minus `pgmajfault` in `/proc/vmstat`).
    Metric SYSTEM_PAGING_FAULTS = "system.paging.faults", "counter {fault}";
    /// Swap direction: `in` or `out`.
    Attribute SYSTEM_PAGING_DIRECTION = "system.paging.direction", "string";
    /// Pages swapped in and out (`pswpin`, `pswpout`).
    Metric SYSTEM_PAGING_OPERATIONS = "system.paging.operations", "counter {operation}";
    /// A `/proc/vmstat` key as the kernel names it (`pgscan_direct`, `nr_dirty`, ...).
    Attribute VMSTAT_KEY = "huatuo.vmstat.key", "string";
    /// `/proc/vmstat` event counters (keys not starting with `nr_`, and the cumulative `nr_dirtied`, `nr_written`, ...), by key, filtered by `collectors.vmstat`.
    Metric VMSTAT_EVENTS = "huatuo.memory.vmstat.events", "counter {event}";
    /// `/proc/vmstat` levels (`nr_*` keys and `workingset_nodes`), by key: pages for most, as the kernel reports them (`nr_kernel_stack` is in KiB).
    Metric VMSTAT_LEVELS = "huatuo.memory.vmstat.levels", "gauge {page}";
    /// NUMA node number.
    Attribute NUMA_NODE = "huatuo.numa.node", "int";
    /// Memory zone: `DMA`, `DMA32`, `Normal`, `Movable`, ...
    Attribute MEMORY_ZONE = "huatuo.memory.zone", "string";
    /// Allocation order: a block of this order is 2^order contiguous pages.
    Attribute MEMORY_ORDER = "huatuo.memory.order", "int";
    /// Free blocks of each order in each zone of each node (`/proc/buddyinfo`): few high-order blocks mean fragmented memory.
    Metric BUDDYINFO_BLOCKS = "huatuo.memory.buddyinfo.blocks", "gauge {block}";
    /// Resource under pressure: `cpu`, `memory`, `io`, `irq`.
    Attribute PRESSURE_RESOURCE = "huatuo.pressure.resource", "string";
    /// `some` (at least one task stalled) or `full` (all non-idle tasks stalled at once).
    Attribute PRESSURE_SCOPE = "huatuo.pressure.scope", "string";
    /// Averaging window of a pressure ratio: `10s`, `60s`, `300s`.
    Attribute PRESSURE_WINDOW = "huatuo.pressure.window", "string";
    /// Time tasks were stalled waiting for the resource (PSI `total`, `/proc/pressure/*`), seconds.
    Metric PRESSURE_STALL_TIME = "huatuo.pressure.stall.time", "counter s";
    /// Share of wall time stalled, averaged by the kernel over the window (PSI `avg10`, `avg60`, `avg300`; 0 to 1).
    Metric PRESSURE_STALL_RATIO = "huatuo.pressure.stall.ratio", "gauge 1";

    /// Block device name as the kernel names it (`sda`, `nvme0n1`, `dm-0`): from `/proc/diskstats` for the collectors, from `/sys/dev/block/<major>:<minor>` for iolatency (`<major>:<minor>` for a disk gone before it was named).
    Attribute SYSTEM_DEVICE = "system.device", "string";
    /// Disk IO direction: `read` or `write`.
    Attribute DISK_IO_DIRECTION = "disk.io.direction", "string";
    /// Bytes read and written, by device (`/proc/diskstats` sectors, always 512 bytes).
    Metric SYSTEM_DISK_IO = "system.disk.io", "counter By";
    /// Reads and writes completed, by device.
    Metric SYSTEM_DISK_OPERATIONS = "system.disk.operations", "counter {operation}";
    /// Adjacent reads and writes merged into one request, by device.
    Metric SYSTEM_DISK_MERGED = "system.disk.merged", "counter {operation}";
    /// Time spent on completed reads and writes (summed over concurrent requests), seconds.
    Metric SYSTEM_DISK_OPERATION_TIME = "system.disk.operation_time", "counter s";
    /// Time the device had at least one request in flight, seconds.
    Metric SYSTEM_DISK_IO_TIME = "system.disk.io_time", "counter s";
    /// In-flight time weighted by the number of requests in flight, seconds; its rate is the average queue length.
    Metric DISK_WEIGHTED_IO_TIME = "huatuo.disk.weighted_io_time", "counter s";
    /// Requests in flight at the time of collection.
    Metric DISK_PENDING_OPERATIONS = "huatuo.disk.pending_operations", "gauge {operation}";
    /// Share of wall time the device was busy since the previous collection (0 to 1; `%util` of iostat).
    Metric DISK_UTILIZATION = "huatuo.disk.utilization", "gauge 1";
    /// Cache flushes completed (Linux 5.5+).
    Metric DISK_FLUSHES = "huatuo.disk.flushes", "counter {operation}";

    /// Network direction: `receive` or `transmit`.
    Attribute NETWORK_IO_DIRECTION = "network.io.direction", "string";
    /// Bytes by interface and direction (`/proc/net/dev`).
    Metric SYSTEM_NETWORK_IO = "system.network.io", "counter By";
    /// Packets by interface and direction.
    Metric SYSTEM_NETWORK_PACKET_COUNT = "system.network.packet.count", "counter {packet}";
    /// Packets dropped by interface and direction.
    Metric SYSTEM_NETWORK_PACKET_DROPPED = "system.network.packet.dropped", "counter {packet}";
    /// Errors by interface and direction.
    Metric SYSTEM_NETWORK_ERRORS = "system.network.errors", "counter {error}";
    /// Low-level error class: `fifo` (overrun), `frame` (receive), `collisions`, `carrier` (transmit).
    Attribute ERROR_TYPE = "error.type", "string";
    /// Link-level errors by interface, direction and class (`error.type`), also counted in `system.network.errors`.
    Metric NETWORK_LINK_ERRORS = "huatuo.network.link.errors", "counter {error}";
    /// Multicast packets received, by interface.
    Metric NETWORK_MULTICAST = "huatuo.network.multicast", "counter {packet}";
    /// `Protocol_Field` of `/proc/net/snmp` and `/proc/net/netstat` (`Tcp_RetransSegs`, `TcpExt_ListenDrops`), as HuaTuo names it.
    Attribute NETSTAT_KEY = "huatuo.netstat.key", "string";
    /// SNMP and extended network counters by key, filtered by `collectors.netstat`.
    Metric NETSTAT_EVENTS = "huatuo.netstat.events", "counter {event}";
    /// SNMP values that are levels or settings, not counters (`Tcp_CurrEstab`, `Tcp_MaxConn`, `Tcp_RtoMin`, `Ip_Forwarding`, `Ip_DefaultTTL`, ...).
    Metric NETSTAT_CURRENT = "huatuo.netstat.current", "gauge {value}";
    /// Socket protocol as in `/proc/net/sockstat`, lowercase: `tcp`, `udp`, `udplite`, `raw`, `frag` (reassembly queues); `all` for the total.
    Attribute SOCKET_PROTOCOL = "huatuo.socket.protocol", "string";
    /// Socket state: `inuse`, `orphan`, `tw` (TIME_WAIT), `alloc` (allocated, incl. not yet bound); `used` for the total.
    Attribute SOCKET_STATE = "huatuo.socket.state", "string";
    /// Sockets by protocol and state (`/proc/net/sockstat`, the agent's network namespace).
    Metric SOCKETS = "huatuo.sockstat.sockets", "gauge {socket}";
    /// Memory used by socket buffers, by protocol, bytes (pages times the page size; `frag` in bytes).
    Metric SOCKET_MEMORY = "huatuo.sockstat.memory", "gauge By";
    /// `net.ipv4.tcp_mem` threshold: `low`, `pressure` (TCP starts moderating buffers), `high` (allocations fail).
    Attribute TCP_MEMORY_THRESHOLD = "huatuo.tcp.memory.threshold", "string";
    /// TCP memory thresholds of `net.ipv4.tcp_mem`, bytes.
    Metric TCP_MEMORY_LIMIT = "huatuo.tcp.memory.limit", "gauge By";
    /// TCP socket memory over its `high` threshold (0 to 1; at 1 TCP allocations fail).
    Metric TCP_MEMORY_UTILIZATION = "huatuo.tcp.memory.utilization", "gauge 1";
    /// Neighbour (ARP) entries in the agent's network namespace (`/proc/net/arp`).
    Metric ARP_ENTRIES = "huatuo.arp.entries", "gauge {entry}";
    /// Entries in the kernel's ARP table, all network namespaces (`/proc/net/stat/arp_cache`); compare with `net.ipv4.neigh.default.gc_thresh3`.
    Metric ARP_TABLE_ENTRIES = "huatuo.arp.table.entries", "gauge {entry}";
}
