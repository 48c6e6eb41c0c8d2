//! `oom`: every task the OOM killer chooses (`oom:mark_victim`), as one log event with the
//! victim, the task whose allocation triggered the kill, the victim's memory cgroup (path, limit,
//! usage, events) and the host's memory; and a counter of kills by memory cgroup.
//!
//! No rate limit: the kernel kills one task per OOM, and records are rare.

mod decode;
mod snapshot;

use crate::framework::{
    event_tracer, EventTracer, RunError, TracepointHook, TracerContext, UserCounter,
};
use crate::kernel::BootClock;
use crate::telemetry::{Event, Telemetry};
use anyhow::Context as _;
use aya::{Ebpf, EbpfLoader};
use huatuo_config::{Config, OomConfig};
use huatuo_ebpf::oom::{self as abi, OomEvent};
use huatuo_semconv::memory as names;
pub(crate) use snapshot::MemoryHierarchy;
use snapshot::Snapshotter;

pub const NAME: &str = "oom";

const HOOK: TracepointHook = TracepointHook {
    tracer: NAME,
    prog_btf: abi::PROG_BTF,
    tp_btf_name: abi::TP_BTF_NAME,
    prog_tracepoint: abi::PROG_TRACEPOINT,
    category: abi::TRACEPOINT_CATEGORY,
    name: abi::TRACEPOINT_NAME,
};

pub struct Oom {
    kills: UserCounter,
}

impl Default for Oom {
    fn default() -> Self {
        Self {
            kills: UserCounter::new(
                names::OOM_KILLS,
                "OOM kills, by the victim's memory cgroup",
                "{kill}",
            ),
        }
    }
}

event_tracer!(Oom);

impl EventTracer for Oom {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = &[HOOK];
    type Section = OomConfig;
    type Record = OomEvent;

    fn section(config: &Config) -> &OomConfig {
        &config.tracers.oom
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        self.kills.get(&telemetry.meter);
    }

    fn load(&self, _ctx: &TracerContext) -> Result<Ebpf, RunError> {
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

    fn start<'a>(
        &'a self,
        _ebpf: &mut Ebpf,
        ctx: &'a TracerContext,
    ) -> anyhow::Result<impl FnMut(OomEvent) -> Event + Send + 'a> {
        let kills = self.kills.get(&ctx.telemetry.meter);
        let attribution = &ctx.telemetry.attribution;
        let hierarchy = MemoryHierarchy::detect();
        if hierarchy.is_none() {
            tracing::warn!(
                tracer = NAME,
                "no memory cgroup controller mounted: kills carry no memory cgroup"
            );
        }
        let snapshots = Snapshotter::new(hierarchy);
        let clock = BootClock::now();
        Ok(move |raw: OomEvent| {
            let snapshot = snapshots.take(&raw);
            let event = decode::to_event(&raw, &snapshot, clock);
            // One series per container (bounded), none per memory cgroup path (unbounded).
            kills.add(1, &attribution.metric_attributes(&event.owner));
            event
        })
    }
}
