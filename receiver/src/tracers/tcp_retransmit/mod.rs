//! `tcp_retransmit`: TCP segments and SYN-ACKs the kernel sends again (`tcp:tcp_retransmit_skb`,
//! `tcp:tcp_retransmit_synack`).
//!
//! Every retransmit is counted in the kernel by kind, reason, TCP state and address family (exact,
//! whatever the rate limit); at most `max_events_per_second` become log events, the rest are
//! counted as `rate_limited`. Retransmits come in storms when a path or a peer fails, which is
//! when the agent must cost least.

mod decode;

use crate::framework::{
    read_programs_stats, take_map, KernelCounters, RunError, TracepointHook, Tracer, TracerContext,
    TracerKind, Unsupported,
};
use crate::kernel::{BootClock, KernelEnv};
use crate::telemetry::Telemetry;
use anyhow::Context as _;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::{Ebpf, EbpfLoader};
use futures::future::BoxFuture;
use huatuo_config::Config;
use huatuo_ebpf::tcp_retransmit::{self as abi, CountKey, RetransmitCounts};
use huatuo_semconv::net as names;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "tcp_retransmit";

/// Segments and SYN-ACKs; the `tp_btf` names are the tracepoints'.
const HOOKS: [TracepointHook; 2] = [
    TracepointHook {
        tracer: NAME,
        prog_btf: abi::PROG_SKB_BTF,
        tp_btf_name: abi::TRACEPOINT_SKB,
        prog_tracepoint: abi::PROG_SKB_TRACEPOINT,
        category: abi::TRACEPOINT_CATEGORY,
        name: abi::TRACEPOINT_SKB,
    },
    TracepointHook {
        tracer: NAME,
        prog_btf: abi::PROG_SYNACK_BTF,
        tp_btf_name: abi::TRACEPOINT_SYNACK,
        prog_tracepoint: abi::PROG_SYNACK_TRACEPOINT,
        category: abi::TRACEPOINT_CATEGORY,
        name: abi::TRACEPOINT_SYNACK,
    },
];

#[derive(Default)]
pub struct TcpRetransmit {
    counts: Arc<KernelCounters<CountKey>>,
}

impl Tracer for TcpRetransmit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> TracerKind {
        TracerKind::Event
    }

    fn enabled(&self, config: &Config) -> bool {
        config.tracers.tcp_retransmit.enabled
    }

    fn restart_backoff(&self, config: &Config) -> Duration {
        Duration::from_secs(config.tracers.tcp_retransmit.restart_backoff_secs)
    }

    /// Both hooks or nothing: a counter missing SYN-ACKs would silently undercount.
    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        HOOKS.iter().try_for_each(|hook| hook.probe(kernel))
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        let counts = self.counts.clone();
        telemetry
            .meter
            .u64_observable_counter(names::TCP_RETRANSMITS)
            .with_description(
                "TCP segments and SYN-ACKs sent again, counted in the kernel by kind, reason, \
                 TCP state and network type",
            )
            .with_unit("{retransmit}")
            .with_callback(move |observer| {
                // Each kernel key maps to its own attribute set, so no two observations share a
                // series.
                for (key, count) in counts.snapshot() {
                    observer.observe(count, &decode::count_attributes(&key));
                }
            })
            .build();
    }

    fn run(&self, ctx: TracerContext) -> BoxFuture<'static, Result<(), RunError>> {
        let counts = self.counts.clone();
        Box::pin(async move {
            let mut ebpf = load(&ctx)?;
            let (skb_attach, skb_program) = HOOKS[0].attach(&mut ebpf, &ctx.kernel)?;
            let (synack_attach, synack_program) = HOOKS[1].attach(&mut ebpf, &ctx.kernel)?;
            tracing::info!(tracer = NAME, skb_attach, synack_attach, "attached");

            let (ring, by_key, stats) = take_maps(&mut ebpf)?;
            counts.attach(move || Ok(abi::read_counts(&by_key)?));
            ctx.stats.kernel.attach(move || {
                read_programs_stats(&stats, &[skb_program.as_fd(), synack_program.as_fd()])
            });

            let clock = BootClock::now();
            let result =
                crate::ringbuf::drain(ring, &ctx.cancel, |bytes| match decode::parse(bytes) {
                    Ok(raw) => {
                        ctx.stats.record_received();
                        ctx.telemetry.emit(decode::to_event(&raw, clock));
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

/// Loads the object; `EbpfLoader` parses the kernel's BTF for CO-RE relocation and frees it here.
fn load(ctx: &TracerContext) -> Result<Ebpf, RunError> {
    let config = &ctx.config.tracers.tcp_retransmit;
    let per_cpu = ctx.kernel.per_cpu_rate(config.max_events_per_second);
    EbpfLoader::new()
        .override_global(huatuo_ebpf::GLOBAL_EVENTS_PER_CPU_PER_SEC, &per_cpu, true)
        .map_max_entries(huatuo_ebpf::EVENTS_MAP, config.ring_buffer_kib * 1024)
        .load(huatuo_ebpf::TCP_RETRANSMIT)
        .context("loading the tcp_retransmit BPF object")
        .map_err(RunError::Failed)
}

type Maps = (
    RingBuf<MapData>,
    PerCpuArray<MapData, RetransmitCounts>,
    PerCpuArray<MapData, u64>,
);

fn take_maps(ebpf: &mut Ebpf) -> anyhow::Result<Maps> {
    Ok((
        RingBuf::try_from(take_map(ebpf, huatuo_ebpf::EVENTS_MAP)?)?,
        PerCpuArray::try_from(take_map(ebpf, abi::COUNTS_MAP)?)?,
        PerCpuArray::try_from(take_map(ebpf, huatuo_ebpf::STATS_MAP)?)?,
    ))
}
