//! The agent's own health: tracer status, restarts and records it could not deliver.

names! {
    /// Tracer name as in the configuration (`dropwatch`, ...).
    Attribute TRACER_NAME = "huatuo.tracer.name", "string";
    /// Tracer kind: `event`, `autotracing` or `metrics`.
    Attribute TRACER_KIND = "huatuo.tracer.kind", "string";
    /// Tracer state: `running`, `restarting`, `unsupported`, `disabled`, `stopped`.
    Attribute TRACER_STATE = "huatuo.tracer.state", "string";
    /// Why records were dropped: `ring_buffer_full` (kernel could not reserve), `rate_limited` (suppressed by the configured rate), `counter_map_full`, `tracking_map_full` (a duration could not be measured: the map of tasks in progress was full), `kernel_recursion` (the kernel skipped the program: it was already running on that CPU), `decode_error`; in the export pipeline: `spool_full` (the oldest spooled batch made room for a newer one), `spool_expired` (spooled longer than `exporters.otlp.spool.max_age_secs`), `spool_corrupt` (a spool file that could not be read back), `rejected` (the collector refused the replayed request as invalid), `spool_error` (the batch could not be written to the spool), `export_failed` (export failed and the spool is off), `queue_full` (an exporter's in-memory queue, `exporters.max_queue_size` records until their export returns, was full).
    Attribute DROP_CAUSE = "huatuo.drop.cause", "string";
    /// 1 for the state a tracer is in, 0 for the other states.
    Metric TRACER_STATUS = "huatuo.tracer.status", "gauge {state}";
    /// Times a tracer was restarted after a failure.
    Metric TRACER_RESTARTS = "huatuo.tracer.restarts", "counter {restart}";
    /// Records received from the kernel and decoded, per tracer.
    Metric TRACER_RECORDS = "huatuo.tracer.records", "counter {record}";
    /// Records that did not become telemetry, per tracer and cause (never silently lost).
    Metric TRACER_RECORDS_DROPPED = "huatuo.tracer.records.dropped", "counter {record}";
    /// Signal of an export request: `logs` or `traces`.
    Attribute EXPORT_SIGNAL = "huatuo.export.signal", "string";
    /// Log records and spans that failed to export and were lost, per signal and cause (see `huatuo.drop.cause`).
    Metric EXPORT_DROPPED = "huatuo.export.dropped", "counter {record}";
    /// Log records and spans written to the on-disk spool because the collector could not take them (or older ones were still waiting), per signal.
    Metric EXPORT_SPOOLED = "huatuo.export.spooled", "counter {record}";
    /// Spooled log records and spans delivered by the replay, per signal.
    Metric EXPORT_REPLAYED = "huatuo.export.replayed", "counter {record}";
    /// Bytes the on-disk spool holds now, all signals together.
    Metric EXPORT_SPOOL_USAGE = "huatuo.export.spool.usage", "updowncounter By";
    /// Name of a BPF program of the agent (the C function name, e.g. `runqlat_switch_btf`).
    Attribute BPF_PROGRAM_NAME = "huatuo.bpf.program.name", "string";
    /// Times the kernel ran an attached BPF program, per tracer and program. Only exported while the kernel keeps BPF statistics (`kernel.bpf_stats_enabled`, see `agent.bpf_stats`).
    Metric BPF_PROGRAM_RUNS = "huatuo.bpf.program.runs", "counter {run}";
    /// Time the kernel spent running an attached BPF program, per tracer and program; divided by `huatuo.bpf.program.runs` it is the cost per run. Only exported while the kernel keeps BPF statistics.
    Metric BPF_PROGRAM_RUN_TIME = "huatuo.bpf.program.run_time", "counter s";
    /// A diagnostic log line of the agent itself, sent when `agent.self_telemetry` is on.
    Event AGENT_LOG = "huatuo.agent.log", "event";
}
