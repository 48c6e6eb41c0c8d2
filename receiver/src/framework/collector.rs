//! Metric collectors: the seeds' `metrics` mode, passive reads of procfs turned into OTel metrics.
//!
//! A collector is a [`Tracer`] of kind [`TracerKind::Metrics`], so the supervisor gives it what
//! every tracer has: `probe` output, status, restart after a failure, isolation from the others.
//! Each cycle reads every source of the collector once into a [`Points`] snapshot; the collector's
//! observable instruments report the latest snapshot at each export, so several exporters never
//! cause several reads. Instrument kind and unit come from the metric's entry in `huatuo_semconv`,
//! the one place names are defined.
//!
//! Collectors of per-cgroup files fit the same shape: `collect` is given the roots (procfs, sysfs)
//! and yields points whose attributes are bounded (device, interface, container; never pid or
//! address).

use super::{RunError, Tracer, TracerContext, TracerKind, Unsupported};
use crate::kernel::{KernelEnv, Roots};
use crate::telemetry::Telemetry;
use futures::future::BoxFuture;
use huatuo_config::Config;
use huatuo_semconv::{collector as names, Kind};
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// A metric value as read: kernel counters are integers, times and ratios fractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(u64),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(v) => v as f64,
            Number::Float(v) => v,
        }
    }

    fn as_u64(self) -> u64 {
        match self {
            Number::Int(v) => v,
            Number::Float(v) => v as u64,
        }
    }

    fn as_i64(self) -> i64 {
        match self {
            Number::Int(v) => v.min(i64::MAX as u64) as i64,
            Number::Float(v) => v as i64,
        }
    }
}

impl From<u64> for Number {
    fn from(v: u64) -> Self {
        Number::Int(v)
    }
}

impl From<f64> for Number {
    fn from(v: f64) -> Self {
        Number::Float(v)
    }
}

/// The data points of one collection cycle, by metric name.
#[derive(Debug, Default, Clone)]
pub struct Points {
    series: HashMap<&'static str, Vec<(Number, Vec<KeyValue>)>>,
}

impl Points {
    pub fn add(
        &mut self,
        metric: &'static str,
        value: impl Into<Number>,
        attributes: Vec<KeyValue>,
    ) {
        self.series
            .entry(metric)
            .or_default()
            .push((value.into(), attributes));
    }

    /// Number of data points.
    pub fn len(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn metric_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.series.keys().copied()
    }

    pub fn of(&self, metric: &str) -> &[(Number, Vec<KeyValue>)] {
        self.series.get(metric).map_or(&[], Vec::as_slice)
    }

    /// The value of the point of `metric` whose attributes include every pair of `filter`
    /// (values compared as strings); `None` when there is none or several.
    pub fn value(&self, metric: &str, filter: &[(&str, &str)]) -> Option<f64> {
        let mut matching = self.of(metric).iter().filter(|(_, attributes)| {
            filter.iter().all(|(key, value)| {
                attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == *key && kv.value.as_str() == *value)
            })
        });
        let (value, _) = matching.next()?;
        matching.next().is_none().then_some(value.as_f64())
    }
}

/// One collector: a source (or a few files read together) and the metrics made from it.
pub trait Collector: Send + Sync + 'static {
    /// Carried from one cycle to the next, e.g. the previous counters a utilisation is derived
    /// from. Kept across restarts.
    type State: Default + Send + 'static;
    /// Name in the configuration (`[collectors.NAME]`), in `probe` output and in status metrics.
    const NAME: &'static str;
    /// Every metric it may report; each must be registered in `huatuo_semconv`.
    const METRICS: &'static [&'static str];

    fn enabled(config: &Config) -> bool;
    /// Files it cannot work without, relative to the procfs root, with why one may be missing.
    fn required(&self) -> &'static [(&'static str, &'static str)];
    /// Called with the agent's telemetry before the first cycle (and again after a restart):
    /// per-container collectors take its attributor from there.
    fn bind(&self, _telemetry: &Arc<Telemetry>) {}
    /// Reads the sources once and adds the points.
    fn collect(
        &self,
        config: &Config,
        roots: &Roots,
        state: &mut Self::State,
        out: &mut Points,
    ) -> anyhow::Result<()>;
}

/// A [`Collector`] run as a supervised tracer.
pub struct CollectorTracer<C: Collector> {
    collector: C,
    state: Mutex<C::State>,
    latest: Arc<Mutex<Points>>,
    stats: Arc<CollectorStats>,
    board: CollectorBoard,
}

impl<C: Collector> CollectorTracer<C> {
    pub fn new(collector: C, board: &CollectorBoard) -> Self {
        Self {
            collector,
            state: Mutex::default(),
            latest: Arc::default(),
            stats: Arc::new(CollectorStats {
                name: C::NAME,
                ..Default::default()
            }),
            board: board.clone(),
        }
    }

    /// One cycle: read, then publish the points (or nothing, when the read failed, so a stale
    /// value is never exported as current).
    fn cycle(&self, config: &Config, roots: &Roots) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut points = Points::default();
        let result = self
            .collector
            .collect(config, roots, &mut lock(&self.state), &mut points);
        self.stats
            .last_duration_ns
            .store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        match result {
            Ok(()) => {
                self.stats
                    .last_points
                    .store(points.len() as u64, Ordering::Relaxed);
                *lock(&self.latest) = points;
                Ok(())
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.stats.last_points.store(0, Ordering::Relaxed);
                *lock(&self.latest) = Points::default();
                Err(e)
            }
        }
    }

    fn register_instrument(&self, meter: &Meter, metric: &'static str) {
        let entry = huatuo_semconv::registry()
            .find(|n| n.name == metric && n.kind == Kind::Metric)
            .unwrap_or_else(|| panic!("{}: metric {metric} is not registered", C::NAME));
        let (instrument, unit) = entry.shape.split_once(' ').unwrap_or((entry.shape, ""));
        let description = entry.brief.trim();
        let latest = self.latest.clone();
        // Each instrument reports its metric's points from the latest snapshot.
        macro_rules! observable {
            ($builder:ident, $convert:ident) => {
                meter
                    .$builder(metric)
                    .with_description(description)
                    .with_unit(unit)
                    .with_callback(move |observer| {
                        for (value, attributes) in lock(&latest).of(metric) {
                            observer.observe(value.$convert(), attributes);
                        }
                    })
                    .build()
            };
        }
        // Seconds are fractional; counts, bytes and pages are integers; gauges may be either.
        match (instrument, unit == "s") {
            ("counter", true) => {
                observable!(f64_observable_counter, as_f64);
            }
            ("counter", false) => {
                observable!(u64_observable_counter, as_u64);
            }
            ("updowncounter", _) => {
                observable!(i64_observable_up_down_counter, as_i64);
            }
            ("gauge", _) => {
                observable!(f64_observable_gauge, as_f64);
            }
            _ => panic!("{metric}: unknown instrument in shape {:?}", entry.shape),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<C: Collector> Tracer for CollectorTracer<C> {
    fn name(&self) -> &'static str {
        C::NAME
    }

    fn kind(&self) -> TracerKind {
        TracerKind::Metrics
    }

    fn enabled(&self, config: &Config) -> bool {
        C::enabled(config)
    }

    fn restart_backoff(&self, config: &Config) -> Duration {
        config.collectors.restart_backoff()
    }

    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        for (file, why) in self.collector.required() {
            let path = kernel.roots.procfs.join(file);
            if !path.exists() {
                return Err(Unsupported(format!("{} missing ({why})", path.display())));
            }
        }
        Ok(())
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        for metric in C::METRICS {
            self.register_instrument(&telemetry.meter, metric);
        }
        self.board.add(self.stats.clone(), &telemetry.meter);
    }

    fn run(self: Arc<Self>, ctx: TracerContext) -> BoxFuture<'static, Result<(), RunError>> {
        Box::pin(async move {
            let config = &ctx.config;
            let interval = config
                .collectors
                .interval(config.exporters.metrics_interval_secs);
            self.collector.bind(&ctx.telemetry);
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return Ok(()),
                    _ = ticker.tick() => {}
                }
                let roots = &ctx.kernel.roots;
                self.cycle(config, roots).map_err(|e| {
                    let procfs = roots.procfs.display();
                    RunError::Failed(
                        e.context(format!("collector {} (procfs at {procfs})", C::NAME)),
                    )
                })?;
            }
        })
    }
}

/// Per-collector accounting, exported as `huatuo.collector.*`.
#[derive(Default)]
pub struct CollectorStats {
    name: &'static str,
    last_duration_ns: AtomicU64,
    last_points: AtomicU64,
    errors: AtomicU64,
}

/// The collectors that run, for the self-metrics: instruments are registered once, by the first
/// collector that starts, and report every collector added since.
#[derive(Clone, Default)]
pub struct CollectorBoard {
    entries: Arc<Mutex<Vec<Arc<CollectorStats>>>>,
    registered: Arc<OnceLock<()>>,
}

impl CollectorBoard {
    fn add(&self, stats: Arc<CollectorStats>, meter: &Meter) {
        lock(&self.entries).push(stats);
        self.registered.get_or_init(|| self.register(meter));
    }

    fn register(&self, meter: &Meter) {
        let gauge = |name: &'static str,
                     description: &'static str,
                     unit: &'static str,
                     value: fn(&CollectorStats) -> f64| {
            let entries = self.entries.clone();
            meter
                .f64_observable_gauge(name)
                .with_description(description)
                .with_unit(unit)
                .with_callback(move |observer| {
                    for e in lock(&entries).iter() {
                        observer.observe(value(e), &[KeyValue::new(names::COLLECTOR_NAME, e.name)]);
                    }
                })
                .build();
        };
        gauge(
            names::COLLECTOR_DURATION,
            "Wall time of the collector's last collection cycle",
            "s",
            |e| e.last_duration_ns.load(Ordering::Relaxed) as f64 / 1e9,
        );
        gauge(
            names::COLLECTOR_POINTS,
            "Data points the collector's last successful cycle produced",
            "{point}",
            |e| e.last_points.load(Ordering::Relaxed) as f64,
        );
        let entries = self.entries.clone();
        meter
            .u64_observable_counter(names::COLLECTOR_ERRORS)
            .with_description("Failed collection cycles, by collector")
            .with_unit("{error}")
            .with_callback(move |observer| {
                for e in lock(&entries).iter() {
                    observer.observe(
                        e.errors.load(Ordering::Relaxed),
                        &[KeyValue::new(names::COLLECTOR_NAME, e.name)],
                    );
                }
            })
            .build();
    }
}

#[cfg(test)]
pub mod test_support {
    use super::*;

    /// The directory of a fixture tree captured by `scripts/capture-procfs-fixture`.
    pub fn fixture(name: &str) -> Roots {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name);
        Roots {
            procfs: base.join("proc"),
            sysfs: base.join("sys"),
        }
    }

    /// Runs one cycle of `collector` on `roots` and returns its points, checking that every
    /// metric it reports is declared and registered.
    pub fn collect<C: Collector>(
        collector: &C,
        config: &Config,
        roots: &Roots,
        state: &mut C::State,
    ) -> anyhow::Result<Points> {
        let mut points = Points::default();
        collector.collect(config, roots, state, &mut points)?;
        for name in points.metric_names() {
            assert!(
                C::METRICS.contains(&name),
                "{}: {name} not in METRICS",
                C::NAME
            );
            assert!(
                huatuo_semconv::is_registered(name, Kind::Metric),
                "{name} not registered in semconv"
            );
        }
        Ok(points)
    }

    /// One cycle of a collector without history on a fixture.
    pub fn collect_fixture<C: Collector>(collector: &C, fixture_name: &str) -> Points {
        collect(
            collector,
            &Config::default(),
            &fixture(fixture_name),
            &mut C::State::default(),
        )
        .unwrap()
    }
}
