//! `dropwatch`: kernel packet drops (`skb:kfree_skb`).
//!
//! Every drop is counted in the kernel by reason and protocol (exact, whatever the filter or rate
//! limit); drops matching the protocol filter become log events, at most
//! `max_events_per_second`; the rest are counted as `rate_limited`.

mod decode;

use crate::framework::{
    event_tracer, take_map, EventTracer, KernelCounters, RunError, TracepointHook, TracerContext,
};
use crate::kernel::{BootClock, KernelEnv};
use crate::ksyms::KernelSymbols;
use crate::telemetry::{Event, Telemetry};
use crate::tracers::net;
use anyhow::Context as _;
use aya::maps::{PerCpuArray, PerCpuHashMap};
use aya::{Ebpf, EbpfLoader};
use decode::ReasonNames;
use huatuo_config::{Config, DropwatchConfig, ProtocolFilter};
use huatuo_ebpf::dropwatch::{self as abi, DropCountKey, DropwatchEvent};
use huatuo_semconv::net as names;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

pub const NAME: &str = "dropwatch";

const HOOK: TracepointHook = TracepointHook {
    tracer: NAME,
    prog_btf: abi::PROG_BTF,
    tp_btf_name: abi::TP_BTF_NAME,
    prog_tracepoint: abi::PROG_TRACEPOINT,
    category: abi::TRACEPOINT_CATEGORY,
    name: abi::TRACEPOINT_NAME,
};

#[derive(Default)]
pub struct Dropwatch {
    counts: Arc<KernelCounters<DropCountKey>>,
    reasons: Arc<OnceLock<ReasonNames>>,
}

event_tracer!(Dropwatch);

impl EventTracer for Dropwatch {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = &[HOOK];
    type Section = DropwatchConfig;
    type Record = DropwatchEvent;

    fn section(config: &Config) -> &DropwatchConfig {
        &config.tracers.dropwatch
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        let counts = self.counts.clone();
        let reasons = self.reasons.clone();
        telemetry
            .meter
            .u64_observable_counter(names::SKB_DROPS)
            .with_description(
                "Packets dropped by the kernel, counted in the kernel by reason and protocol",
            )
            .with_unit("{packet}")
            .with_callback(move |observer| {
                let Some(reasons) = reasons.get() else { return };
                // Several kernel keys can share one exported series (every unlisted protocol
                // is `other`), and the SDK keeps only one observation per series: sum first.
                let mut series: HashMap<(String, &str, &str), u64> = HashMap::new();
                for (key, count) in counts.snapshot() {
                    let attributes = (
                        reasons.name(key.reason, true),
                        net::network_type_name(key.l3_proto),
                        net::transport_name(key.l4_proto),
                    );
                    *series.entry(attributes).or_default() += count;
                }
                for ((reason, network_type, transport), count) in series {
                    observer.observe(
                        count,
                        &[
                            KeyValue::new(names::SKB_DROP_REASON, reason),
                            KeyValue::new(names::NETWORK_TYPE, network_type),
                            KeyValue::new(names::NETWORK_TRANSPORT, transport),
                        ],
                    );
                }
            })
            .build();
    }

    /// Loads the object. `EbpfLoader::new` parses the kernel's BTF for CO-RE relocation
    /// (~15 MiB); it is freed when the loader goes out of scope here, before anything else parses
    /// it again.
    fn load(&self, ctx: &TracerContext) -> Result<Ebpf, RunError> {
        let config = &ctx.config.tracers.dropwatch;
        let filter_l4_proto: u8 = match config.protocol_filter {
            ProtocolFilter::All => 0,
            ProtocolFilter::Tcp => 6,
            ProtocolFilter::Udp => 17,
        };
        let per_cpu = ctx.kernel.per_cpu_rate(config.max_events_per_second);
        EbpfLoader::new()
            .override_global(abi::GLOBAL_FILTER_L4_PROTO, &filter_l4_proto, true)
            .override_global(huatuo_ebpf::GLOBAL_EVENTS_PER_CPU_PER_SEC, &per_cpu, true)
            .map_max_entries(huatuo_ebpf::EVENTS_MAP, config.ring_buffer_kib.bytes())
            .load(huatuo_ebpf::DROPWATCH)
            .context("loading the dropwatch BPF object")
            .map_err(RunError::Failed)
    }

    fn start<'a>(
        &'a self,
        ebpf: &mut Ebpf,
        ctx: &'a TracerContext,
    ) -> anyhow::Result<impl FnMut(DropwatchEvent) -> Event + Send + 'a> {
        let by_reason: PerCpuArray<_, abi::DropReasonCounts> =
            PerCpuArray::try_from(take_map(ebpf, abi::DROP_COUNTS_BY_REASON_MAP)?)?;
        let by_key = PerCpuHashMap::try_from(take_map(ebpf, abi::DROP_COUNTS_MAP)?)?;
        self.counts
            .attach(move || Ok(abi::read_counts(&by_reason, &by_key)?));

        let symbols = KernelSymbols::load()
            .inspect_err(
                |e| tracing::warn!(tracer = NAME, error = %e, "drop locations stay unsymbolized"),
            )
            .ok();
        let reasons = self.reasons.get_or_init(|| load_reason_names(&ctx.kernel));
        let clock = BootClock::now();
        Ok(move |raw: DropwatchEvent| {
            let decode_ctx = decode::Context {
                reasons,
                symbols: symbols.as_ref(),
                clock,
            };
            decode::to_event(&raw, &decode_ctx)
        })
    }

    fn stop(&self) {
        self.counts.detach();
    }
}

fn load_reason_names(kernel: &KernelEnv) -> ReasonNames {
    match kernel
        .load_btf()
        .map(|btf| btf.enum_variants("skb_drop_reason"))
    {
        Ok(Some(variants)) => ReasonNames::from_variants(variants),
        Ok(None) => {
            tracing::warn!(
                tracer = NAME,
                "kernel has no enum skb_drop_reason (before 5.17): reasons are UNKNOWN"
            );
            ReasonNames::default()
        }
        Err(e) => {
            tracing::warn!(
                tracer = NAME,
                error = e,
                "drop reasons are shown as numbers"
            );
            ReasonNames::default()
        }
    }
}
