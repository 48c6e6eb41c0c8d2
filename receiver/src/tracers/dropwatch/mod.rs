//! `dropwatch`: kernel packet drops (`skb:kfree_skb`).
//!
//! Every drop is counted in the kernel by reason and protocol (exact, whatever the filter or rate
//! limit); drops matching the protocol filter become log events, at most
//! `max_events_per_second`; the rest are counted as `rate_limited`.

mod decode;

use crate::framework::{
    read_program_stats, take_map, KernelCounters, RunError, TracepointHook, Tracer, TracerContext,
    TracerKind, Unsupported,
};
use crate::kernel::{BootClock, KernelEnv};
use crate::ksyms::KernelSymbols;
use crate::telemetry::Telemetry;
use crate::tracers::net;
use anyhow::Context as _;
use aya::maps::{MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use aya::{Ebpf, EbpfLoader};
use decode::ReasonNames;
use futures::future::BoxFuture;
use huatuo_config::{Config, ProtocolFilter};
use huatuo_ebpf::dropwatch::{self as abi, DropCountKey};
use huatuo_semconv::net as names;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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

impl Tracer for Dropwatch {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> TracerKind {
        TracerKind::Event
    }

    fn enabled(&self, config: &Config) -> bool {
        config.tracers.dropwatch.enabled
    }

    fn restart_backoff(&self, config: &Config) -> Duration {
        Duration::from_secs(config.tracers.dropwatch.restart_backoff_secs)
    }

    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        HOOK.probe(kernel)
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

    fn run(&self, ctx: TracerContext) -> BoxFuture<'static, Result<(), RunError>> {
        let counts = self.counts.clone();
        let reasons = self.reasons.clone();
        Box::pin(async move {
            let reasons = reasons.get_or_init(|| load_reason_names(&ctx.kernel));
            let mut ebpf = load(&ctx)?;
            let (attach, program) = HOOK.attach(&mut ebpf, &ctx.kernel)?;
            tracing::info!(tracer = NAME, attach, "attached");

            let (ring, by_reason, by_key, stats) = take_maps(&mut ebpf)?;
            counts.attach(move || Ok(abi::read_counts(&by_reason, &by_key)?));
            ctx.stats
                .kernel
                .attach(move || read_program_stats(&stats, program.as_fd()));

            let symbols = KernelSymbols::load()
                .inspect_err(|e| tracing::warn!(tracer = NAME, error = %e, "drop locations stay unsymbolized"))
                .ok();
            let decode_ctx = decode::Context {
                reasons,
                symbols: symbols.as_ref(),
                clock: BootClock::now(),
            };
            let result =
                crate::ringbuf::drain(ring, &ctx.cancel, |bytes| match decode::parse(bytes) {
                    Ok(raw) => {
                        ctx.stats.record_received();
                        ctx.telemetry.emit(decode::to_event(&raw, &decode_ctx));
                    }
                    Err(e) => {
                        ctx.stats.decode_error();
                        tracing::warn!(tracer = NAME, error = %e, "undecodable record");
                    }
                })
                .await;
            // Keep the final kernel counts before the maps (and programs) go away with `ebpf`.
            counts.detach();
            ctx.stats.kernel.detach();
            drop(ebpf);
            result.map_err(RunError::Failed)
        })
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

/// Loads the object. `EbpfLoader::new` parses the kernel's BTF for CO-RE relocation (~15 MiB);
/// it is freed when the loader goes out of scope here, before anything else parses it again.
fn load(ctx: &TracerContext) -> Result<Ebpf, RunError> {
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
        .map_max_entries(huatuo_ebpf::EVENTS_MAP, config.ring_buffer_kib * 1024)
        .load(huatuo_ebpf::DROPWATCH)
        .context("loading the dropwatch BPF object")
        .map_err(RunError::Failed)
}

type Maps = (
    RingBuf<MapData>,
    PerCpuArray<MapData, abi::DropReasonCounts>,
    PerCpuHashMap<MapData, DropCountKey, u64>,
    PerCpuArray<MapData, u64>,
);

fn take_maps(ebpf: &mut Ebpf) -> anyhow::Result<Maps> {
    let mut take = |name: &str| take_map(ebpf, name);
    Ok((
        RingBuf::try_from(take(huatuo_ebpf::EVENTS_MAP)?)?,
        PerCpuArray::try_from(take(abi::DROP_COUNTS_BY_REASON_MAP)?)?,
        PerCpuHashMap::try_from(take(abi::DROP_COUNTS_MAP)?)?,
        PerCpuArray::try_from(take(huatuo_ebpf::STATS_MAP)?)?,
    ))
}
