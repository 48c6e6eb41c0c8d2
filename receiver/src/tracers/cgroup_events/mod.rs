//! `cgroup_events`: keeps attribution fresh. Cgroups created and removed in the unified
//! hierarchy (`cgroup:cgroup_mkdir`, `cgroup:cgroup_rmdir`) are added to and evicted from the
//! attribution cache as they happen, so a new container's first record resolves without a
//! search of cgroupfs and a removed container's entry goes.
//!
//! Tracepoints rather than inotify: one program sees every directory of the hierarchy, gets the
//! id and path together, and cannot miss a directory created before a watch on its parent was
//! added; tracepoints (classic or tp_btf) work where kprobes do not. Without it (disabled,
//! unsupported, or records lost) attribution still works: an unknown id is searched for once.
//!
//! It emits no telemetry of its own; its record and loss counts appear in the tracer status
//! metrics like every tracer's.

use crate::framework::{
    drain_records, read_programs_stats, take_map, RunError, TracepointHook, Tracer, TracerContext,
    TracerKind, Unsupported,
};
use crate::kernel::KernelEnv;
use anyhow::Context as _;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::EbpfLoader;
use futures::future::BoxFuture;
use huatuo_config::Config;
use huatuo_ebpf::cgroup_events::{self as abi, CgroupEvent};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "cgroup_events";

const RESTART_BACKOFF: Duration = Duration::from_secs(10);

const HOOKS: [TracepointHook; 2] = [
    TracepointHook {
        tracer: NAME,
        prog_btf: abi::MKDIR_PROG_BTF,
        tp_btf_name: abi::MKDIR_TRACEPOINT,
        prog_tracepoint: abi::MKDIR_PROG_TRACEPOINT,
        category: abi::TRACEPOINT_CATEGORY,
        name: abi::MKDIR_TRACEPOINT,
    },
    TracepointHook {
        tracer: NAME,
        prog_btf: abi::RMDIR_PROG_BTF,
        tp_btf_name: abi::RMDIR_TRACEPOINT,
        prog_tracepoint: abi::RMDIR_PROG_TRACEPOINT,
        category: abi::TRACEPOINT_CATEGORY,
        name: abi::RMDIR_TRACEPOINT,
    },
];

#[derive(Default)]
pub struct CgroupEvents;

impl Tracer for CgroupEvents {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> TracerKind {
        TracerKind::Event
    }

    fn enabled(&self, config: &Config) -> bool {
        config.attribution.watch_cgroups
    }

    fn restart_backoff(&self, _config: &Config) -> Duration {
        RESTART_BACKOFF
    }

    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        HOOKS.iter().try_for_each(|hook| hook.probe(kernel))
    }

    fn run(self: Arc<Self>, ctx: TracerContext) -> BoxFuture<'static, Result<(), RunError>> {
        Box::pin(run(ctx))
    }
}

async fn run(ctx: TracerContext) -> Result<(), RunError> {
    let loading = ctx.kernel.load_gate.lock().await;
    let mut ebpf = EbpfLoader::new()
        .load(huatuo_ebpf::CGROUP_EVENTS)
        .context("loading the cgroup_events BPF object")?;
    let mut modes = Vec::new();
    let mut programs = Vec::new();
    for hook in &HOOKS {
        let (mode, program) = hook.attach(&mut ebpf, &ctx.kernel)?;
        modes.push(mode);
        programs.push(program);
    }
    let ring = RingBuf::try_from(take_map(&mut ebpf, huatuo_ebpf::EVENTS_MAP)?)
        .map_err(anyhow::Error::from)?;
    let stats: PerCpuArray<MapData, u64> =
        PerCpuArray::try_from(take_map(&mut ebpf, huatuo_ebpf::STATS_MAP)?)
            .map_err(anyhow::Error::from)?;
    ctx.stats.kernel.attach(move || {
        let fds: Vec<BorrowedFd<'_>> = programs.iter().map(|fd| fd.as_fd()).collect();
        read_programs_stats(&stats, &fds)
    });
    drop(loading);
    tracing::info!(tracer = NAME, attach = modes.join(","), "attached");
    let attribution = &ctx.telemetry.attribution;
    let result = drain_records(NAME, ring, &ctx.cancel, &ctx.stats, |e: CgroupEvent| {
        let path = e.path();
        match e.kind {
            // A cut path would name another cgroup; the id is searched for when a record
            // carries it.
            abi::KIND_MKDIR if !e.is_truncated() => attribution.cgroup_created(e.id, &path),
            abi::KIND_RMDIR => attribution.cgroup_removed(e.id, &path),
            _ => {}
        }
    })
    .await;
    ctx.stats.kernel.detach();
    drop(ebpf);
    result.map_err(RunError::Failed)
}
