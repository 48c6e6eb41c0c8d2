//! `waitrate` (autotracing, with always-on kernel counters): how long each container's tasks
//! wait for a CPU, split into inner (the CPU ran the same cgroup), external (another cgroup),
//! throttle (CFS bandwidth) and other (an idle CPU's wake-up latency). The kernel counts per
//! cgroup from scheduler tracepoints (`ebpf/waitrate/`, which documents how a wait is split);
//! every interval the agent reads the counters, adds what changed to the cumulative
//! `huatuo.waitrate.wait_time` of the cgroup's container, and triggers on a container whose
//! wait rate (wait seconds per second of wall time: the average number of its tasks waiting
//! for a CPU) is above the threshold. Wall time rather than runnable time: it needs no second
//! counter, and a container with many waiting tasks is what slows its service even when each
//! of them also runs a lot.
//!
//! A capture names the container's cgroups to the kernel, which for `capture_secs` charges
//! every time slice run on a CPU where they wait to the task that ran it (times the number
//! waiting); the span carries the wait split over the capture, its log records the tasks the
//! container waited behind longest, attributed to their own containers.

mod decode;

use crate::attribution::Owner;
use crate::framework::{
    autotracer, take_map, Autotracer, Capture, Captures, RunError, TracepointHook, TracerContext,
    Trigger, Unsupported,
};
use crate::kernel::KernelEnv;
use crate::telemetry::Telemetry;
use anyhow::Context as _;
use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuHashMap};
use aya::{Ebpf, EbpfLoader};
use decode::{WaitNs, KIND_NAMES};
use huatuo_config::{Config, WaitrateConfig};
use huatuo_ebpf::waitrate::{self as abi, CaptureState, Competitor, OccupancyKey, WaitCounts};
use huatuo_semconv::autotracing as names;
use opentelemetry::KeyValue;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const NAME: &str = "waitrate";
const REASON: &str = "container_wait";
/// A cgroup whose counters did not move for this long is dropped from the kernel maps, so the
/// cgroups of containers that are gone do not fill them; it is counted afresh if it waits again.
/// Likewise for a metric series.
const EVICT_AFTER: Duration = Duration::from_secs(600);

const fn hook((name, prog): (&'static str, &'static str)) -> TracepointHook {
    TracepointHook {
        tracer: NAME,
        prog_btf: prog,
        tp_btf_name: name,
        prog_tracepoint: "",
        category: abi::TRACEPOINT_CATEGORY,
        name,
    }
}

const HOOKS: &[TracepointHook] = &[
    hook(abi::HOOKS[0]),
    hook(abi::HOOKS[1]),
    hook(abi::HOOKS[2]),
];

/// A metric series: the attribution's attributes of a container (none outside containers).
type Series = Vec<(String, String)>;

#[derive(Default)]
pub struct Waitrate {
    live: Mutex<Option<Maps>>,
    /// Cumulative seconds by series and kind, kept across restarts.
    totals: Arc<Mutex<HashMap<Series, Total>>>,
    /// The cgroups of each container at the last sample: what a capture targets.
    containers: Mutex<HashMap<String, Vec<u64>>>,
    captures: Captures,
}

autotracer!(Waitrate);

/// The maps of the loaded object.
struct Maps {
    waits: PerCpuHashMap<MapData, u64, WaitCounts>,
    occupancy: BpfHashMap<MapData, OccupancyKey, u64>,
    capture: Array<MapData, CaptureState>,
    targets: BpfHashMap<MapData, u64, u8>,
    competitors: PerCpuHashMap<MapData, Competitor, u64>,
    telemetry: Arc<Telemetry>,
}

/// A series' cumulative seconds by kind, and when they last grew.
struct Total {
    seconds: [f64; abi::KINDS],
    grew: Instant,
}

/// One container over a sampling interval.
#[derive(Default)]
struct ContainerWait {
    ns: WaitNs,
    /// The cgroup that waited most, and how long: the trigger's cgroup.
    most: (u64, u64),
    /// All of its cgroups with counters.
    cgroups: Vec<u64>,
}

/// What the previous sample read.
pub struct Previous {
    /// None before the first sample: the counters then hold whatever accumulated since the
    /// programs were attached, over no known interval, so they prime but do not trigger.
    at: Option<Instant>,
    by_cgroup: HashMap<u64, Seen>,
}

struct Seen {
    ns: WaitNs,
    changed: Instant,
}

impl Autotracer for Waitrate {
    const NAME: &'static str = NAME;
    const SPAN: &'static str = names::WAITRATE_CAPTURE;
    const HOOKS: &'static [TracepointHook] = HOOKS;
    type Section = WaitrateConfig;
    type Sampler = Previous;

    fn section(config: &Config) -> &WaitrateConfig {
        &config.tracers.waitrate
    }

    fn captures(&self) -> &Captures {
        &self.captures
    }

    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        HOOKS.iter().try_for_each(|hook| hook.probe(kernel))?;
        // Cgroup ids are the unified hierarchy's; without one every task is in the root.
        crate::attribution::unified_root()
            .map(drop)
            .ok_or_else(|| Unsupported("no cgroup v2 hierarchy is mounted".into()))
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        let totals = self.totals.clone();
        telemetry
            .meter
            .f64_observable_counter(names::WAIT_TIME)
            .with_description(
                "Time tasks spent runnable waiting for a CPU, by container and by what the CPU \
                 ran meanwhile (inner: the same cgroup, external: another, throttle: CFS \
                 bandwidth, other: idle)",
            )
            .with_unit("s")
            .with_callback(move |observer| {
                for (series, total) in lock(&totals).iter() {
                    for (kind, value) in KIND_NAMES.iter().zip(&total.seconds) {
                        let mut attributes: Vec<KeyValue> = series
                            .iter()
                            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                            .collect();
                        attributes.push(KeyValue::new(names::WAIT_KIND, *kind));
                        observer.observe(*value, &attributes);
                    }
                }
            })
            .build();
    }

    fn load(&self, _ctx: &TracerContext) -> Result<Ebpf, RunError> {
        EbpfLoader::new()
            .load(huatuo_ebpf::WAITRATE)
            .context("loading the waitrate BPF object")
            .map_err(RunError::Failed)
    }

    fn start(&self, ebpf: &mut Ebpf, ctx: &TracerContext) -> anyhow::Result<()> {
        let maps = Maps {
            waits: PerCpuHashMap::try_from(take_map(ebpf, abi::WAITS_MAP)?)?,
            occupancy: BpfHashMap::try_from(take_map(ebpf, abi::OCCUPANCY_MAP)?)?,
            capture: Array::try_from(take_map(ebpf, abi::CAPTURE_MAP)?)?,
            targets: BpfHashMap::try_from(take_map(ebpf, abi::TARGETS_MAP)?)?,
            competitors: PerCpuHashMap::try_from(take_map(ebpf, abi::COMPETITORS_MAP)?)?,
            telemetry: ctx.telemetry.clone(),
        };
        *lock(&self.live) = Some(maps);
        Ok(())
    }

    fn stop(&self) {
        // What the kernel counted since the last sample is lost with the maps: at most one
        // interval, on a restart or at shutdown.
        *lock(&self.live) = None;
    }

    fn sampler(&self, _section: &WaitrateConfig) -> anyhow::Result<Previous> {
        Ok(Previous {
            at: None,
            by_cgroup: HashMap::new(),
        })
    }

    fn sample(
        &self,
        previous: &mut Previous,
        section: &WaitrateConfig,
    ) -> anyhow::Result<Vec<Trigger>> {
        let mut live = lock(&self.live);
        let maps = live.as_mut().context("the waitrate maps are not loaded")?;
        let now = Instant::now();
        let elapsed = previous.at.replace(now).map(|at| now.duration_since(at));
        let current = read_waits(&maps.waits)?;
        let attribution = &maps.telemetry.attribution;

        let mut by_series: HashMap<Series, WaitNs> = HashMap::new();
        let mut by_container: HashMap<String, ContainerWait> = HashMap::new();
        let mut evicted = HashSet::new();
        let mut seen = HashMap::with_capacity(current.len());
        for (cgroup, ns) in current {
            let before = previous.by_cgroup.remove(&cgroup);
            let delta = decode::delta(&ns, before.as_ref().map(|s| &s.ns));
            let moved = delta.iter().any(|d| *d > 0);
            let changed = match before {
                Some(before) if !moved => before.changed,
                _ => now,
            };
            if now.duration_since(changed) >= EVICT_AFTER {
                evicted.insert(cgroup);
                continue;
            }
            seen.insert(cgroup, Seen { ns, changed });
            let container = attribution
                .cgroups()
                .resolve(cgroup)
                .and_then(|a| a.container.container_id.clone());
            if let Some(id) = &container {
                let entry = by_container.entry(id.clone()).or_default();
                entry.cgroups.push(cgroup);
                let waited: u64 = delta.iter().sum();
                if waited >= entry.most.1 {
                    entry.most = (cgroup, waited);
                }
                decode::add(&mut entry.ns, &delta);
            }
            if moved {
                let series = attribution
                    .metric_attributes(&Owner::cgroup(cgroup))
                    .into_iter()
                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                    .collect();
                decode::add(by_series.entry(series).or_default(), &delta);
            }
        }
        previous.by_cgroup = seen;
        {
            let mut totals = lock(&self.totals);
            for (series, ns) in by_series {
                let total = totals.entry(series).or_insert(Total {
                    seconds: [0.0; abi::KINDS],
                    grew: now,
                });
                for (t, ns) in total.seconds.iter_mut().zip(ns) {
                    *t += ns as f64 / 1e9;
                }
                total.grew = now;
            }
            // Series of containers that are gone stop being exported, so their number stays
            // bounded by the containers of the last minutes; one that comes back starts again
            // from zero (a counter reset).
            totals.retain(|_, total| now.duration_since(total.grew) < EVICT_AFTER);
        }
        evict(maps, &evicted)?;
        drop(live);

        let mut triggers: Vec<(f64, Trigger)> = match elapsed {
            Some(elapsed) => by_container
                .iter()
                .filter_map(|(id, wait)| {
                    decode::trigger(id, wait.most.0, &wait.ns, elapsed, section.threshold)
                })
                .collect(),
            None => Vec::new(),
        };
        *lock(&self.containers) = by_container
            .into_iter()
            .map(|(id, wait)| (id, wait.cgroups))
            .collect();
        // The runner captures one per sample: the container waiting most first.
        triggers.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.target.cmp(&b.1.target))
        });
        Ok(triggers.into_iter().map(|(_, trigger)| trigger).collect())
    }

    fn capture(&self, trigger: &Trigger, section: &WaitrateConfig) -> anyhow::Result<Capture> {
        let id = trigger.target.as_deref().context("a container trigger")?;
        let mut cgroups = lock(&self.containers)
            .get(id)
            .cloned()
            .with_context(|| format!("container {id} is gone"))?;
        cgroups.truncate(abi::MAX_TARGETS);
        let targets: HashSet<u64> = cgroups.iter().copied().collect();
        let duration = Duration::from_secs(section.capture_secs);

        let before = self.with_maps(|maps| {
            clear(&mut maps.targets)?;
            let stale: Vec<Competitor> = maps.competitors.keys().collect::<Result<_, _>>()?;
            for key in stale {
                maps.competitors.remove(&key)?;
            }
            for cgroup in &cgroups {
                maps.targets.insert(cgroup, 1, 0)?;
            }
            maps.capture.set(0, CaptureState { active: 1 }, 0)?;
            read_waits_of(&maps.waits, &targets)
        })?;
        std::thread::sleep(duration);
        let (after, competitors) = self.with_maps(|maps| {
            maps.capture.set(0, CaptureState { active: 0 }, 0)?;
            let mut competitors = Vec::new();
            for entry in maps.competitors.iter() {
                let (key, per_cpu) = entry?;
                competitors.push((key, per_cpu.iter().sum::<u64>()));
            }
            clear(&mut maps.targets)?;
            Ok((read_waits_of(&maps.waits, &targets)?, competitors))
        })?;

        let mut waited = WaitNs::default();
        for (cgroup, ns) in &after {
            decode::add(&mut waited, &decode::delta(ns, before.get(cgroup)));
        }
        let count = competitors.len();
        let (events, omitted) =
            decode::competitor_events(competitors, &targets, section.max_competitors);
        Ok(Capture {
            attributes: decode::capture_attributes(&waited, duration, count, omitted),
            events,
        })
    }
}

impl Waitrate {
    fn with_maps<R>(&self, f: impl FnOnce(&mut Maps) -> anyhow::Result<R>) -> anyhow::Result<R> {
        let mut live = lock(&self.live);
        f(live.as_mut().context("the waitrate maps are not loaded")?)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain inserts under the lock: a panic cannot leave the data inconsistent.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every cgroup's cumulative wait, summed over CPUs.
fn read_waits(
    map: &PerCpuHashMap<MapData, u64, WaitCounts>,
) -> anyhow::Result<HashMap<u64, WaitNs>> {
    let mut waits = HashMap::new();
    for entry in map.iter() {
        let (cgroup, per_cpu) = entry?;
        let total: &mut WaitNs = waits.entry(cgroup).or_default();
        for counts in per_cpu.iter() {
            decode::add(total, &counts.ns);
        }
    }
    Ok(waits)
}

fn read_waits_of(
    map: &PerCpuHashMap<MapData, u64, WaitCounts>,
    cgroups: &HashSet<u64>,
) -> anyhow::Result<HashMap<u64, WaitNs>> {
    let mut waits = HashMap::new();
    for cgroup in cgroups {
        // Not there: the cgroup has not waited since it was (re)counted.
        if let Ok(per_cpu) = map.get(cgroup, 0) {
            let total: &mut WaitNs = waits.entry(*cgroup).or_default();
            for counts in per_cpu.iter() {
                decode::add(total, &counts.ns);
            }
        }
    }
    Ok(waits)
}

fn clear(map: &mut BpfHashMap<MapData, u64, u8>) -> anyhow::Result<()> {
    let keys: Vec<u64> = map.keys().collect::<Result<_, _>>()?;
    for key in keys {
        map.remove(&key)?;
    }
    Ok(())
}

/// Drops the counters and the CPU occupancy of cgroups idle for [`EVICT_AFTER`].
fn evict(maps: &mut Maps, cgroups: &HashSet<u64>) -> anyhow::Result<()> {
    if cgroups.is_empty() {
        return Ok(());
    }
    for cgroup in cgroups {
        // Gone already is fine: the kernel may have been refused a new entry meanwhile.
        let _ = maps.waits.remove(cgroup);
    }
    let stale: Vec<OccupancyKey> = maps
        .occupancy
        .keys()
        .filter_map(Result::ok)
        .filter(|key| cgroups.contains(&key.cgroup_id))
        .collect();
    for key in stale {
        let _ = maps.occupancy.remove(&key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_what_the_host_lacks() {
        let kernel = KernelEnv::detect();
        match Waitrate::default().probe(&kernel) {
            Ok(()) => {
                assert!(kernel.has_btf().is_ok());
                assert!(crate::attribution::unified_root().is_some());
            }
            Err(Unsupported(why)) => assert!(
                [
                    "root",
                    "BTF",
                    "cgroup v2",
                    "tracefs",
                    "tracepoint",
                    "too old"
                ]
                .iter()
                .any(|what| why.contains(what)),
                "{why}"
            ),
        }
    }

    #[test]
    fn hooks_are_tp_btf_only_and_attach_sched_switch_first() {
        assert_eq!(HOOKS[0].name, "sched_switch");
        assert!(HOOKS
            .iter()
            .all(|h| h.prog_tracepoint.is_empty() && h.tp_btf_name == h.name));
    }
}
