//! `hungtask`: every task the kernel's hung-task detector reports (`sched:sched_process_hang`),
//! as one log event with the task, its kernel stack and `kernel.hung_task_timeout_secs`, plus the
//! stacks of every task in state D (backed off, see [`procfs::Backoff`]); and a counter of
//! reports, kept exact in the kernel.
//!
//! No rate limit: the detector reports at most `hung_task_check_count` tasks per check interval.
//! The procfs reads happen on the tracer's own task, synchronously: a report costs one small file,
//! and the host-wide scan happens at most once per back-off window.

mod decode;
mod procfs;

use crate::framework::{
    read_program_stats, take_map, KernelCounters, RunError, TracepointHook, Tracer, TracerContext,
    TracerKind, Unsupported,
};
use crate::kernel::{BootClock, KernelEnv};
use crate::telemetry::Telemetry;
use anyhow::Context as _;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::Ebpf;
use futures::future::BoxFuture;
use huatuo_config::Config;
use huatuo_ebpf::hungtask as abi;
use huatuo_semconv::sched as names;
use procfs::{Backoff, Procfs};
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const NAME: &str = "hungtask";

const HOOK: TracepointHook = TracepointHook {
    tracer: NAME,
    prog_btf: abi::PROG_BTF,
    tp_btf_name: abi::TP_BTF_NAME,
    prog_tracepoint: abi::PROG_TRACEPOINT,
    category: abi::TRACEPOINT_CATEGORY,
    name: abi::TRACEPOINT_NAME,
};

#[derive(Default)]
pub struct Hungtask {
    /// One unlabelled series: the report count carries no per-task labels.
    hangs: Arc<KernelCounters<()>>,
}

impl Tracer for Hungtask {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> TracerKind {
        TracerKind::Event
    }

    fn enabled(&self, config: &Config) -> bool {
        config.tracers.hungtask.enabled
    }

    fn restart_backoff(&self, config: &Config) -> Duration {
        Duration::from_secs(config.tracers.hungtask.restart_backoff_secs)
    }

    /// The tracepoint exists whenever the scheduler does; the detector firing it does not.
    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        HOOK.probe(kernel)?;
        let sysctl = Path::new("/proc").join(procfs::TIMEOUT_SYSCTL);
        if !sysctl.exists() {
            return Err(Unsupported(format!(
                "{} missing: kernel built without CONFIG_DETECT_HUNG_TASK",
                sysctl.display()
            )));
        }
        Ok(())
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        let hangs = self.hangs.clone();
        telemetry
            .meter
            .u64_observable_counter(names::HUNG_TASKS)
            .with_description("Hung-task reports, counted in the kernel")
            .with_unit("{report}")
            .with_callback(move |observer| {
                if let Some(count) = hangs.snapshot().get(&()) {
                    observer.observe(*count, &[]);
                }
            })
            .build();
    }

    fn run(&self, ctx: TracerContext) -> BoxFuture<'static, Result<(), RunError>> {
        let hangs = self.hangs.clone();
        Box::pin(async move {
            let mut ebpf = Ebpf::load(huatuo_ebpf::HUNGTASK)
                .context("loading the hungtask BPF object")
                .map_err(RunError::Failed)?;
            let (attach, program) = HOOK.attach(&mut ebpf, &ctx.kernel)?;
            tracing::info!(tracer = NAME, attach, "attached");

            let (ring, count_map, stats) = take_maps(&mut ebpf)?;
            hangs.attach(move || Ok(HashMap::from([((), abi::read_hangs(&count_map)?)])));
            ctx.stats
                .kernel
                .attach(move || read_program_stats(&stats, program.as_fd()));

            let config = &ctx.config.tracers.hungtask;
            let max_stacks = config.max_blocked_stacks as usize;
            let mut backoff = Backoff::new(Duration::from_secs(config.backoff_secs));
            let procfs = Procfs::default();
            let clock = BootClock::now();
            let result =
                crate::ringbuf::drain(ring, &ctx.cancel, |bytes| match decode::parse(bytes) {
                    Ok(raw) => {
                        ctx.stats.record_received();
                        let snapshot = decode::Snapshot {
                            tgid: if raw.has_task() {
                                None
                            } else {
                                procfs.tgid(raw.tid)
                            },
                            timeout_secs: procfs.timeout_secs(),
                            stack: procfs.stack(raw.tid),
                            blocked: backoff
                                .admit(Instant::now())
                                .map(|skipped| (procfs.blocked(max_stacks), skipped)),
                        };
                        ctx.telemetry.emit(decode::to_event(&raw, snapshot, clock));
                    }
                    Err(e) => {
                        ctx.stats.decode_error();
                        tracing::warn!(tracer = NAME, error = %e, "undecodable record");
                    }
                })
                .await;
            // Keep the final counts before the maps (and programs) go away with `ebpf`.
            hangs.detach();
            ctx.stats.kernel.detach();
            drop(ebpf);
            result.map_err(RunError::Failed)
        })
    }
}

type Maps = (
    RingBuf<MapData>,
    PerCpuArray<MapData, u64>,
    PerCpuArray<MapData, u64>,
);

fn take_maps(ebpf: &mut Ebpf) -> anyhow::Result<Maps> {
    Ok((
        RingBuf::try_from(take_map(ebpf, huatuo_ebpf::EVENTS_MAP)?)?,
        PerCpuArray::try_from(take_map(ebpf, abi::HANGS_MAP)?)?,
        PerCpuArray::try_from(take_map(ebpf, huatuo_ebpf::STATS_MAP)?)?,
    ))
}
