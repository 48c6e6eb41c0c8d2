//! `oom`: every task the OOM killer chooses (`oom:mark_victim`), as one log event with the
//! victim, the task whose allocation triggered the kill, the victim's memory cgroup (path, limit,
//! usage, events) and the host's memory; and a counter of kills by memory cgroup.
//!
//! No rate limit: the kernel kills one task per OOM, and records are rare.

mod decode;
mod snapshot;

use crate::framework::{
    read_program_stats, take_map, RunError, TracepointHook, Tracer, TracerContext, TracerKind,
    Unsupported,
};
use crate::kernel::{BootClock, KernelEnv};
use crate::telemetry::Telemetry;
use anyhow::Context as _;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::{Ebpf, EbpfLoader};
use futures::future::BoxFuture;
use huatuo_config::Config;
use huatuo_ebpf::oom as abi;
use huatuo_semconv::memory as names;
use opentelemetry::metrics::{Counter, Meter};
use snapshot::{MemoryHierarchy, Snapshotter};
use std::os::fd::AsFd;
use std::sync::OnceLock;
use std::time::Duration;

pub const NAME: &str = "oom";

const HOOK: TracepointHook = TracepointHook {
    tracer: NAME,
    prog_btf: abi::PROG_BTF,
    tp_btf_name: abi::TP_BTF_NAME,
    prog_tracepoint: abi::PROG_TRACEPOINT,
    category: abi::TRACEPOINT_CATEGORY,
    name: abi::TRACEPOINT_NAME,
};

#[derive(Default)]
pub struct Oom {
    kills: OnceLock<Counter<u64>>,
}

impl Oom {
    fn kills(&self, meter: &Meter) -> Counter<u64> {
        self.kills
            .get_or_init(|| {
                meter
                    .u64_counter(names::OOM_KILLS)
                    .with_description("OOM kills, by the victim's memory cgroup")
                    .with_unit("{kill}")
                    .build()
            })
            .clone()
    }
}

impl Tracer for Oom {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> TracerKind {
        TracerKind::Event
    }

    fn enabled(&self, config: &Config) -> bool {
        config.tracers.oom.enabled
    }

    fn restart_backoff(&self, config: &Config) -> Duration {
        Duration::from_secs(config.tracers.oom.restart_backoff_secs)
    }

    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        HOOK.probe(kernel)
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        self.kills(&telemetry.meter);
    }

    fn run(&self, ctx: TracerContext) -> BoxFuture<'static, Result<(), RunError>> {
        let kills = self.kills(&ctx.telemetry.meter);
        Box::pin(async move {
            let mut ebpf = load()?;
            let (attach, program) = HOOK.attach(&mut ebpf, &ctx.kernel)?;
            tracing::info!(tracer = NAME, attach, "attached");

            let (ring, stats) = take_maps(&mut ebpf)?;
            ctx.stats
                .kernel
                .attach(move || read_program_stats(&stats, program.as_fd()));

            let hierarchy = MemoryHierarchy::detect();
            if hierarchy.is_none() {
                tracing::warn!(
                    tracer = NAME,
                    "no memory cgroup controller mounted: kills carry no memory cgroup"
                );
            }
            let snapshots = Snapshotter::new(hierarchy);
            let clock = BootClock::now();
            let result =
                crate::ringbuf::drain(ring, &ctx.cancel, |bytes| match decode::parse(bytes) {
                    Ok(raw) => {
                        ctx.stats.record_received();
                        let snapshot = snapshots.take(&raw);
                        kills.add(1, &decode::counter_attributes(&snapshot));
                        ctx.telemetry.emit(decode::to_event(&raw, &snapshot, clock));
                    }
                    Err(e) => {
                        ctx.stats.decode_error();
                        tracing::warn!(tracer = NAME, error = %e, "undecodable record");
                    }
                })
                .await;
            // Keep the final loss counts before the maps (and programs) go away with `ebpf`.
            ctx.stats.kernel.detach();
            drop(ebpf);
            result.map_err(RunError::Failed)
        })
    }
}

fn load() -> Result<Ebpf, RunError> {
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page_shift: u32 = u64::try_from(page_size)
        .ok()
        .filter(|size| size.is_power_of_two())
        .context("sysconf(_SC_PAGESIZE) returned no page size")?
        .trailing_zeros();
    EbpfLoader::new()
        .override_global(abi::GLOBAL_PAGE_SHIFT, &page_shift, true)
        .load(huatuo_ebpf::OOM)
        .context("loading the oom BPF object")
        .map_err(RunError::Failed)
}

fn take_maps(ebpf: &mut Ebpf) -> anyhow::Result<(RingBuf<MapData>, PerCpuArray<MapData, u64>)> {
    Ok((
        RingBuf::try_from(take_map(ebpf, huatuo_ebpf::EVENTS_MAP)?)?,
        PerCpuArray::try_from(take_map(ebpf, huatuo_ebpf::STATS_MAP)?)?,
    ))
}
