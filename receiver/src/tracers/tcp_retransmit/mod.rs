//! `tcp_retransmit`: TCP segments and SYN-ACKs the kernel sends again (`tcp:tcp_retransmit_skb`,
//! `tcp:tcp_retransmit_synack`).
//!
//! Every retransmit is counted in the kernel by kind, reason, TCP state and address family (exact,
//! whatever the rate limit); at most `max_events_per_second` become log events, the rest are
//! counted as `rate_limited`. Retransmits come in storms when a path or a peer fails, which is
//! when the agent must cost least.

mod decode;

use crate::framework::{
    event_tracer, take_map, EventTracer, KernelCounters, RunError, TracepointHook, TracerContext,
};
use crate::kernel::BootClock;
use crate::telemetry::{Event, Telemetry};
use anyhow::Context as _;
use aya::maps::PerCpuArray;
use aya::{Ebpf, EbpfLoader};
use huatuo_config::{Config, TcpRetransmitConfig};
use huatuo_ebpf::tcp_retransmit::{self as abi, CountKey, TcpRetransmitEvent};
use huatuo_semconv::net as names;
use std::sync::Arc;

pub const NAME: &str = "tcp_retransmit";

/// Segments and SYN-ACKs; the `tp_btf` names are the tracepoints'.
const HOOKS: &[TracepointHook] = &[
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

event_tracer!(TcpRetransmit);

impl EventTracer for TcpRetransmit {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = HOOKS;
    type Section = TcpRetransmitConfig;
    type Record = TcpRetransmitEvent;

    fn section(config: &Config) -> &TcpRetransmitConfig {
        &config.tracers.tcp_retransmit
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

    /// `EbpfLoader` parses the kernel's BTF for CO-RE relocation and frees it here.
    fn load(&self, ctx: &TracerContext) -> Result<Ebpf, RunError> {
        let config = &ctx.config.tracers.tcp_retransmit;
        let per_cpu = ctx.kernel.per_cpu_rate(config.max_events_per_second);
        EbpfLoader::new()
            .override_global(huatuo_ebpf::GLOBAL_EVENTS_PER_CPU_PER_SEC, &per_cpu, true)
            .map_max_entries(huatuo_ebpf::EVENTS_MAP, config.ring_buffer_kib.bytes())
            .load(huatuo_ebpf::TCP_RETRANSMIT)
            .context("loading the tcp_retransmit BPF object")
            .map_err(RunError::Failed)
    }

    fn start<'a>(
        &'a self,
        ebpf: &mut Ebpf,
        _ctx: &'a TracerContext,
    ) -> anyhow::Result<impl FnMut(TcpRetransmitEvent) -> Event + Send + 'a> {
        let by_key: PerCpuArray<_, abi::RetransmitCounts> =
            PerCpuArray::try_from(take_map(ebpf, abi::COUNTS_MAP)?)?;
        self.counts.attach(move || Ok(abi::read_counts(&by_key)?));
        let clock = BootClock::now();
        Ok(move |raw: TcpRetransmitEvent| decode::to_event(&raw, clock))
    }

    fn stop(&self) {
        self.counts.detach();
    }
}
