//! `memreclaim`: tasks stalled in direct reclaim or memory cgroup reclaim
//! (`vmscan:mm_vmscan_direct_reclaim_begin/_end`, `vmscan:mm_vmscan_memcg_reclaim_begin/_end`).
//!
//! Every reclaim a task goes through is counted in the kernel in a log2 histogram of
//! microseconds, exported as the `huatuo.memory.reclaim.duration` histogram by kind; a stall over
//! the threshold is also counted in `huatuo.memory.reclaim.stalls` and becomes a log event (and a
//! span with `spans`) with the task, its cgroup and its memory cgroup, at most
//! `max_events_per_second`, the rest counted as `rate_limited`.
//!
//! Where the kernel has their tracepoints (optional hooks, shown by `probe`), the same object
//! also counts each compaction of a memory zone in the `huatuo.memory.compaction.duration`
//! histogram by who ran it (`compaction:mm_compaction_begin/_end`), and kswapd's time awake and
//! wakes per NUMA node (`vmscan:mm_vmscan_kswapd_wake/_sleep`).

mod decode;

use crate::attribution::CgroupCache;
use crate::framework::{
    event_tracer, take_map, EventTracer, KernelCounters, KernelHistogram, RunError, TracepointHook,
    TracerContext,
};
use crate::kernel::BootClock;
use crate::telemetry::{Event, Telemetry};
use crate::tracers::oom::MemoryHierarchy;
use anyhow::Context as _;
use aya::maps::{Array, PerCpuArray};
use aya::{Ebpf, EbpfLoader};
use huatuo_config::{Config, MemreclaimConfig};
use huatuo_ebpf::memreclaim::{self as abi, CompactionKind, Kind, MemreclaimEvent};
use huatuo_semconv::memory as names;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Memory cgroups whose paths are remembered; stalls concern few at a time.
const MEMCG_CACHE_SIZE: usize = 1024;
pub const NAME: &str = "memreclaim";

/// Buckets of 1 µs up to 2^24 µs (about 17 s); longer stalls land in the last one.
const HISTOGRAM_SLOTS: usize = 25;

/// How often the kernel's counts are folded into the exported histogram: a bound on how stale
/// an export can be.
const FOLD_EVERY: Duration = Duration::from_secs(1);

const fn hook(hook: &'static abi::Hook) -> TracepointHook {
    TracepointHook {
        tracer: NAME,
        prog_btf: hook.prog_btf,
        tp_btf_name: hook.tracepoint,
        prog_tracepoint: hook.prog_tracepoint,
        category: hook.category,
        name: hook.tracepoint,
    }
}

/// Begins and ends of both kinds: without one of them stalls would go unmeasured.
const HOOKS: &[TracepointHook] = &[
    hook(&abi::HOOKS[0]),
    hook(&abi::HOOKS[1]),
    hook(&abi::HOOKS[2]),
    hook(&abi::HOOKS[3]),
];

/// Compactions and kswapd: counted where the kernel has them, the reclaim stalls measured
/// either way.
const OPTIONAL_HOOKS: &[TracepointHook] = &[
    hook(&abi::OPTIONAL_HOOKS[0]),
    hook(&abi::OPTIONAL_HOOKS[1]),
    hook(&abi::OPTIONAL_HOOKS[2]),
    hook(&abi::OPTIONAL_HOOKS[3]),
];

/// What is counted per node about kswapd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum KswapdStat {
    AwakeNs,
    Wakeups,
}

fn kind_attributes(kind: Kind) -> Vec<KeyValue> {
    vec![KeyValue::new(names::MEMORY_RECLAIM_KIND, kind.name())]
}

fn compaction_attributes(row: u32) -> Vec<KeyValue> {
    CompactionKind::from_raw(row)
        .map(|kind| vec![KeyValue::new(names::MEMORY_COMPACTION_KIND, kind.name())])
        .unwrap_or_default()
}

pub struct Memreclaim {
    durations: Arc<KernelHistogram>,
    stalls: Arc<KernelCounters<Kind>>,
    compactions: Arc<KernelHistogram>,
    kswapd: Arc<KernelCounters<(u32, KswapdStat)>>,
}

impl Default for Memreclaim {
    fn default() -> Self {
        Self {
            durations: KernelHistogram::new(
                names::MEMORY_RECLAIM_DURATION,
                "Time tasks spent in direct and memory cgroup reclaim, counted in the kernel",
                "us",
                HISTOGRAM_SLOTS,
                |row| Kind::from_raw(row).map(kind_attributes).unwrap_or_default(),
            ),
            stalls: Arc::default(),
            compactions: KernelHistogram::new(
                names::MEMORY_COMPACTION_DURATION,
                "Time compactions of a memory zone took, by who ran them, counted in the kernel",
                "us",
                HISTOGRAM_SLOTS,
                compaction_attributes,
            ),
            kswapd: Arc::default(),
        }
    }
}

event_tracer!(Memreclaim);

impl EventTracer for Memreclaim {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = HOOKS;
    const OPTIONAL_HOOKS: &'static [TracepointHook] = OPTIONAL_HOOKS;
    type Section = MemreclaimConfig;
    type Record = MemreclaimEvent;

    fn section(config: &Config) -> &MemreclaimConfig {
        &config.tracers.memreclaim
    }

    fn optional_hook_enabled(&self, config: &Config, hook: &TracepointHook) -> bool {
        let config = &config.tracers.memreclaim;
        if hook.category == abi::COMPACTION_CATEGORY {
            config.compaction
        } else {
            config.kswapd
        }
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        self.durations.register(&telemetry.meter);
        let stalls = self.stalls.clone();
        telemetry
            .meter
            .u64_observable_counter(names::MEMORY_RECLAIM_STALLS)
            .with_description(
                "Reclaim stalls at or above the threshold, by kind, counted in the kernel",
            )
            .with_unit("{stall}")
            .with_callback(move |observer| {
                for (kind, count) in stalls.snapshot() {
                    observer.observe(count, &kind_attributes(kind));
                }
            })
            .build();
        self.compactions.register(&telemetry.meter);
        let kswapd = self.kswapd.clone();
        telemetry
            .meter
            .f64_observable_counter(names::MEMORY_KSWAPD_TIME)
            .with_description("Time kswapd was awake balancing the node, the current run included")
            .with_unit("s")
            .with_callback(move |observer| {
                for ((node, stat), ns) in kswapd.snapshot() {
                    if stat == KswapdStat::AwakeNs {
                        observer.observe(ns as f64 / 1e9, &node_attributes(node));
                    }
                }
            })
            .build();
        let kswapd = self.kswapd.clone();
        telemetry
            .meter
            .u64_observable_counter(names::MEMORY_KSWAPD_WAKEUPS)
            .with_description("Wakes of kswapd for the node, one per balancing pass")
            .with_unit("{wakeup}")
            .with_callback(move |observer| {
                for ((node, stat), count) in kswapd.snapshot() {
                    if stat == KswapdStat::Wakeups {
                        observer.observe(count, &node_attributes(node));
                    }
                }
            })
            .build();
    }

    fn load(&self, ctx: &TracerContext) -> Result<Ebpf, RunError> {
        let config = &ctx.config.tracers.memreclaim;
        let per_cpu = ctx.kernel.per_cpu_rate(config.max_events_per_second);
        let threshold_ns = config.stall_threshold_ms.saturating_mul(1_000_000);
        EbpfLoader::new()
            .override_global(huatuo_ebpf::GLOBAL_EVENTS_PER_CPU_PER_SEC, &per_cpu, true)
            .override_global(abi::GLOBAL_STALL_THRESHOLD_NS, &threshold_ns, true)
            .map_max_entries(huatuo_ebpf::EVENTS_MAP, config.ring_buffer_kib.bytes())
            .load(huatuo_ebpf::MEMRECLAIM)
            .context("loading the memreclaim BPF object")
            .map_err(RunError::Failed)
    }

    fn start<'a>(
        &'a self,
        ebpf: &mut Ebpf,
        ctx: &'a TracerContext,
    ) -> anyhow::Result<impl FnMut(MemreclaimEvent) -> Event + Send + 'a> {
        let config = &ctx.config.tracers.memreclaim;
        let histogram = PerCpuArray::try_from(take_map(ebpf, abi::STALL_MAP)?)?;
        let rows = Kind::ALL.len() as u32;
        self.durations
            .attach(histogram, rows, false, FOLD_EVERY, ctx.cancel.clone());
        let stalls = PerCpuArray::try_from(take_map(ebpf, abi::STALLS_MAP)?)?;
        self.stalls.attach(move || Ok(abi::read_stalls(&stalls)?));
        let compactions = PerCpuArray::try_from(take_map(ebpf, abi::COMPACT_MAP)?)?;
        let rows = CompactionKind::ALL.len() as u32;
        self.compactions
            .attach(compactions, rows, false, FOLD_EVERY, ctx.cancel.clone());
        let kswapd = Array::try_from(take_map(ebpf, abi::KSWAPD_MAP)?)?;
        self.kswapd.attach(kswapd_reader(kswapd));

        let hierarchy = MemoryHierarchy::detect();
        if hierarchy.is_none() {
            tracing::warn!(
                tracer = NAME,
                "no memory cgroup controller mounted: stalls carry no memory cgroup"
            );
        }
        let memcgs = CgroupCache::new(hierarchy.map(|h| h.root().to_path_buf()), MEMCG_CACHE_SIZE);
        let clock = BootClock::now();
        let spans = config.spans;
        Ok(move |raw: MemreclaimEvent| {
            let memcg_path = (raw.memcg_id != 0)
                .then(|| memcgs.resolve(raw.memcg_id))
                .flatten()
                .map(|found| found.cgroup_path.clone());
            decode::to_event(&raw, memcg_path, clock, spans)
        })
    }

    fn stop(&self) {
        self.durations.detach();
        self.stalls.detach();
        self.compactions.detach();
        self.kswapd.detach();
    }
}

fn node_attributes(node: u32) -> [KeyValue; 1] {
    [KeyValue::new(
        huatuo_semconv::system::NUMA_NODE,
        i64::from(node),
    )]
}

/// Reads each node's kswapd counts, the run in progress included in its time awake. That
/// reading can race with the run's end (seen twice for a moment, or not at all), so each node's
/// time never goes below what was last returned.
fn kswapd_reader(
    map: Array<aya::maps::MapData, abi::KswapdNode>,
) -> impl FnMut() -> anyhow::Result<HashMap<(u32, KswapdStat), u64>> + Send + 'static {
    let mut last_awake: HashMap<u32, u64> = HashMap::new();
    move || {
        let now = u64::try_from(huatuo_ebpf::clock_ns(libc::CLOCK_MONOTONIC)).unwrap_or(0);
        let mut values = HashMap::new();
        for (node, counts) in abi::read_kswapd(&map)? {
            let last = last_awake.entry(node).or_default();
            *last = (*last).max(counts.awake_ns_at(now));
            values.insert((node, KswapdStat::AwakeNs), *last);
            values.insert((node, KswapdStat::Wakeups), counts.wakeups);
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_and_kswapd_hooks_follow_their_config_keys() {
        let mut config = Config::default();
        let tracer = Memreclaim::default();
        assert!(OPTIONAL_HOOKS
            .iter()
            .all(|hook| tracer.optional_hook_enabled(&config, hook)));
        config.tracers.memreclaim.compaction = false;
        let enabled: Vec<_> = OPTIONAL_HOOKS
            .iter()
            .filter(|hook| tracer.optional_hook_enabled(&config, hook))
            .map(|hook| hook.name)
            .collect();
        assert_eq!(enabled, ["mm_vmscan_kswapd_wake", "mm_vmscan_kswapd_sleep"]);
        config.tracers.memreclaim.kswapd = false;
        assert!(!OPTIONAL_HOOKS
            .iter()
            .any(|hook| tracer.optional_hook_enabled(&config, hook)));
    }
}
