//! `runqlat`: how long runnable tasks wait for a CPU, as a host-wide histogram counted in the
//! kernel (`sched:sched_wakeup`, `sched:sched_wakeup_new`, `sched:sched_switch`) and folded into
//! `huatuo.sched.runqueue.latency` every metric interval.

use crate::framework::{
    metrics_tracer, take_map, KernelHistogram, MetricsTracer, RunError, TracepointHook,
    TracerContext,
};
use anyhow::Context as _;
use aya::maps::PerCpuArray;
use aya::Ebpf;
use huatuo_config::{Config, RunqlatConfig};
use huatuo_ebpf::hist::HIST_SLOTS;
use huatuo_ebpf::runqlat as abi;
use huatuo_semconv::sched as names;
use opentelemetry::KeyValue;
use std::sync::Arc;

pub const NAME: &str = "runqlat";

const HOOKS: &[TracepointHook] = &[
    TracepointHook::named(NAME, abi::TRACEPOINT_CATEGORY, abi::HOOKS[0]),
    TracepointHook::named(NAME, abi::TRACEPOINT_CATEGORY, abi::HOOKS[1]),
    TracepointHook::named(NAME, abi::TRACEPOINT_CATEGORY, abi::HOOKS[2]),
];

/// 2^23 µs ≈ 8.4 s: waits beyond that go to the overflow bucket.
const SLOTS: usize = 24;
const _: () = assert!(SLOTS <= HIST_SLOTS);

pub struct Runqlat {
    latency: Arc<KernelHistogram>,
}

impl Default for Runqlat {
    fn default() -> Self {
        Self {
            latency: KernelHistogram::new(
                names::RUNQUEUE_LATENCY,
                "Time runnable tasks waited for a CPU, host-wide",
                "us",
                SLOTS,
                row_attributes,
            ),
        }
    }
}

/// The one row is the host; per-container rows would carry `container.id` here.
fn row_attributes(row: u32) -> Vec<KeyValue> {
    debug_assert_eq!(row, abi::ROW_HOST);
    Vec::new()
}

metrics_tracer!(Runqlat);

impl MetricsTracer for Runqlat {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = HOOKS;
    type Section = RunqlatConfig;

    fn section(config: &Config) -> &RunqlatConfig {
        &config.tracers.runqlat
    }

    fn register_metrics(&self, telemetry: &crate::telemetry::Telemetry) {
        self.latency.register(&telemetry.meter);
    }

    fn load(&self, _ctx: &TracerContext) -> Result<Ebpf, RunError> {
        Ebpf::load(huatuo_ebpf::RUNQLAT)
            .context("loading the runqlat BPF object")
            .map_err(RunError::Failed)
    }

    fn start(&self, ebpf: &mut Ebpf, ctx: &TracerContext) -> anyhow::Result<()> {
        let map = PerCpuArray::try_from(take_map(ebpf, abi::HIST_MAP)?)?;
        self.latency.attach(
            map,
            abi::ROWS,
            false,
            KernelHistogram::fold_interval(&ctx.config),
            ctx.cancel.clone(),
        );
        Ok(())
    }

    fn stop(&self) {
        self.latency.detach();
    }
}
