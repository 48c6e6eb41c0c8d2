//! `softirq`: how long softirq vectors wait on a CPU between being raised and running
//! (`irq:softirq_raise` to `irq:softirq_entry`), for the configured vectors.
//!
//! Every wait is counted in the kernel in a log2 histogram of microseconds, exported as the
//! `huatuo.softirq.latency` histogram by vector (and CPU with `per_cpu`); a wait over the
//! threshold is also a log event (and a span with `spans`) with the CPU and the task that was
//! running, at most `max_events_per_second`, the rest counted as `rate_limited`.

mod decode;

use crate::framework::{
    event_tracer, take_map, EventTracer, KernelHistogram, RunError, TracepointHook, TracerContext,
};
use crate::kernel::BootClock;
use crate::telemetry::{Event, Telemetry};
use anyhow::Context as _;
use aya::maps::PerCpuArray;
use aya::{Ebpf, EbpfLoader};
use huatuo_config::{Config, SoftirqConfig};
use huatuo_ebpf::softirq::{self as abi, SoftirqEvent};
use huatuo_semconv::sched as names;
use opentelemetry::KeyValue;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "softirq";

/// Buckets of 1 µs up to 2^19 µs (about half a second); longer waits land in the last one.
const HISTOGRAM_SLOTS: usize = 20;

/// How often the kernel's counts are folded into the exported histogram: a bound on how stale
/// an export can be.
const FOLD_EVERY: Duration = Duration::from_secs(1);

const HOOKS: &[TracepointHook] = &[
    TracepointHook {
        tracer: NAME,
        prog_btf: abi::PROG_RAISE_BTF,
        tp_btf_name: abi::TRACEPOINT_RAISE,
        prog_tracepoint: abi::PROG_RAISE_TRACEPOINT,
        category: abi::TRACEPOINT_CATEGORY,
        name: abi::TRACEPOINT_RAISE,
    },
    TracepointHook {
        tracer: NAME,
        prog_btf: abi::PROG_ENTRY_BTF,
        tp_btf_name: abi::TRACEPOINT_ENTRY,
        prog_tracepoint: abi::PROG_ENTRY_TRACEPOINT,
        category: abi::TRACEPOINT_CATEGORY,
        name: abi::TRACEPOINT_ENTRY,
    },
];

pub struct Softirq {
    latency: Arc<KernelHistogram>,
}

impl Default for Softirq {
    fn default() -> Self {
        Self {
            latency: KernelHistogram::new(
                names::SOFTIRQ_LATENCY,
                "Time from a softirq vector's raise to its handler's start on a CPU, counted in \
                 the kernel",
                "us",
                HISTOGRAM_SLOTS,
                |row| {
                    vec![KeyValue::new(
                        names::SOFTIRQ_VECTOR,
                        abi::vector_name(row).into_owned(),
                    )]
                },
            ),
        }
    }
}

event_tracer!(Softirq);

/// Bit n set for each configured vector n.
fn vector_mask(config: &SoftirqConfig) -> u32 {
    config
        .vectors
        .iter()
        .fold(0, |mask, vector| mask | 1 << vector.number())
}

impl EventTracer for Softirq {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = HOOKS;
    type Section = SoftirqConfig;
    type Record = SoftirqEvent;

    fn section(config: &Config) -> &SoftirqConfig {
        &config.tracers.softirq
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        self.latency.register(&telemetry.meter);
    }

    fn load(&self, ctx: &TracerContext) -> Result<Ebpf, RunError> {
        let config = &ctx.config.tracers.softirq;
        let per_cpu = ctx.kernel.per_cpu_rate(config.max_events_per_second);
        let threshold_ns = config.latency_threshold_us.saturating_mul(1000);
        EbpfLoader::new()
            .override_global(huatuo_ebpf::GLOBAL_EVENTS_PER_CPU_PER_SEC, &per_cpu, true)
            .override_global(abi::GLOBAL_WATCHED_VECTORS, &vector_mask(config), true)
            .override_global(abi::GLOBAL_LATENCY_THRESHOLD_NS, &threshold_ns, true)
            .map_max_entries(huatuo_ebpf::EVENTS_MAP, config.ring_buffer_kib.bytes())
            .load(huatuo_ebpf::SOFTIRQ)
            .context("loading the softirq BPF object")
            .map_err(RunError::Failed)
    }

    fn start<'a>(
        &'a self,
        ebpf: &mut Ebpf,
        ctx: &'a TracerContext,
    ) -> anyhow::Result<impl FnMut(SoftirqEvent) -> Event + Send + 'a> {
        let config = &ctx.config.tracers.softirq;
        let map = PerCpuArray::try_from(take_map(ebpf, abi::LATENCY_MAP)?)?;
        let rows = abi::VECTOR_NAMES.len() as u32;
        self.latency
            .attach(map, rows, config.per_cpu, FOLD_EVERY, ctx.cancel.clone());
        let clock = BootClock::now();
        let spans = config.spans;
        Ok(move |raw: SoftirqEvent| decode::to_event(&raw, clock, spans))
    }

    fn stop(&self) {
        self.latency.detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huatuo_config::SoftirqVector;

    #[test]
    fn configured_vectors_become_the_kernel_mask() {
        let config = SoftirqConfig::default();
        assert_eq!(vector_mask(&config), 1 << 3 | 1 << 2);
        let none = SoftirqConfig {
            vectors: vec![],
            ..config
        };
        assert_eq!(vector_mask(&none), 0);
        let rcu = SoftirqConfig {
            vectors: vec![SoftirqVector::Rcu, SoftirqVector::Rcu],
            ..none
        };
        assert_eq!(vector_mask(&rcu), 1 << 9);
    }
}
