//! In-kernel log2 histograms (`ebpf/include/huatuo_hist.bpf.h`) exported as OTel histograms.
//!
//! Counting each value in user space would cost a ring-buffer record per event; the kernel
//! counts into log2 slots instead and the agent folds what changed since the last fold into a
//! cumulative OTel histogram whose bucket bounds are the slot edges. Bucket `le = 2^(k+1)` holds
//! the values in [2^k, 2^(k+1)), and the bucket `le = 1` the values 0 and 1; the sum is
//! approximated from each slot's middle. Durations are exported in seconds whatever unit the
//! kernel counts in (the OTel and Prometheus base unit: `promtool` flags anything else), the
//! bounds then being the slot edges scaled: 2^k µs is 2^k × 10⁻⁶ s. The SDK only takes single values, so a fold records once
//! per value counted since the previous fold (about 45 ns each through a bound instrument).

use super::KernelCounters;
use aya::maps::{MapData, PerCpuArray, PerCpuHashMap};
use huatuo_ebpf::hist::{Log2Hist, HIST_SLOTS};
use opentelemetry::metrics::{BoundHistogram, Histogram, Meter};
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where a count lives: row of the map (or key of a keyed map), CPU (`None` when CPUs are
/// summed), slot.
type Cell<K> = (K, Option<u32>, usize);

/// One histogram metric fed by a histogram map. Kept by the tracer object, not the run, so the
/// cumulative totals survive restarts of the tracer.
///
/// Rows are `K`: a row number of a `PERCPU_ARRAY` (u32), or the key of a keyed map. Several rows
/// may carry the same attributes (every non-container cgroup of a disk): each row's delta is
/// computed apart and recorded into the one SDK series of those attributes, so the exported
/// cumulative counts are the exact sum of the rows and stay monotonic.
pub struct KernelHistogram<K = u32> {
    name: &'static str,
    description: &'static str,
    /// Unit of what is exported, and what one kernel unit is in it.
    unit: &'static str,
    scale: f64,
    /// Slots exported; larger values fall into the last exported bucket.
    slots: usize,
    /// Attributes of each row of the map, asked once per row.
    row_attributes: Box<dyn Fn(K) -> Vec<KeyValue> + Send + Sync>,
    instrument: OnceLock<Histogram<f64>>,
    counts: KernelCounters<Cell<K>>,
    folded: Mutex<Folded<K>>,
}

struct Folded<K> {
    totals: HashMap<Cell<K>, u64>,
    /// Bound once per row: recording through a bound instrument skips the attribute lookup,
    /// which would otherwise dominate the cost of a fold. Rows with equal attributes get handles
    /// on the same SDK series.
    series: HashMap<(K, Option<u32>), BoundHistogram<f64>>,
}

impl<K> Default for Folded<K> {
    fn default() -> Self {
        Self {
            totals: HashMap::new(),
            series: HashMap::new(),
        }
    }
}

impl KernelHistogram {
    /// How often a tracer should fold: as often as metrics are collected, so every export
    /// (and Prometheus scrape) sees what the kernel counted up to the previous collection.
    pub fn fold_interval(config: &huatuo_config::Config) -> Duration {
        Duration::from_secs(config.exporters.metrics_interval_secs.max(1))
    }

    /// Starts reading `rows` rows of a freshly loaded program's map, each CPU apart when
    /// `per_cpu`, and folds them every `every` until `cancel`.
    pub fn attach(
        self: &Arc<Self>,
        map: PerCpuArray<MapData, Log2Hist>,
        rows: u32,
        per_cpu: bool,
        every: Duration,
        cancel: CancellationToken,
    ) {
        self.fold_every(move || read_cells(&map, rows, per_cpu), every, cancel);
    }
}

impl<K: Copy + Eq + Hash + Send + Sync + 'static> KernelHistogram<K> {
    /// `unit` is what the kernel counts in (`ns`, `us` and `ms` are exported as `s`); `slots`
    /// (at most [`HIST_SLOTS`]) bounds the buckets to the range that matters for the quantity:
    /// 20 slots of microseconds reach one second.
    pub fn new(
        name: &'static str,
        description: &'static str,
        unit: &'static str,
        slots: usize,
        row_attributes: impl Fn(K) -> Vec<KeyValue> + Send + Sync + 'static,
    ) -> Arc<Self> {
        assert!((1..=HIST_SLOTS).contains(&slots), "{name}: {slots} slots");
        let (unit, scale) = exported_unit(unit);
        Arc::new(Self {
            name,
            description,
            unit,
            scale,
            slots,
            row_attributes: Box::new(row_attributes),
            instrument: OnceLock::new(),
            counts: KernelCounters::default(),
            folded: Mutex::default(),
        })
    }

    /// Builds the instrument; see [`super::Tracer::register_metrics`].
    pub fn register(&self, meter: &Meter) {
        self.instrument.get_or_init(|| {
            meter
                .f64_histogram(self.name)
                .with_description(self.description)
                .with_unit(self.unit)
                .with_boundaries(bounds(self.slots, self.scale))
                .build()
        });
    }

    /// Like [`KernelHistogram::attach`], for a keyed histogram map (`HUATUO_HIST_HASH`): each
    /// key is a row, CPUs summed.
    pub fn attach_keyed(
        self: &Arc<Self>,
        map: PerCpuHashMap<MapData, K, Log2Hist>,
        every: Duration,
        cancel: CancellationToken,
    ) where
        K: aya::Pod,
    {
        self.fold_every(move || read_keyed_cells(&map), every, cancel);
    }

    fn fold_every(
        self: &Arc<Self>,
        read: impl FnMut() -> anyhow::Result<HashMap<Cell<K>, u64>> + Send + 'static,
        every: Duration,
        cancel: CancellationToken,
    ) {
        self.counts.attach(read);
        let histogram = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = ticks.tick() => histogram.fold(),
                }
            }
        });
    }

    /// Takes a last reading before the map goes away, and folds it.
    pub fn detach(&self) {
        self.counts.detach();
        self.fold();
    }

    /// Records into the OTel histogram what the kernel counted since the previous fold.
    pub fn fold(&self) {
        let Some(instrument) = self.instrument.get() else {
            return;
        };
        let totals = self.counts.snapshot();
        let mut folded = self.folded.lock().unwrap_or_else(|e| e.into_inner());
        let Folded {
            totals: previous_totals,
            series,
        } = &mut *folded;
        for (cell @ (row, cpu, slot), total) in totals {
            let previous = previous_totals.entry(cell).or_default();
            let new = total.saturating_sub(*previous);
            *previous = total;
            if new == 0 {
                continue;
            }
            let bound = series.entry((row, cpu)).or_insert_with(|| {
                let mut attributes = (self.row_attributes)(row);
                if let Some(cpu) = cpu {
                    attributes.push(KeyValue::new(
                        huatuo_semconv::sched::CPU_LOGICAL_NUMBER,
                        i64::from(cpu),
                    ));
                }
                instrument.bind(&attributes)
            });
            let value = slot_middle(slot.min(self.slots - 1)) * self.scale;
            for _ in 0..new {
                bound.record(value);
            }
        }
    }
}

/// The exported unit for a kernel unit, and the factor from one to the other.
fn exported_unit(kernel_unit: &'static str) -> (&'static str, f64) {
    match kernel_unit {
        "ns" => ("s", 1e-9),
        "us" => ("s", 1e-6),
        "ms" => ("s", 1e-3),
        other => (other, 1.0),
    }
}

/// Upper bounds of the exported buckets: 1, 2, 4, ... 2^(slots-1) kernel units, in exported
/// units.
fn bounds(slots: usize, scale: f64) -> Vec<f64> {
    (0..slots).map(|k| (1u64 << k) as f64 * scale).collect()
}

/// A value inside slot `slot`'s bucket: 1 for slot 0 (values 0 and 1), 1.5 × 2^k for slot k.
fn slot_middle(slot: usize) -> f64 {
    if slot == 0 {
        1.0
    } else {
        1.5 * (1u64 << slot) as f64
    }
}

fn read_cells(
    map: &PerCpuArray<MapData, Log2Hist>,
    rows: u32,
    per_cpu: bool,
) -> anyhow::Result<HashMap<Cell<u32>, u64>> {
    let mut cells = HashMap::new();
    for row in 0..rows {
        for (cpu, hist) in map.get(&row, 0)?.iter().enumerate() {
            let cpu = per_cpu.then_some(cpu as u32);
            for (slot, count) in hist.slots.iter().enumerate() {
                if *count != 0 {
                    *cells.entry((row, cpu, slot)).or_default() += count;
                }
            }
        }
    }
    Ok(cells)
}

fn read_keyed_cells<K: aya::Pod + Eq + Hash>(
    map: &PerCpuHashMap<MapData, K, Log2Hist>,
) -> anyhow::Result<HashMap<Cell<K>, u64>> {
    let mut cells = HashMap::new();
    for entry in map.iter() {
        let (row, per_cpu) = entry?;
        for hist in per_cpu.iter() {
            for (slot, count) in hist.slots.iter().enumerate() {
                if *count != 0 {
                    *cells.entry((row, None, slot)).or_default() += count;
                }
            }
        }
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    /// Exported (count, bucket counts) of each series, by the series' `owner` attribute.
    fn exported(
        meters: &SdkMeterProvider,
        exporter: &InMemoryMetricExporter,
    ) -> HashMap<String, (u64, Vec<u64>)> {
        meters.force_flush().unwrap();
        let mut series = HashMap::new();
        let finished = exporter.get_finished_metrics().unwrap();
        // Cumulative: the last export holds every series' running totals.
        let last = finished.last().unwrap();
        for metric in last.scope_metrics().flat_map(|s| s.metrics()) {
            let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data() else {
                continue;
            };
            for point in histogram.data_points() {
                let owner = point
                    .attributes()
                    .find(|kv| kv.key.as_str() == "owner")
                    .map(|kv| kv.value.to_string())
                    .unwrap_or_default();
                let counts = (point.count(), point.bucket_counts().collect());
                assert!(
                    series.insert(owner, counts).is_none(),
                    "one point per series"
                );
            }
        }
        exporter.reset();
        series
    }

    /// Rows 1 and 2 share the (empty) attribute set of the host, row 7 has its own: the host's
    /// series is the exact sum of its rows at every fold, whatever order they grow in.
    #[test]
    fn rows_with_the_same_attributes_add_up_in_one_series() {
        let exporter = InMemoryMetricExporter::default();
        let meters = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let histogram = KernelHistogram::new("test.latency", "test", "us", 4, |row: u64| {
            if row == 7 {
                vec![KeyValue::new("owner", "c7")]
            } else {
                Vec::new()
            }
        });
        histogram.register(&meters.meter("test"));
        let kernel = Arc::new(Mutex::new(HashMap::<Cell<u64>, u64>::new()));
        let reader = kernel.clone();
        histogram
            .counts
            .attach(move || Ok(reader.lock().unwrap().clone()));
        let set = |cells: &[(u64, usize, u64)]| {
            let mut kernel = kernel.lock().unwrap();
            for &(row, slot, total) in cells {
                kernel.insert((row, None, slot), total);
            }
        };

        set(&[(1, 0, 3), (2, 0, 2), (7, 1, 5)]);
        histogram.fold();
        let first = exported(&meters, &exporter);
        assert_eq!(first[""], (5, vec![5, 0, 0, 0, 0]));
        assert_eq!(first["c7"], (5, vec![0, 0, 5, 0, 0]));

        // Only row 2 grows, in a new slot; row 1 stands still.
        set(&[(2, 0, 4), (2, 3, 1)]);
        histogram.fold();
        let second = exported(&meters, &exporter);
        assert_eq!(second[""], (8, vec![7, 0, 0, 0, 1]));
        assert_eq!(second["c7"], (5, vec![0, 0, 5, 0, 0]));
    }

    #[test]
    fn each_slot_lands_in_the_bucket_of_its_values() {
        for scale in [1.0, exported_unit("us").1, exported_unit("ms").1] {
            slots_land_in_their_buckets(scale);
        }
    }

    fn slots_land_in_their_buckets(scale: f64) {
        let bounds = bounds(HIST_SLOTS, scale);
        // Slot k's values [2^k, 2^(k+1)) go to the bucket whose upper bound is 2^(k+1); slot 0
        // (0 and 1) to the first bucket, `le = 1`.
        let bucket = |value: f64| {
            bounds
                .iter()
                .position(|b| value <= *b)
                .unwrap_or(bounds.len())
        };
        assert_eq!(bucket(slot_middle(0) * scale), 0);
        for slot in 1..HIST_SLOTS - 1 {
            assert_eq!(bucket(slot_middle(slot) * scale), slot + 1, "slot {slot}");
            assert_eq!(bounds[slot + 1], (1u64 << (slot + 1)) as f64 * scale);
        }
    }
}
