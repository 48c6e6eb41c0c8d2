//! Block devices: request latency per disk (iolatency).

names! {
    /// Which part of a block request's life is measured: `q2c` from insertion into the queue (`block:block_rq_insert`; the issue, for requests issued directly) to completion, `d2c` from issue to the driver (`block:block_rq_issue`) to completion (`block:block_rq_complete`).
    Attribute DISK_REQUEST_STAGE = "huatuo.disk.request.stage", "string";
    /// Latency of block requests per disk, stage and container of the submitting task (iolatency; host requests in one series per disk). Log2 buckets of microseconds: `le` 1, 2, 4, ... × 10⁻⁶ s.
    Metric DISK_REQUEST_LATENCY = "huatuo.disk.request.latency", "histogram s";
}
