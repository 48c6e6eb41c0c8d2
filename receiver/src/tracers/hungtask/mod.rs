//! `hungtask`: every task the kernel's hung-task detector reports (`sched:sched_process_hang`),
//! as one log event with the task, its kernel stack and `kernel.hung_task_timeout_secs`, plus the
//! stacks of every task in state D (at most one dump per back-off window); and a counter of
//! reports, kept exact in the kernel.
//!
//! No rate limit: the detector reports at most `hung_task_check_count` tasks per check interval.
//! The procfs reads happen on the tracer's own task, synchronously: a report costs one small file,
//! and the host-wide scan happens at most once per back-off window.

mod decode;

use crate::framework::{
    event_tracer, take_map, Backoff, EventTracer, KernelCounters, RunError, TracepointHook,
    TracerContext, Unsupported,
};
use crate::kernel::{BootClock, KernelEnv};
use crate::procfs::{self, Procfs};
use crate::telemetry::{Event, Telemetry};
use anyhow::Context as _;
use aya::maps::PerCpuArray;
use aya::Ebpf;
use huatuo_config::{Config, HungtaskConfig};
use huatuo_ebpf::hungtask::{self as abi, HungTaskEvent};
use huatuo_semconv::sched as names;
use std::collections::HashMap;
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

event_tracer!(Hungtask);

impl EventTracer for Hungtask {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = &[HOOK];
    type Section = HungtaskConfig;
    type Record = HungTaskEvent;

    fn section(config: &Config) -> &HungtaskConfig {
        &config.tracers.hungtask
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

    fn load(&self, _ctx: &TracerContext) -> Result<Ebpf, RunError> {
        Ebpf::load(huatuo_ebpf::HUNGTASK)
            .context("loading the hungtask BPF object")
            .map_err(RunError::Failed)
    }

    fn start<'a>(
        &'a self,
        ebpf: &mut Ebpf,
        ctx: &'a TracerContext,
    ) -> anyhow::Result<impl FnMut(HungTaskEvent) -> Event + Send + 'a> {
        let count_map = PerCpuArray::try_from(take_map(ebpf, abi::HANGS_MAP)?)?;
        self.hangs
            .attach(move || Ok(HashMap::from([((), abi::read_hangs(&count_map)?)])));

        let config = &ctx.config.tracers.hungtask;
        let max_stacks = config.max_blocked_stacks as usize;
        let mut backoff = Backoff::fixed(Duration::from_secs(config.backoff_secs));
        let procfs = Procfs::default();
        let clock = BootClock::now();
        let unified = crate::attribution::unified_root();
        let hz = ctx.kernel.config_hz();
        Ok(move |raw: HungTaskEvent| {
            let classic = !raw.has_task();
            let snapshot = decode::Snapshot {
                tgid: classic.then(|| procfs.tgid(raw.tid)).flatten(),
                // The classic tracepoint runs in khungtaskd, whose cgroup is not the task's.
                cgroup_id: unified
                    .as_deref()
                    .filter(|_| classic)
                    .and_then(|root| procfs.cgroup_id(raw.tid, root)),
                timeout_secs: procfs.timeout_secs(),
                stack: procfs.stack(raw.tid),
                blocked: backoff
                    .admit(Instant::now())
                    .map(|skipped| (procfs.blocked(max_stacks), skipped)),
            };
            decode::to_event(&raw, snapshot, hz, clock)
        })
    }

    fn stop(&self) {
        self.hangs.detach();
    }
}
