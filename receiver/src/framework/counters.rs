//! Cumulative totals of counters that live in BPF maps.
//!
//! A BPF map starts from zero each time its program is loaded, but an OTel cumulative counter must
//! never go backwards. While a program runs, reads go to its map; when it stops, its last values
//! are folded into carried totals that later runs add to.

use aya::maps::{MapData, PerCpuArray};
use opentelemetry::metrics::{Counter, Meter};
use std::collections::HashMap;
use std::hash::Hash;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

type Reader<K> = Box<dyn FnMut() -> anyhow::Result<HashMap<K, u64>> + Send>;

pub struct KernelCounters<K> {
    inner: Mutex<Inner<K>>,
}

struct Inner<K> {
    live: Option<Reader<K>>,
    /// Last successful read of `live`, so a failing read never makes totals go backwards.
    last_live: HashMap<K, u64>,
    carried: HashMap<K, u64>,
}

impl<K> Default for KernelCounters<K> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                live: None,
                last_live: HashMap::new(),
                carried: HashMap::new(),
            }),
        }
    }
}

impl<K: Hash + Eq + Clone> KernelCounters<K> {
    /// Starts reading from a freshly loaded program's map.
    pub fn attach(&self, reader: impl FnMut() -> anyhow::Result<HashMap<K, u64>> + Send + 'static) {
        let mut inner = self.lock();
        inner.fold_live();
        inner.live = Some(Box::new(reader));
    }

    /// Takes a last reading and keeps it, before the program's maps go away.
    pub fn detach(&self) {
        let mut inner = self.lock();
        inner.refresh();
        inner.fold_live();
    }

    /// Current totals: carried + live.
    pub fn snapshot(&self) -> HashMap<K, u64> {
        let mut inner = self.lock();
        inner.refresh();
        let mut totals = inner.carried.clone();
        for (key, value) in &inner.last_live {
            *totals.entry(key.clone()).or_default() += value;
        }
        totals
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K>> {
        // A panic while holding the lock cannot leave the maps inconsistent (plain inserts), so a
        // poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Hash + Eq + Clone> Inner<K> {
    fn refresh(&mut self) {
        if let Some(read) = self.live.as_mut() {
            match read() {
                Ok(values) => self.last_live = values,
                Err(e) => {
                    tracing::warn!(error = %e, "reading kernel counters failed; keeping last values")
                }
            }
        }
    }

    fn fold_live(&mut self) {
        for (key, value) in self.last_live.drain() {
            *self.carried.entry(key).or_default() += value;
        }
        self.live = None;
    }
}

/// Reads a program object's loss counters by cause name: its `stats` slots (see
/// `ebpf/include/huatuo_stats.h`) and the runs the kernel skipped because an attached program
/// was already running on that CPU (an interrupt hitting it), from the programs' fdinfo, summed
/// over the programs sharing the map.
pub fn read_programs_stats(
    map: &PerCpuArray<MapData, u64>,
    programs: &[BorrowedFd<'_>],
) -> anyhow::Result<HashMap<&'static str, u64>> {
    let mut totals = HashMap::new();
    for program in programs {
        let fdinfo = crate::kernel::bpf_fdinfo(*program)?;
        // Kernels before 5.12 do not report it; nothing can be said there.
        if let Some(misses) = fdinfo.get("recursion_misses") {
            *totals.entry("kernel_recursion").or_default() += *misses;
        }
    }
    for (slot, cause) in [
        (huatuo_ebpf::STAT_RINGBUF_LOST, "ring_buffer_full"),
        (huatuo_ebpf::STAT_RATE_LIMITED, "rate_limited"),
        (huatuo_ebpf::STAT_COUNTER_MAP_FULL, "counter_map_full"),
        (huatuo_ebpf::STAT_TRACKING_MAP_FULL, "tracking_map_full"),
    ] {
        let per_cpu = map.get(&slot, 0)?;
        totals.insert(cause, per_cpu.iter().sum());
    }
    Ok(totals)
}

/// A BPF program's run statistics, which the kernel keeps only while `kernel.bpf_stats_enabled`
/// is on (see `crate::bpf_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProgramStat {
    Runs,
    RunTimeNs,
}

/// Reads the run count and run time of each attached program (named) from its fdinfo.
pub fn read_program_runs(
    programs: &[(&'static str, OwnedFd)],
) -> anyhow::Result<HashMap<(&'static str, ProgramStat), u64>> {
    let mut totals = HashMap::new();
    for (name, fd) in programs {
        let fdinfo = crate::kernel::bpf_fdinfo(fd.as_fd())?;
        for (stat, key) in [
            (ProgramStat::Runs, "run_cnt"),
            (ProgramStat::RunTimeNs, "run_time_ns"),
        ] {
            // Kernels before 5.1 do not report them.
            if let Some(value) = fdinfo.get(key) {
                *totals.entry((*name, stat)).or_default() += *value;
            }
        }
    }
    Ok(totals)
}

/// A counter instrument a tracer records into from user space. It is built on first use and
/// kept by the tracer object, not the run, so its cumulative total survives restarts.
pub struct UserCounter {
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    instrument: OnceLock<Counter<u64>>,
}

impl UserCounter {
    pub const fn new(name: &'static str, description: &'static str, unit: &'static str) -> Self {
        Self {
            name,
            description,
            unit,
            instrument: OnceLock::new(),
        }
    }

    pub fn get(&self, meter: &Meter) -> Counter<u64> {
        self.instrument
            .get_or_init(|| {
                meter
                    .u64_counter(self.name)
                    .with_description(self.description)
                    .with_unit(self.unit)
                    .build()
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn totals_survive_a_restart_and_never_go_backwards() {
        let counters = KernelCounters::<&str>::default();
        let kernel = Arc::new(AtomicU64::new(5));
        let k = kernel.clone();
        counters.attach(move || Ok(HashMap::from([("drops", k.load(Ordering::SeqCst))])));
        assert_eq!(counters.snapshot()["drops"], 5);
        kernel.store(7, Ordering::SeqCst);
        counters.detach();
        assert_eq!(counters.snapshot()["drops"], 7);

        // A reloaded program starts from zero again.
        let k = kernel.clone();
        kernel.store(0, Ordering::SeqCst);
        counters.attach(move || Ok(HashMap::from([("drops", k.load(Ordering::SeqCst))])));
        kernel.store(3, Ordering::SeqCst);
        assert_eq!(counters.snapshot()["drops"], 10);
    }

    #[test]
    fn a_failing_read_keeps_the_last_values() {
        let counters = KernelCounters::<&str>::default();
        let mut calls = 0;
        counters.attach(move || {
            calls += 1;
            if calls == 1 {
                Ok(HashMap::from([("drops", 4)]))
            } else {
                anyhow::bail!("map gone")
            }
        });
        assert_eq!(counters.snapshot()["drops"], 4);
        assert_eq!(counters.snapshot()["drops"], 4);
    }
}
