//! Scheduling and CPUs: tasks the kernel's hung-task detector reports (hungtask), late scheduler
//! ticks (sched_tick), per-CPU breakdowns.

names! {
    /// Logical CPU number the measurement was taken on (OTel `cpu.logical_number`), on per-CPU metrics and on events that concern one CPU.
    Attribute CPU_LOGICAL_NUMBER = "cpu.logical_number", "int";
    /// The kernel's hung-task detector reported a task blocked uninterruptibly (state D) for longer than `kernel.hung_task_timeout_secs` (`sched:sched_process_hang`). `thread.id`, `process.pid` and `thread.name` describe the hung task.
    Event HUNG_TASK = "huatuo.hung_task", "event";
    /// `kernel.hung_task_timeout_secs` when the report was read: the task had been blocked at least this long (the kernel exposes no exact blocked time; a task still blocked is reported again every check interval, `hung_task_check_interval_secs`, by default the timeout).
    Attribute HUNG_TASK_TIMEOUT = "huatuo.hung_task.timeout", "int";
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
    /// A CPU ran its scheduler tick at least `huatuo.sched_tick.threshold` after the tick was due: it could not take its timer interrupt (interrupts disabled, a long hard-irq handler, a stalled vCPU). `cpu.logical_number` is the CPU; `thread.id`, `process.pid`, `thread.name` the task the late tick interrupted (pid 0: idle); `huatuo.kernel.stack` where it was.
    Event SCHED_TICK_DELAY = "huatuo.sched_tick.delay", "event";
    /// How long after it was due the scheduler tick ran, in seconds.
    Attribute SCHED_TICK_DELAY_DURATION = "huatuo.sched_tick.delay.duration", "double";
    /// The tracer's threshold (`threshold_us`) when the event was reported, in seconds.
    Attribute SCHED_TICK_THRESHOLD = "huatuo.sched_tick.threshold", "double";
    /// Kernel stack captured in the kernel at the event, bounded in depth (64 frames), one `symbol+0xoffset` frame per line (symbols from `/proc/kallsyms`), innermost first. For a late tick it runs from the tick handler through the timer interrupt into the code the interrupt preempted.
    Attribute KERNEL_STACK = "huatuo.kernel.stack", "string";
    /// Scheduler ticks that ran at least the threshold late, by CPU (`cpu.logical_number`), counted in the kernel (every one, including those the rate limit kept from becoming events).
    Metric SCHED_TICK_LATE_TICKS = "huatuo.sched_tick.late_ticks", "counter {tick}";
}
