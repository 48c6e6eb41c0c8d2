//! Attribution: which container and pod a record concerns, from its cgroup (or, for network
//! records without an owning task, its network namespace), and from the kubelet when enabled.

names! {
    /// Container id (64 hex), parsed from the cgroup path.
    Attribute CONTAINER_ID = "container.id", "string";
    /// Container runtime: `docker`, `containerd`, `cri-o` or `podman`, when the cgroup path says.
    Attribute CONTAINER_RUNTIME_NAME = "container.runtime.name", "string";
    /// Kubernetes pod UID, parsed from a kubepods cgroup path.
    Attribute K8S_POD_UID = "k8s.pod.uid", "string";
    /// Kubernetes QoS class of the pod from its cgroup path (or the kubelet): `guaranteed`, `burstable`, `besteffort`.
    Attribute K8S_POD_QOS = "huatuo.k8s.pod.qos", "string";
    /// Pod name, from the kubelet's pod list (`[attribution.kubelet]`).
    Attribute K8S_POD_NAME = "k8s.pod.name", "string";
    /// Pod namespace, from the kubelet's pod list.
    Attribute K8S_NAMESPACE_NAME = "k8s.namespace.name", "string";
    /// Container name in its pod spec, from the kubelet's pod list.
    Attribute K8S_CONTAINER_NAME = "k8s.container.name", "string";
    /// Role of the container in its pod (HuaTuo's container type): `normal`, `init`, `sidecar` (restartable init container or `istio-proxy`), `ephemeral`, `sandbox` (the pod's infrastructure container), or for the whole pod `daemonset` / `static` when that is how it was created.
    Attribute K8S_CONTAINER_TYPE = "huatuo.k8s.container.type", "string";
    /// Where the container of a record came from: `cgroup` (its task's or socket owner's cgroup, or the memory cgroup for OOM kills) `task` (the v1 cgroups of the record's task in `/proc/<tid>/cgroup`, on v1 and hybrid hosts where the unified cgroup names no container) or `netns` (the network namespace, for network records without an owning task).
    Attribute ATTRIBUTION_SOURCE = "huatuo.attribution.source", "string";

    /// CPU time of the container's tasks by mode (`cpu.mode`: `user`, `system`), from cgroup v2 `cpu.stat` or v1 `cpuacct.stat`.
    Metric CONTAINER_CPU_TIME = "container.cpu.time", "counter s";
    /// CFS bandwidth enforcement periods elapsed (`nr_periods`), for containers with a CPU quota.
    Metric CONTAINER_CPU_PERIODS = "huatuo.container.cpu.periods", "counter {period}";
    /// Periods in which the container was throttled for exhausting its quota (`nr_throttled`).
    Metric CONTAINER_CPU_THROTTLED_PERIODS = "huatuo.container.cpu.throttled_periods", "counter {period}";
    /// Time the container's tasks were throttled (`throttled_usec`, v1 `throttled_time`).
    Metric CONTAINER_CPU_THROTTLED_TIME = "huatuo.container.cpu.throttled_time", "counter s";
    /// Periods in which the container used burst capacity beyond its quota (`nr_bursts`, Linux 5.14+).
    Metric CONTAINER_CPU_BURSTS = "huatuo.container.cpu.bursts", "counter {period}";
    /// Time spent bursting beyond the quota (`burst_usec`, v1 `burst_time`, Linux 5.14+).
    Metric CONTAINER_CPU_BURST_TIME = "huatuo.container.cpu.burst_time", "counter s";
    /// Memory charged to the container (v2 `memory.current`, v1 `memory.usage_in_bytes`).
    Metric CONTAINER_MEMORY_USAGE = "container.memory.usage", "updowncounter By";
    /// The container's memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`); absent when unlimited.
    Metric CONTAINER_MEMORY_LIMIT = "huatuo.container.memory.limit", "updowncounter By";
    /// Key of the container's `memory.stat` (`anon`, `file`, `pgfault`, v1 `rss`, `cache`, ...), filtered by `collectors.container_memory`.
    Attribute MEMORY_STAT_KEY = "huatuo.memory.stat.key", "string";
    /// The container's `memory.stat` values by key, as the kernel prints them (bytes for sizes, counts for events), as HuaTuo exports them.
    Metric CONTAINER_MEMORY_STAT = "huatuo.container.memory.stat", "gauge {value}";
    /// Memory event: v2 `memory.events` keys (`low`, `high`, `max`, `oom`, `oom_kill`, `oom_group_kill`, `sock_throttled`); v1 `failcnt` (limit hit) and `oom_kill` (`memory.oom_control`).
    Attribute MEMORY_EVENT_TYPE = "huatuo.memory.event.type", "string";
    /// The container's memory events by type (v2 `memory.events`, v1 `memory.failcnt` and `memory.oom_control`).
    Metric CONTAINER_MEMORY_EVENTS = "huatuo.container.memory.events", "counter {event}";
    /// 1 while the container is under OOM with the OOM killer disabled (v1 `memory.oom_control` `under_oom`).
    Metric CONTAINER_MEMORY_UNDER_OOM = "huatuo.container.memory.under_oom", "gauge 1";
    /// Bytes read and written by the container, by device (`system.device`) and direction (v2 `io.stat`, v1 `blkio.throttle.io_service_bytes`).
    Metric CONTAINER_DISK_IO = "container.disk.io", "counter By";
    /// Reads and writes of the container, by device and direction (v2 `io.stat`, v1 `blkio.throttle.io_serviced`).
    Metric CONTAINER_DISK_OPERATIONS = "huatuo.container.disk.operations", "counter {operation}";
    /// Bytes by interface and direction in the container's network namespace (`/proc/<pid>/net/dev` of one of its tasks).
    Metric CONTAINER_NETWORK_IO = "container.network.io", "counter By";
    /// Packets by interface and direction in the container's network namespace.
    Metric CONTAINER_NETWORK_PACKET_COUNT = "huatuo.container.network.packet.count", "counter {packet}";
    /// Packets dropped by interface and direction in the container's network namespace.
    Metric CONTAINER_NETWORK_PACKET_DROPPED = "huatuo.container.network.packet.dropped", "counter {packet}";
    /// Errors by interface and direction in the container's network namespace.
    Metric CONTAINER_NETWORK_ERRORS = "huatuo.container.network.errors", "counter {error}";
}
