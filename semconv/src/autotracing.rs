//! Autotracing: captures triggered by anomalies (memburst, dload, cpusys, cpuidle, iotracer,
//! waitrate). A capture is one span from the trigger to the end of the capture, with the readings
//! that triggered it; what it captured is log records linked to that span.

names! {
    /// Why a capture was triggered, a fixed word per tracer (e.g. `anon_growth`, `dstate_load`).
    Attribute REASON = "huatuo.autotracing.reason", "string";
    /// What became of a trigger: `captured`, `cooldown` (the same target was captured less than `cooldown_secs` ago), `busy` (a capture of this tracer was running).
    Attribute OUTCOME = "huatuo.autotracing.outcome", "string";
    /// Anomalies detected by autotracing tracers, by tracer, reason and outcome.
    Metric TRIGGERS = "huatuo.autotracing.triggers", "counter {trigger}";

    /// memburst capture: host anonymous memory grew fast and is a large share of RAM; the span lasts while the top processes are read.
    Span MEMBURST_CAPTURE = "huatuo.memburst.capture", "span";
    /// Anonymous memory (`Active(anon)` + `Inactive(anon)` of /proc/meminfo) at the trigger, bytes.
    Attribute ANON_BYTES = "huatuo.memburst.anon", "int";
    /// Anonymous memory at the oldest sample of the sliding window, bytes.
    Attribute ANON_OLDEST_BYTES = "huatuo.memburst.anon.oldest", "int";
    /// Span of the sliding window, seconds (samples × interval).
    Attribute WINDOW_SECONDS = "huatuo.memburst.window", "int";
    /// Growth over the window that triggers a capture, percent (`delta_percent`: 100 = doubled).
    Attribute GROWTH_THRESHOLD = "huatuo.memburst.growth.threshold", "int";
    /// Share of MemTotal anonymous memory must exceed to trigger, percent (`anon_share_percent`).
    Attribute SHARE_THRESHOLD = "huatuo.memburst.share.threshold", "int";
    /// One of the processes using the most memory when a memburst capture ran.
    Event MEMBURST_PROCESS = "huatuo.memburst.process", "event";
    /// The process's command name (`/proc/<pid>/comm`, at most 15 characters).
    Attribute PROCESS_EXECUTABLE_NAME = "process.executable.name", "string";
    /// Resident set size of a process (`/proc/<pid>/statm` resident pages × page size), bytes.
    Attribute PROCESS_RSS = "huatuo.process.memory.rss", "int";
    /// Rank of the process in the capture, 1 = largest.
    Attribute RANK = "huatuo.autotracing.rank", "int";
    /// Host anonymous memory now divided by its value at the oldest sample of the window.
    Metric ANON_GROWTH = "huatuo.memburst.growth", "gauge 1";

    /// dload capture: tasks in state D (uninterruptible) made a container's or the host's D-state load average exceed the threshold; the span lasts while their stacks are read.
    Span DLOAD_CAPTURE = "huatuo.dload.capture", "span";
    /// 1-minute exponentially-weighted average of the number of tasks in state D (like the kernel's load average, counting D tasks only).
    Attribute DLOAD_AVG = "huatuo.dload.load1", "double";
    /// D-state load above which a capture is triggered (`threshold`).
    Attribute DLOAD_THRESHOLD = "huatuo.dload.threshold", "double";
    /// Tasks in state D at the trigger.
    Attribute DLOAD_TASKS = "huatuo.dload.tasks", "int";
    /// The stacks of the D-state tasks of the capture's target: per distinct stack a line `N tasks: tid (comm), ...` then its frames, blocks separated by a blank line; at most 64 KiB.
    Event DLOAD_STACKS = "huatuo.dload.stacks", "event";
    /// Kernel stacks of tasks in state D, deduplicated as in `huatuo.dload.stacks`.
    Attribute DLOAD_STACK_TEXT = "huatuo.dload.stacks", "string";
    /// Tasks in state D whose stacks are not in the capture (beyond `max_stacks`, beyond 64 KiB, or exited).
    Attribute DLOAD_OMITTED = "huatuo.dload.omitted", "int";
    /// What the D-state tasks of a dload capture wait in: per kernel function the task sleeps in (`/proc/<tid>/wchan`), a line `function count`, most common first; `?` for tasks that left state D or whose wchan is hidden. Covers the same tasks as the stacks (at most `max_stacks`).
    Attribute DLOAD_WAIT_REASONS = "huatuo.dload.wait_reasons", "string";
    /// D-state load average by container (`container.id`; absent for the host).
    Metric DLOAD_LOAD = "huatuo.dload.load1", "gauge {task}";

    /// iotracer capture: a disk's utilisation (on NVMe, with its bandwidth) or await was above its threshold on two consecutive samples; the span lasts while its IO is counted per process and cgroup from the block tracepoints.
    Span IOTRACER_CAPTURE = "huatuo.iotracer.capture", "span";
    /// Share of the last sampling interval the disk was busy (`io_ticks` of /proc/diskstats), percent.
    Attribute DISK_UTIL_PERCENT = "huatuo.disk.util.percent", "double";
    /// Utilisation above which a disk is saturated, percent (`util_percent_threshold`).
    Attribute DISK_UTIL_PERCENT_THRESHOLD = "huatuo.disk.util.percent.threshold", "double";
    /// Bytes read per second over the last sampling interval.
    Attribute DISK_READ_BPS = "huatuo.disk.read.bytes_per_second", "double";
    /// Bytes written per second over the last sampling interval.
    Attribute DISK_WRITE_BPS = "huatuo.disk.write.bytes_per_second", "double";
    /// Read bandwidth a busy NVMe disk must exceed, bytes per second (`read_mib_per_sec_threshold` × 2^20).
    Attribute DISK_READ_BPS_THRESHOLD = "huatuo.disk.read.bytes_per_second.threshold", "double";
    /// Write bandwidth a busy NVMe disk must exceed, bytes per second (`write_mib_per_sec_threshold` × 2^20).
    Attribute DISK_WRITE_BPS_THRESHOLD = "huatuo.disk.write.bytes_per_second.threshold", "double";
    /// Reads completed per second over the last sampling interval.
    Attribute DISK_READ_IOPS = "huatuo.disk.read.iops", "double";
    /// Writes completed per second over the last sampling interval.
    Attribute DISK_WRITE_IOPS = "huatuo.disk.write.iops", "double";
    /// Average time of the reads completed over the last sampling interval, queue and service, milliseconds.
    Attribute DISK_READ_AWAIT_MS = "huatuo.disk.read.await_ms", "double";
    /// Average time of the writes completed over the last sampling interval, milliseconds.
    Attribute DISK_WRITE_AWAIT_MS = "huatuo.disk.write.await_ms", "double";
    /// Await above which a disk is slow, milliseconds (`await_ms_threshold`).
    Attribute DISK_AWAIT_MS_THRESHOLD = "huatuo.disk.await_ms.threshold", "double";
    /// Average number of requests in flight over the last sampling interval (weighted `io_ticks`).
    Attribute DISK_QUEUE_SIZE = "huatuo.disk.queue.size", "double";
    /// Seconds the capture counted IO.
    Attribute IOTRACER_DURATION = "huatuo.iotracer.duration", "int";
    /// Requests of the disk completed during the capture, whoever submitted them.
    Attribute IOTRACER_REQUESTS = "huatuo.iotracer.requests", "int";
    /// Processes (pid and cgroup pairs) whose requests completed during the capture.
    Attribute IOTRACER_PROCESSES = "huatuo.iotracer.processes", "int";
    /// Requests not counted because the kernel's tables were full (more than 4096 processes, or 16384 requests in flight).
    Attribute IOTRACER_UNCOUNTED = "huatuo.iotracer.uncounted", "int";
    /// One of the processes that did the most IO on the captured disk (by bytes, then requests); its container comes from its cgroup.
    Event IOTRACER_PROCESS = "huatuo.iotracer.process", "event";
    /// Bytes a process read from the disk during the capture (completed requests).
    Attribute IOTRACER_READ_BYTES = "huatuo.iotracer.read_bytes", "int";
    /// Bytes a process wrote to the disk during the capture.
    Attribute IOTRACER_WRITE_BYTES = "huatuo.iotracer.write_bytes", "int";
    /// Requests of the process completed per second of capture (reads, writes, flushes, discards).
    Attribute IOTRACER_IOPS = "huatuo.iotracer.iops", "double";
    /// Requests of the process completed during the capture.
    Attribute IOTRACER_PROCESS_REQUESTS = "huatuo.iotracer.process.requests", "int";
    /// Average time of the process's requests from start (`block:block_io_start`, else insertion into the queue) to completion, microseconds.
    Attribute IOTRACER_Q2C_AVG_US = "huatuo.iotracer.q2c.avg_us", "int";
    /// Longest of those, microseconds.
    Attribute IOTRACER_Q2C_MAX_US = "huatuo.iotracer.q2c.max_us", "int";
    /// Average time of the process's requests from issue to the driver to completion, microseconds.
    Attribute IOTRACER_D2C_AVG_US = "huatuo.iotracer.d2c.avg_us", "int";
    /// Longest of those, microseconds.
    Attribute IOTRACER_D2C_MAX_US = "huatuo.iotracer.d2c.max_us", "int";
    /// Files the process had open on the disk at the end of the capture (regular files on it or its partitions, or the device itself), one path per line; at most `top_files`, in descriptor order, not ranked by IO.
    Attribute IOTRACER_FILES = "huatuo.iotracer.files", "string";
    /// The tasks in state D when the most were seen during an iotracer capture (sampled every second), with their kernel stacks, attributes as in `huatuo.dload.stacks`.
    Event IOTRACER_STALLED = "huatuo.iotracer.stalled", "event";

    /// cpusys capture: the host's system CPU share was above its threshold and rose fast; the span lasts while on-CPU stacks of the whole host are sampled.
    Span CPUSYS_CAPTURE = "huatuo.cpusys.capture", "span";
    /// System (kernel) CPU time over the last sampling interval, percent: of all the host's CPUs for cpusys (`system` of /proc/stat), of the CPUs a container may use for cpuidle.
    Attribute SYS_PERCENT = "huatuo.cpu.system.percent", "double";
    /// Rise of `huatuo.cpu.system.percent` since the previous sample, percentage points.
    Attribute SYS_PERCENT_DELTA = "huatuo.cpu.system.percent.delta", "double";
    /// System CPU share above which a capture may start, percent (`sys_percent_threshold`).
    Attribute SYS_PERCENT_THRESHOLD = "huatuo.cpu.system.percent.threshold", "double";
    /// Rise above which it does, percentage points (`sys_percent_delta_threshold`).
    Attribute SYS_PERCENT_DELTA_THRESHOLD = "huatuo.cpu.system.percent.delta.threshold", "double";
    /// Host system CPU share over the last cpusys sampling interval.
    Metric SYS_PERCENT_GAUGE = "huatuo.cpusys.system", "gauge %";

    /// On-CPU stacks sampled during a capture, as folded stacks (flame-graph input).
    Event CPU_PROFILE = "huatuo.cpu.profile", "event";
    /// Folded stacks, most sampled first, one per line: `comm;outermost;...;innermost count`, user frames first, kernel frames suffixed `_[k]`; at most 64 KiB.
    Attribute PROFILE_FOLDED = "huatuo.profile.folded", "string";
    /// Stack samples taken.
    Attribute PROFILE_SAMPLES = "huatuo.profile.samples", "int";
    /// Distinct stacks sampled.
    Attribute PROFILE_STACKS = "huatuo.profile.stacks", "int";
    /// Samples of the stacks left out of `huatuo.profile.folded` by its size bound.
    Attribute PROFILE_OMITTED_SAMPLES = "huatuo.profile.omitted_samples", "int";
    /// Samples per second per CPU.
    Attribute PROFILE_FREQUENCY = "huatuo.profile.frequency", "int";
    /// Seconds sampled.
    Attribute PROFILE_DURATION = "huatuo.profile.duration", "int";

    /// cpuidle capture: a container's CPU use was above a threshold and rose fast; the span lasts while on-CPU stacks of that container are sampled.
    Span CPUIDLE_CAPTURE = "huatuo.cpuidle.capture", "span";
    /// A container's user CPU over the last sampling interval, percent of the CPUs it may use (its quota, else its cpuset, else the host's).
    Attribute USER_PERCENT = "huatuo.cpu.user.percent", "double";
    /// Rise of `huatuo.cpu.user.percent` since the previous sample, percentage points.
    Attribute USER_PERCENT_DELTA = "huatuo.cpu.user.percent.delta", "double";
    /// User CPU share above which a capture may start (`user_percent_threshold`).
    Attribute USER_PERCENT_THRESHOLD = "huatuo.cpu.user.percent.threshold", "double";
    /// Rise above which it does (`user_percent_delta_threshold`).
    Attribute USER_PERCENT_DELTA_THRESHOLD = "huatuo.cpu.user.percent.delta.threshold", "double";
    /// A container's total CPU over the last sampling interval, percent of the CPUs it may use.
    Attribute TOTAL_PERCENT = "huatuo.cpu.total.percent", "double";
    /// Rise of `huatuo.cpu.total.percent` since the previous sample, percentage points.
    Attribute TOTAL_PERCENT_DELTA = "huatuo.cpu.total.percent.delta", "double";
    /// Total CPU share above which a capture may start (`total_percent_threshold`).
    Attribute TOTAL_PERCENT_THRESHOLD = "huatuo.cpu.total.percent.threshold", "double";
    /// Rise above which it does (`total_percent_delta_threshold`).
    Attribute TOTAL_PERCENT_DELTA_THRESHOLD = "huatuo.cpu.total.percent.delta.threshold", "double";
    /// CPUs the container may use: its CFS quota, else its cpuset, else the host's online CPUs.
    Attribute CPU_CAPACITY = "huatuo.cpu.capacity", "double";
    /// A container's CPU use over the last cpuidle sampling interval, percent of the CPUs it may use, by `container.id` and `cpu.mode`.
    Metric CONTAINER_CPU_PERCENT = "huatuo.cpuidle.cpu", "gauge %";

    /// waitrate capture: a container's tasks waited for a CPU more than the threshold (wait seconds per second); the span lasts while the kernel records who ran on the CPUs where they waited.
    Span WAITRATE_CAPTURE = "huatuo.waitrate.capture", "span";
    /// Run-queue wait of the container's tasks over the last sampling interval, seconds per second of wall time (all kinds): the average number of its tasks waiting for a CPU.
    Attribute WAIT_RATE = "huatuo.waitrate.rate", "double";
    /// Wait rate above which a capture is triggered (`threshold`).
    Attribute WAIT_RATE_THRESHOLD = "huatuo.waitrate.threshold", "double";
    /// Part of `huatuo.waitrate.rate` spent while the CPU ran tasks of the same cgroup.
    Attribute WAIT_RATE_INNER = "huatuo.waitrate.rate.inner", "double";
    /// Part of `huatuo.waitrate.rate` spent while the CPU ran tasks of other cgroups.
    Attribute WAIT_RATE_EXTERNAL = "huatuo.waitrate.rate.external", "double";
    /// Part of `huatuo.waitrate.rate` spent throttled by the cgroup's CFS bandwidth (cpu quota).
    Attribute WAIT_RATE_THROTTLE = "huatuo.waitrate.rate.throttle", "double";
    /// Part of `huatuo.waitrate.rate` not attributed to a competitor: wake-up latency of an idle CPU.
    Attribute WAIT_RATE_OTHER = "huatuo.waitrate.rate.other", "double";
    /// Seconds the container's tasks waited during the capture while the CPU ran tasks of the same cgroup.
    Attribute CAPTURE_WAIT_INNER = "huatuo.waitrate.capture.inner", "double";
    /// Seconds they waited during the capture while the CPU ran tasks of other cgroups.
    Attribute CAPTURE_WAIT_EXTERNAL = "huatuo.waitrate.capture.external", "double";
    /// Seconds they waited throttled during the capture.
    Attribute CAPTURE_WAIT_THROTTLE = "huatuo.waitrate.capture.throttle", "double";
    /// Seconds they waited during the capture on an idle CPU (wake-up latency).
    Attribute CAPTURE_WAIT_OTHER = "huatuo.waitrate.capture.other", "double";
    /// Seconds the kernel recorded competitors for (`capture_secs`).
    Attribute CAPTURE_DURATION = "huatuo.waitrate.capture.duration", "int";
    /// Distinct tasks that ran while the container's tasks waited during the capture.
    Attribute COMPETITORS = "huatuo.waitrate.competitors", "int";
    /// Competitors left out of the capture's records (beyond `max_competitors`).
    Attribute COMPETITORS_OMITTED = "huatuo.waitrate.competitors.omitted", "int";
    /// A task that ran on a CPU while tasks of the captured container waited there; its container is the record's attribution, `thread.id`, `process.pid` and `thread.name` the task.
    Event WAITRATE_COMPETITOR = "huatuo.waitrate.competitor", "event";
    /// Seconds of the captured container's wait spent while this task ran (each waiting task counted: two tasks waiting 1 s behind it count 2 s).
    Attribute COMPETITOR_WAIT = "huatuo.waitrate.competitor.wait", "double";
    /// How a wait is charged: `inner`, `external`, `throttle` or `other` (see `huatuo.waitrate.wait_time`); on a competitor, `inner` when it is of the captured container, else `external`.
    Attribute WAIT_KIND = "huatuo.waitrate.kind", "string";
    /// Time tasks spent runnable waiting for a CPU, counted in the kernel from scheduler tracepoints, by container (`container.id`; absent for tasks outside containers) and `huatuo.waitrate.kind`: `inner` (the CPU ran the same cgroup), `external` (another cgroup), `throttle` (CFS bandwidth throttling), `other` (an idle CPU's wake-up latency).
    Metric WAIT_TIME = "huatuo.waitrate.wait_time", "counter s";
}
