//! Autotracing: cheap periodic sampling that, when it sees an anomaly, runs one bounded capture of
//! expensive context. A capture is one span from the trigger to the end of the capture, carrying
//! the readings that triggered it; what it captured becomes log records linked to that span.
//!
//! At most one capture per tracer runs at a time, and a target (a container, or the host) that
//! was captured is left alone for the tracer's cooldown. Triggers that do not start a capture are
//! still counted, by outcome.
//!
//! A tracer whose cheap signal is counted in the kernel (waitrate) declares its tracepoint
//! hooks: its object is loaded and attached for as long as the tracer runs, before the first
//! sample, like a metrics tracer's.

use super::event::load_and_attach;
use super::{RunError, TracepointHook, TracerContext, Unsupported, UserCounter};
use crate::attribution::Owner;
use crate::kernel::KernelEnv;
use crate::telemetry::{Event, Telemetry};
use aya::Ebpf;
use huatuo_config::{AutotracerSection, Config};
use huatuo_semconv::{agent as agent_names, autotracing as names};
use opentelemetry::logs::AnyValue;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use tokio::task::JoinHandle;

/// An anomaly seen by sampling.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// A fixed word per kind of anomaly (metric attribute: keep it static).
    pub reason: &'static str,
    /// What the cooldown applies to: a container id, a disk, or `None` for the host.
    pub target: Option<String>,
    /// The cgroup the capture concerns, for attribution of the span.
    pub cgroup_id: Option<u64>,
    pub at: SystemTime,
    /// The readings and thresholds that made it an anomaly.
    pub attributes: Vec<(&'static str, AnyValue)>,
}

/// What a capture found.
#[derive(Default)]
pub struct Capture {
    /// Added to the capture's span.
    pub attributes: Vec<(&'static str, AnyValue)>,
    /// Emitted as log records linked to the span.
    pub events: Vec<Event>,
}

pub trait Autotracer: Send + Sync + Sized + 'static {
    const NAME: &'static str;
    /// Name of the capture spans.
    const SPAN: &'static str;
    type Section: AutotracerSection + Clone + Send + Sync + 'static;
    /// What sampling remembers between samples (a sliding window, previous counters...).
    type Sampler: Send;

    /// Tracepoints whose programs run for as long as the tracer does, all attached or the
    /// tracer does not run; none for tracers that only sample procfs or cgroupfs.
    const HOOKS: &'static [TracepointHook] = &[];

    fn section(config: &Config) -> &Self::Section;

    /// The tracer's cooldowns and running capture, kept on the tracer object so that they
    /// outlive one run.
    fn captures(&self) -> &Captures;

    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        Self::HOOKS.iter().try_for_each(|hook| hook.probe(kernel))
    }

    /// See [`super::Tracer::probe_detail`].
    fn probe_detail(&self, _kernel: &KernelEnv) -> String {
        String::new()
    }

    /// See [`super::Tracer::register_metrics`].
    fn register_metrics(&self, _telemetry: &Telemetry) {}

    /// Loads the object carrying the programs of [`Autotracer::HOOKS`] (only called when there
    /// are some).
    fn load(&self, _ctx: &TracerContext) -> Result<Ebpf, RunError> {
        Err(RunError::Failed(anyhow::anyhow!(
            "{} declares hooks but loads no object",
            Self::NAME
        )))
    }

    /// Called once the hooks are attached, before the first sample: takes the maps that
    /// sampling and captures read.
    fn start(&self, _ebpf: &mut Ebpf, _ctx: &TracerContext) -> anyhow::Result<()> {
        Ok(())
    }

    /// Called after the last sample and capture, before the maps go away.
    fn stop(&self) {}

    fn sampler(&self, section: &Self::Section) -> anyhow::Result<Self::Sampler>;

    /// Takes one sample; returns the anomalies it shows, most severe first. An error fails the
    /// tracer (it is restarted after its back-off).
    fn sample(
        &self,
        sampler: &mut Self::Sampler,
        section: &Self::Section,
    ) -> anyhow::Result<Vec<Trigger>>;

    /// Captures context for `trigger`, bounded in time and size by the tracer. Runs on a blocking
    /// thread: procfs reads and waits are fine here.
    fn capture(&self, trigger: &Trigger, section: &Self::Section) -> anyhow::Result<Capture>;
}

/// Implements [`super::Tracer`] for an [`Autotracer`]; like `event_tracer!`, logs "attached"
/// from the tracer's own module.
macro_rules! autotracer {
    ($tracer:ty) => {
        $crate::framework::sectioned_tracer!($tracer, Autotracer, Autotracing, |tracer, ctx| {
            $crate::framework::run_autotracer(tracer, ctx, |attach| {
                tracing::info!(
                    tracer = <$tracer as $crate::framework::Autotracer>::NAME,
                    attach,
                    "attached"
                )
            })
        });
    };
}
pub(crate) use autotracer;

/// The latest value of a host-wide reading, exported as an observable gauge; none until the
/// first sample.
#[derive(Clone)]
pub struct Reading(Arc<std::sync::atomic::AtomicU64>);

impl Default for Reading {
    fn default() -> Self {
        Self(Arc::new(std::sync::atomic::AtomicU64::new(
            f64::NAN.to_bits(),
        )))
    }
}

impl Reading {
    pub fn set(&self, value: f64) {
        self.0
            .store(value.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<f64> {
        Some(f64::from_bits(
            self.0.load(std::sync::atomic::Ordering::Relaxed),
        ))
        .filter(|v| v.is_finite())
    }

    /// Registers the gauge `name` reporting this reading.
    pub fn register(
        &self,
        telemetry: &Telemetry,
        name: &'static str,
        description: &'static str,
        unit: &'static str,
    ) {
        let reading = self.clone();
        telemetry
            .meter
            .f64_observable_gauge(name)
            .with_description(description)
            .with_unit(unit)
            .with_callback(move |observer| {
                if let Some(value) = reading.get() {
                    observer.observe(value, &[]);
                }
            })
            .build();
    }
}

/// What an autotracer remembers across restarts: a sampling error restarts the tracer after its
/// back-off, and forgetting here would repeat a capture at every back-off instead of once per
/// cooldown, or start one beside a capture still running.
#[derive(Default)]
pub struct Captures {
    /// When each target was last captured.
    captured_at: Mutex<HashMap<Option<String>, Instant>>,
    running: Mutex<Option<JoinHandle<()>>>,
}

static TRIGGERS: UserCounter = UserCounter::new(
    names::TRIGGERS,
    "Anomalies detected by autotracing tracers, by outcome",
    "{trigger}",
);

/// Attaches the tracer's hooks if it has any, then samples every interval until cancelled,
/// starting a capture per trigger that is neither in cooldown nor behind a running capture.
pub async fn run_autotracer<T: Autotracer>(
    tracer: Arc<T>,
    ctx: TracerContext,
    log_attached: impl FnOnce(&str),
) -> Result<(), RunError> {
    if T::HOOKS.is_empty() {
        log_attached("sampling");
        return sample_until_cancelled(tracer, &ctx).await;
    }
    let (mut attached, loading) =
        load_and_attach(&ctx, T::HOOKS, &[], || tracer.load(&ctx)).await?;
    let started = tracer.start(&mut attached.ebpf, &ctx);
    loading.release();
    let result = match started {
        Ok(()) => {
            log_attached(&format!("sampling,{}", attached.modes));
            sample_until_cancelled(tracer.clone(), &ctx).await
        }
        Err(e) => Err(RunError::Failed(e)),
    };
    tracer.stop();
    attached.detach(&ctx);
    result
}

async fn sample_until_cancelled<T: Autotracer>(
    tracer: Arc<T>,
    ctx: &TracerContext,
) -> Result<(), RunError> {
    let section = T::section(&ctx.config).clone();
    let mut sampler = tracer.sampler(&section)?;
    let triggers = TRIGGERS.get(&ctx.telemetry.meter);
    let captures = tracer.captures();
    let mut ticks = tokio::time::interval(section.interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => break Ok(()),
            _ = ticks.tick() => {}
        }
        let now = Instant::now();
        let triggered = match tracer.sample(&mut sampler, &section) {
            Ok(triggers) => triggers,
            Err(e) => break Err(RunError::Failed(e)),
        };
        let mut captured_at = captures
            .captured_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut running = captures.running.lock().unwrap_or_else(|e| e.into_inner());
        captured_at.retain(|_, at| now.duration_since(*at) < section.cooldown());
        for trigger in triggered {
            let outcome = if running.as_ref().is_some_and(|c| !c.is_finished()) {
                "busy"
            } else if captured_at.contains_key(&trigger.target) {
                "cooldown"
            } else {
                captured_at.insert(trigger.target.clone(), now);
                *running = Some(start_capture(&tracer, ctx, &section, trigger.clone()));
                "captured"
            };
            ctx.stats.record_received();
            triggers.add(
                1,
                &[
                    KeyValue::new(agent_names::TRACER_NAME, T::NAME),
                    KeyValue::new(names::REASON, trigger.reason),
                    KeyValue::new(names::OUTCOME, outcome),
                ],
            );
        }
    };
    // A capture is bounded; let it finish so its span and records are not lost (and, for a
    // tracer with hooks, before its maps go away).
    let running = captures
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(capture) = running {
        let _ = capture.await;
    }
    result
}

fn start_capture<T: Autotracer>(
    tracer: &Arc<T>,
    ctx: &TracerContext,
    section: &T::Section,
    trigger: Trigger,
) -> JoinHandle<()> {
    let mut attributes = trigger.attributes.clone();
    attributes.push((names::REASON, trigger.reason.into()));
    let owner = trigger.cgroup_id.map_or_else(Owner::default, Owner::cgroup);
    let span = ctx
        .telemetry
        .start_capture(T::SPAN, T::NAME, trigger.at, attributes, &owner);
    tracing::info!(tracer = T::NAME, reason = trigger.reason, target = ?trigger.target, "capturing");
    let (tracer, section, telemetry) = (tracer.clone(), section.clone(), ctx.telemetry.clone());
    tokio::spawn(async move {
        let captured =
            tokio::task::spawn_blocking(move || tracer.capture(&trigger, &section)).await;
        match captured {
            Ok(Ok(capture)) => {
                for event in capture.events {
                    telemetry.emit_in(&span, event);
                }
                span.end(capture.attributes, None);
            }
            Ok(Err(e)) => {
                tracing::warn!(tracer = T::NAME, error = %e, "capture failed");
                span.end(Vec::new(), Some(format!("capture failed: {e:#}")));
            }
            Err(e) => span.end(Vec::new(), Some(format!("capture panicked: {e}"))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::TracerStats;
    use huatuo_config::MemburstConfig;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    /// Sees an anomaly at every sample; a capture takes `capture_for`. With `fail_every` n, every
    /// nth sample fails instead, which restarts the tracer.
    #[derive(Default)]
    struct Always {
        capture_for: Duration,
        fail_every: Option<u32>,
        samples: AtomicU32,
        captures: Captures,
    }

    impl Autotracer for Always {
        const NAME: &'static str = "always";
        const SPAN: &'static str = "always.capture";
        type Section = MemburstConfig;
        type Sampler = ();

        fn section(config: &Config) -> &MemburstConfig {
            &config.tracers.memburst
        }

        fn sampler(&self, _section: &MemburstConfig) -> anyhow::Result<()> {
            Ok(())
        }

        fn captures(&self) -> &Captures {
            &self.captures
        }

        fn sample(&self, _: &mut (), _: &MemburstConfig) -> anyhow::Result<Vec<Trigger>> {
            let n = self.samples.fetch_add(1, Ordering::Relaxed) + 1;
            if self.fail_every.is_some_and(|every| n.is_multiple_of(every)) {
                anyhow::bail!("sample {n} fails");
            }
            Ok(vec![Trigger {
                reason: "always",
                target: None,
                cgroup_id: None,
                at: SystemTime::now(),
                attributes: Vec::new(),
            }])
        }

        fn capture(&self, _: &Trigger, _: &MemburstConfig) -> anyhow::Result<Capture> {
            std::thread::sleep(self.capture_for);
            Ok(Capture::default())
        }
    }

    struct Harness {
        metrics: InMemoryMetricExporter,
        spans: InMemorySpanExporter,
        meters: SdkMeterProvider,
        ctx: TracerContext,
    }

    fn harness() -> Harness {
        let metrics = InMemoryMetricExporter::default();
        let spans = InMemorySpanExporter::default();
        let meters = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(metrics.clone()).build())
            .build();
        let providers = huatuo_exporters::Providers {
            logs: opentelemetry_sdk::logs::SdkLoggerProvider::builder().build(),
            metrics: meters.clone(),
            traces: SdkTracerProvider::builder()
                .with_simple_exporter(spans.clone())
                .build(),
            prometheus: None,
            delivery: None,
        };
        let mut config = Config::default();
        config.tracers.memburst.interval_secs = 1;
        let ctx = TracerContext {
            config: Arc::new(config),
            kernel: Arc::new(KernelEnv::detect()),
            telemetry: Arc::new(Telemetry::new(
                &providers,
                crate::attribution::Attributor::new(&Default::default(), None),
            )),
            stats: Arc::new(TracerStats::default()),
            cancel: CancellationToken::new(),
        };
        Harness {
            metrics,
            spans,
            meters,
            ctx,
        }
    }

    /// Triggers counted so far, by outcome.
    fn outcomes(harness: &Harness) -> HashMap<String, u64> {
        harness.meters.force_flush().unwrap();
        let mut outcomes = HashMap::new();
        for resource in harness.metrics.get_finished_metrics().unwrap() {
            for metric in resource.scope_metrics().flat_map(|s| s.metrics()) {
                let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() else {
                    continue;
                };
                for point in sum.data_points() {
                    let outcome = point
                        .attributes()
                        .find(|kv| kv.key.as_str() == names::OUTCOME)
                        .map(|kv| kv.value.to_string())
                        .unwrap();
                    outcomes.insert(outcome, point.value());
                }
            }
        }
        outcomes
    }

    // One test: the trigger counter is a process-wide instrument bound to the first meter asking
    // for it, so a second test's meter would see nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_capture_at_a_time_and_none_during_the_cooldown_even_across_restarts() {
        let harness = harness();
        let cancel = CancellationToken::new();
        let ctx = TracerContext {
            cancel: cancel.clone(),
            ..harness.ctx.clone()
        };
        let tracer = Arc::new(Always {
            capture_for: Duration::from_millis(2500),
            ..Default::default()
        });
        let run = tokio::spawn(run_autotracer(tracer, ctx, |_| {}));
        // Samples at 0, 1, 2, 3, 4.5 s: captured, busy, busy, cooldown, cooldown.
        tokio::time::sleep(Duration::from_millis(4500)).await;
        cancel.cancel();
        run.await.unwrap().unwrap();

        assert_eq!(harness.spans.get_finished_spans().unwrap().len(), 1);
        let first = outcomes(&harness);
        assert_eq!(first.get("captured"), Some(&1), "{first:?}");
        assert!(first.get("busy").is_some_and(|n| *n >= 1), "{first:?}");
        assert!(first.get("cooldown").is_some_and(|n| *n >= 1), "{first:?}");

        // Every second sample fails: each run samples once (a trigger) and then fails, as a
        // tracer the supervisor restarts would.
        let tracer = Arc::new(Always {
            fail_every: Some(2),
            ..Default::default()
        });
        for _ in 0..3 {
            let run = run_autotracer(tracer.clone(), harness.ctx.clone(), |_| {});
            let result = tokio::time::timeout(Duration::from_secs(10), run).await;
            assert!(
                matches!(result, Ok(Err(_))),
                "the second sample fails the run"
            );
        }
        let after = outcomes(&harness);
        let added =
            |outcome: &str| after.get(outcome).unwrap_or(&0) - first.get(outcome).unwrap_or(&0);
        assert_eq!(added("captured"), 1, "{first:?} then {after:?}");
        assert_eq!(added("cooldown"), 2, "{first:?} then {after:?}");
        assert_eq!(harness.spans.get_finished_spans().unwrap().len(), 2);
    }
}
