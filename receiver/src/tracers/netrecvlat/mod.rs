//! `netrecvlat`: how long received TCP packets take from the kernel's receive stamp to entering
//! the stack (`net:netif_receive_skb`), to TCP processing on their established socket
//! (`tcp:tcp_probe`) and to the copy to the reading process (`skb:skb_copy_datagram_iovec`).
//!
//! Every measured packet is counted in the kernel in a log2 histogram per stage; packets over
//! their stage's threshold become log events (and spans when `spans = true`), at most
//! `max_events_per_second`, the rest counted as `rate_limited`. Packets that cannot be measured
//! (no stamp, a stepped wall clock) are counted by cause, never reported with a made-up latency.
//!
//! The kernel stamps received packets (`skb->tstamp`, CLOCK_REALTIME) only while some socket asks
//! for RX software timestamps, so the tracer holds one while it runs (`enable_rx_timestamps`).
//! Caveats: the stamp is taken when the driver hands the packet to the stack (for loopback, when
//! it is queued to the backlog), and IP delivery re-stamps packets that carried a sender's
//! delivery time, so later stages may count from there; the TCP stage sees only established
//! sockets; a packet read in several calls is measured at each.

mod clock;
mod decode;

use crate::framework::{
    event_tracer, take_map, EventTracer, KernelCounters, KernelHistogram, RunError, TracepointHook,
    TracerContext,
};
use crate::kernel::BootClock;
use crate::telemetry::{Event, Telemetry};
use anyhow::Context as _;
use aya::maps::{Array, PerCpuArray};
use aya::{Ebpf, EbpfLoader};
use huatuo_config::{Config, NetrecvlatConfig};
use huatuo_ebpf::netrecvlat::{self as abi, NetrecvlatEvent, SkipCause, Stage, STAGES};
use huatuo_semconv::net as names;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "netrecvlat";

/// Exported buckets of the latency histogram, in µs: up to 2^23 µs (8.4 s), larger ones beyond.
const HISTOGRAM_SLOTS: usize = 24;

const fn hook(stage: usize) -> TracepointHook {
    let (category, name, prog_btf, prog_tracepoint) = abi::HOOKS[stage];
    TracepointHook {
        tracer: NAME,
        prog_btf,
        tp_btf_name: name,
        prog_tracepoint,
        category,
        name,
    }
}

const HOOKS: &[TracepointHook] = &[hook(0), hook(1), hook(2)];

pub struct Netrecvlat {
    latency: Arc<KernelHistogram>,
    skipped: Arc<KernelCounters<(Stage, SkipCause)>>,
}

impl Default for Netrecvlat {
    fn default() -> Self {
        Self {
            latency: KernelHistogram::new(
                names::NET_RX_LATENCY_DURATION,
                "Time from the kernel's receive stamp of each TCP packet to each stage of the \
                 receive path, counted in the kernel by stage",
                "us",
                HISTOGRAM_SLOTS,
                decode::histogram_row_attributes,
            ),
            skipped: Arc::default(),
        }
    }
}

event_tracer!(Netrecvlat);

/// Per-stage thresholds in ns, in [`Stage`] order.
fn threshold_ns(config: &NetrecvlatConfig) -> [u64; STAGES] {
    [
        config.netif_threshold_us,
        config.tcp_threshold_us,
        config.user_copy_threshold_us,
    ]
    .map(|us| u64::from(us.get()) * 1_000)
}

impl EventTracer for Netrecvlat {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = HOOKS;
    type Section = NetrecvlatConfig;
    type Record = NetrecvlatEvent;

    fn section(config: &Config) -> &NetrecvlatConfig {
        &config.tracers.netrecvlat
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        self.latency.register(&telemetry.meter);
        let skipped = self.skipped.clone();
        telemetry
            .meter
            .u64_observable_counter(names::NET_RX_LATENCY_SKIPPED)
            .with_description(
                "Received TCP packets whose latency could not be taken, by stage and reason, \
                 counted in the kernel",
            )
            .with_unit("{packet}")
            .with_callback(move |observer| {
                for ((stage, cause), count) in skipped.snapshot() {
                    observer.observe(count, &decode::skip_attributes(stage, cause));
                }
            })
            .build();
    }

    /// Sets the thresholds and the rate limit, and gives the programs the wall-clock offset
    /// before they attach (without it every stamp would look like a clock step).
    fn load(&self, ctx: &TracerContext) -> Result<Ebpf, RunError> {
        let config = &ctx.config.tracers.netrecvlat;
        let per_cpu = ctx.kernel.per_cpu_rate(config.max_events_per_second);
        let mut ebpf = EbpfLoader::new()
            .override_global(huatuo_ebpf::GLOBAL_EVENTS_PER_CPU_PER_SEC, &per_cpu, true)
            .override_global(abi::GLOBAL_THRESHOLD_NS, &threshold_ns(config), true)
            .map_max_entries(huatuo_ebpf::EVENTS_MAP, config.ring_buffer_kib.bytes())
            .load(huatuo_ebpf::NETRECVLAT)
            .context("loading the netrecvlat BPF object")?;
        let mut wall_clock: Array<_, abi::WallClock> = Array::try_from(
            ebpf.map_mut(abi::WALL_CLOCK_MAP)
                .context("map wall_clock missing from the object")?,
        )
        .map_err(anyhow::Error::from)?;
        clock::write(&mut wall_clock, None)?;
        Ok(ebpf)
    }

    fn start<'a>(
        &'a self,
        ebpf: &mut Ebpf,
        ctx: &'a TracerContext,
    ) -> anyhow::Result<impl FnMut(NetrecvlatEvent) -> Event + Send + 'a> {
        let config = &ctx.config.tracers.netrecvlat;
        let rx_timestamps = if config.enable_rx_timestamps {
            match abi::enable_rx_timestamps() {
                Ok(socket) => Some(socket),
                Err(e) => {
                    tracing::warn!(tracer = NAME, error = %e, "cannot enable RX software timestamps; only packets stamped for other programs are measured");
                    None
                }
            }
        } else {
            None
        };

        let wall_clock: Array<_, abi::WallClock> =
            Array::try_from(take_map(ebpf, abi::WALL_CLOCK_MAP)?)?;
        let current = wall_clock.get(&0, 0)?;
        clock::keep_current(wall_clock, current, ctx.cancel.clone());

        let skipped: PerCpuArray<_, abi::Skips> =
            PerCpuArray::try_from(take_map(ebpf, abi::SKIPPED_MAP)?)?;
        self.skipped.attach(move || Ok(abi::read_skips(&skipped)?));
        self.latency.attach(
            PerCpuArray::try_from(take_map(ebpf, abi::LATENCY_HIST_MAP)?)?,
            STAGES as u32,
            false,
            Duration::from_secs(ctx.config.exporters.metrics_interval_secs),
            ctx.cancel.clone(),
        );

        let mapping = decode::Mapping {
            clock: BootClock::now(),
            threshold_ns: threshold_ns(config),
            spans: config.spans,
        };
        Ok(move |raw: NetrecvlatEvent| {
            // Stamping stays on for as long as records are being read.
            let _ = &rx_timestamps;
            mapping.to_event(&raw)
        })
    }

    fn stop(&self) {
        self.skipped.detach();
        self.latency.detach();
    }
}
