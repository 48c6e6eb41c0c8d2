//! Scheduling and CPUs: tasks the kernel's hung-task detector reports (hungtask), late scheduler
//! ticks (sched_tick), CPUs its soft-lockup watchdog reports (softlockup), softirq latency
//! (softirq), run-queue latency (runqlat), per-CPU breakdowns.

names! {
    /// Logical CPU number the measurement was taken on (OTel `cpu.logical_number`), on per-CPU metrics and on events that concern one CPU.
    Attribute CPU_LOGICAL_NUMBER = "cpu.logical_number", "int";
    /// The kernel's hung-task detector reported a task blocked uninterruptibly (state D) for longer than `kernel.hung_task_timeout_secs` (`sched:sched_process_hang`). `thread.id`, `process.pid` and `thread.name` describe the hung task.
    Event HUNG_TASK = "huatuo.hung_task", "event";
    /// `kernel.hung_task_timeout_secs` when the report was read: the task had been blocked at least this long (the kernel keeps no blocking start time, see `huatuo.hung_task.blocked`; a task still blocked is reported again every check interval, `hung_task_check_interval_secs`, by default the timeout).
    Attribute HUNG_TASK_TIMEOUT = "huatuo.hung_task.timeout", "int";
    /// Seconds the task has been blocked at least, from the detector's own bookkeeping (tp_btf only, and only when the kernel config gives `CONFIG_HZ`): the time since the detector's check that first found the task no longer switching. The task blocked up to one check interval before that check, so this is a lower bound; it grows on each repeated report of the same task.
    Attribute HUNG_TASK_BLOCKED = "huatuo.hung_task.blocked", "double";
    /// Kernel stack of the hung task from `/proc/<tid>/stack`, one symbolized frame per line, innermost first.
    Attribute TASK_STACK = "huatuo.task.stack", "string";
    /// Tasks in state D on the host when the report was read (all of them, including those whose stacks were left out).
    Attribute BLOCKED_TASKS = "huatuo.hung_task.blocked.count", "int";
    /// Kernel stacks of the tasks in state D, deduplicated: per distinct stack a line `N tasks: tid (comm), ...` then its frames, blocks separated by a blank line; at most 64 KiB. Only on reports that were not in a back-off window.
    Attribute BLOCKED_STACKS = "huatuo.hung_task.blocked.stacks", "string";
    /// Tasks in state D whose stacks are not in `huatuo.hung_task.blocked.stacks`: beyond `max_blocked_stacks`, beyond 64 KiB, or exited before their stack was read.
    Attribute BLOCKED_STACKS_OMITTED = "huatuo.hung_task.blocked.omitted", "int";
    /// Reports since the previous dump of blocked stacks that carried none because they fell in its back-off window (`backoff_secs`).
    Attribute BLOCKED_DUMPS_SKIPPED = "huatuo.hung_task.blocked.skipped_reports", "int";
    /// Hung-task reports, every one counted in the kernel (a task blocked for long is reported again at each check).
    Metric HUNG_TASKS = "huatuo.hung_tasks", "counter {report}";
    /// A CPU ran its scheduler tick so late that the interval since the previous tick was due (`huatuo.sched_tick.interval`: the tick period plus the delay) reached `huatuo.sched_tick.threshold`, HuaTuo's tick-interval threshold: it could not take its timer interrupt (interrupts disabled, a long hard-irq handler, a stalled vCPU). `cpu.logical_number` is the CPU; `thread.id`, `process.pid`, `thread.name` the task the late tick interrupted (pid 0: idle); `huatuo.kernel.stack` where it was.
    Event SCHED_TICK_DELAY = "huatuo.sched_tick.delay", "event";
    /// How long after it was due the scheduler tick ran, in seconds.
    Attribute SCHED_TICK_DELAY_DURATION = "huatuo.sched_tick.delay.duration", "double";
    /// Time from the previous tick's due time to this tick, in seconds: the tick period (1/CONFIG_HZ) plus `huatuo.sched_tick.delay.duration`; the interval between two ticks when the previous one was on time (HuaTuo's `tick_interval`).
    Attribute SCHED_TICK_INTERVAL = "huatuo.sched_tick.interval", "double";
    /// The tracer's threshold on `huatuo.sched_tick.interval` (`threshold_us`) when the event was reported, in seconds.
    Attribute SCHED_TICK_THRESHOLD = "huatuo.sched_tick.threshold", "double";
    /// Kernel stack captured in the kernel at the event, bounded in depth (64 frames), one `symbol+0xoffset` frame per line (symbols from `/proc/kallsyms`), innermost first. For a late tick it runs from the tick handler through the timer interrupt into the code the interrupt preempted.
    Attribute KERNEL_STACK = "huatuo.kernel.stack", "string";
    /// Scheduler ticks whose interval reached the threshold, by CPU (`cpu.logical_number`), counted in the kernel (every one, including those the rate limit kept from becoming events).
    Metric SCHED_TICK_LATE_TICKS = "huatuo.sched_tick.late_ticks", "counter {tick}";
    /// The kernel's soft-lockup watchdog reported a CPU that ran kernel code without scheduling for longer than twice `kernel.watchdog_thresh` (read from the kernel's own log records, never from lines written to `/dev/kmsg` from user space). `cpu.logical_number` is the CPU; `thread.id`, `thread.name` and `process.pid` describe the task that was running on it.
    Event SOFT_LOCKUP = "huatuo.soft_lockup", "event";
    /// Seconds the CPU had been stuck when the watchdog reported it (its `stuck for Ns`).
    Attribute SOFT_LOCKUP_DURATION = "huatuo.soft_lockup.duration", "int";
    /// Kernel stack of the stuck task as the watchdog logged it: the interrupted instruction (`RIP`), then the task's frames, innermost first, without those the unwinder marks unreliable; at most 64 frames.
    Attribute SOFT_LOCKUP_STACK = "huatuo.soft_lockup.stack", "string";
    /// The kernel log records that followed the report for `backtrace_window_ms`, one per line with their kernel time (`[seconds.micros] message`): the watchdog's registers and call trace, and the all-CPU backtraces when `all_cpu_backtrace` is on; at most `max_log_kib`.
    Attribute SOFT_LOCKUP_KERNEL_LOG = "huatuo.soft_lockup.kernel_log", "string";
    /// Kernel log records of the window left out of `huatuo.soft_lockup.kernel_log` because it was full.
    Attribute SOFT_LOCKUP_KERNEL_LOG_OMITTED = "huatuo.soft_lockup.kernel_log.omitted", "int";
    /// Whether the kernel carried the soft-lockup taint (`L`, bit 14 of `kernel.tainted`) when the report was emitted: the watchdog sets it right after reporting, so `false` on a report means the kernel log and the taint disagree.
    Attribute SOFT_LOCKUP_TAINTED = "huatuo.soft_lockup.tainted", "boolean";
    /// Soft lockup reports held back by the back-off (`backoff_*_secs`) since the previous event; all of them are in `huatuo.soft_lockups`.
    Attribute SOFT_LOCKUP_HELD_BACK = "huatuo.soft_lockup.held_back", "int";
    /// Every soft lockup report of the kernel's watchdog (also those held back by the back-off), by CPU.
    Metric SOFT_LOCKUPS = "huatuo.soft_lockups", "counter {report}";
    /// Lines that read like soft lockup reports but were written to `/dev/kmsg` from user space (not the kernel facility): ignored, never events; anything above zero means someone forges kernel messages.
    Metric SOFT_LOCKUP_FORGED = "huatuo.soft_lockup.forged_reports", "counter {record}";
    /// A softirq vector began running on a CPU at least `latency_threshold_us` after it was raised there (`irq:softirq_raise` to `irq:softirq_entry`): networking, timers or RCU on that CPU were held up by interrupts or by code running with softirqs disabled. `cpu.logical_number` is the CPU; `process.pid`, `thread.id` and `thread.name` the task that was running when the vector finally ran (0 / `swapper` for idle).
    Event SOFTIRQ_DELAY = "huatuo.softirq.delay", "event";
    /// The softirq vector, by the kernel's name: `HI`, `TIMER`, `NET_TX`, `NET_RX`, `BLOCK`, `IRQ_POLL`, `TASKLET`, `SCHED`, `HRTIMER`, `RCU`.
    Attribute SOFTIRQ_VECTOR = "huatuo.softirq.vector", "string";
    /// Nanoseconds from the first raise of the vector on the CPU to the start of its handler.
    Attribute SOFTIRQ_DELAY_DURATION = "huatuo.softirq.delay.duration", "int";
    /// Raise-to-entry latency of every run of the watched softirq vectors, by `huatuo.softirq.vector` (and `cpu.logical_number` with `per_cpu`), counted in the kernel in log2 buckets of microseconds.
    Metric SOFTIRQ_LATENCY = "huatuo.softirq.latency", "histogram s";
    /// Time tasks spent runnable but waiting for a CPU (from wakeup or preemption until they run), host-wide (runqlat, `sched:sched_wakeup`/`sched_wakeup_new`/`sched_switch`). Log2 buckets of microseconds: `le` 1, 2, 4, ... × 10⁻⁶ s.
    Metric RUNQUEUE_LATENCY = "huatuo.sched.runqueue.latency", "histogram s";
}
