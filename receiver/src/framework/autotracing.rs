//! Autotracing: cheap periodic sampling that, when it sees an anomaly, runs one bounded capture of
//! expensive context. A capture is one span from the trigger to the end of the capture, carrying
//! the readings that triggered it; what it captured becomes log records linked to that span.
//!
//! At most one capture per tracer runs at a time, and a target (a container, or the host) that
//! was captured is left alone for the tracer's cooldown. Triggers that do not start a capture are
//! still counted, by outcome.

use super::{RunError, TracerContext, Unsupported, UserCounter};
use crate::attribution::Owner;
use crate::kernel::KernelEnv;
use crate::telemetry::{Event, Telemetry};
use huatuo_config::{AutotracerSection, Config};
use huatuo_semconv::{agent as agent_names, autotracing as names};
use opentelemetry::logs::AnyValue;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::task::JoinHandle;

/// An anomaly seen by sampling.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// A fixed word per kind of anomaly (metric attribute: keep it static).
    pub reason: &'static str,
    /// What the cooldown applies to: a container id, or `None` for the host.
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

    fn section(config: &Config) -> &Self::Section;

    fn probe(&self, _kernel: &KernelEnv) -> Result<(), Unsupported> {
        Ok(())
    }

    /// See [`super::Tracer::probe_detail`].
    fn probe_detail(&self, _kernel: &KernelEnv) -> String {
        String::new()
    }

    /// See [`super::Tracer::register_metrics`].
    fn register_metrics(&self, _telemetry: &Telemetry) {}

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
            async move {
                tracing::info!(
                    tracer = <$tracer as $crate::framework::Autotracer>::NAME,
                    attach = "sampling",
                    "attached"
                );
                $crate::framework::run_autotracer(tracer, ctx).await
            }
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

static TRIGGERS: UserCounter = UserCounter::new(
    names::TRIGGERS,
    "Anomalies detected by autotracing tracers, by outcome",
    "{trigger}",
);

/// Samples every interval until cancelled, starting a capture per trigger that is neither in
/// cooldown nor behind a running capture.
pub async fn run_autotracer<T: Autotracer>(
    tracer: Arc<T>,
    ctx: TracerContext,
) -> Result<(), RunError> {
    let section = T::section(&ctx.config).clone();
    let mut sampler = tracer.sampler(&section)?;
    let triggers = TRIGGERS.get(&ctx.telemetry.meter);
    let mut captured_at: HashMap<Option<String>, Instant> = HashMap::new();
    let mut running: Option<JoinHandle<()>> = None;
    let mut ticks = tokio::time::interval(section.interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let now = Instant::now();
        captured_at.retain(|_, at| now.duration_since(*at) < section.cooldown());
        for trigger in tracer.sample(&mut sampler, &section)? {
            let outcome = if running.as_ref().is_some_and(|c| !c.is_finished()) {
                "busy"
            } else if captured_at.contains_key(&trigger.target) {
                "cooldown"
            } else {
                captured_at.insert(trigger.target.clone(), now);
                running = Some(start_capture(&tracer, &ctx, &section, trigger.clone()));
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
    }
    // A capture is bounded; let it finish so its span and records are not lost.
    if let Some(capture) = running {
        let _ = capture.await;
    }
    Ok(())
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
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    /// Sees an anomaly at every sample; a capture takes 2.5 samples.
    struct Always;

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

        fn sample(&self, _: &mut (), _: &MemburstConfig) -> anyhow::Result<Vec<Trigger>> {
            Ok(vec![Trigger {
                reason: "always",
                target: None,
                cgroup_id: None,
                at: SystemTime::now(),
                attributes: Vec::new(),
            }])
        }

        fn capture(&self, _: &Trigger, _: &MemburstConfig) -> anyhow::Result<Capture> {
            std::thread::sleep(Duration::from_millis(2500));
            Ok(Capture::default())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_capture_at_a_time_and_none_during_the_cooldown() {
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
        let cancel = ctx.cancel.clone();
        let run = tokio::spawn(run_autotracer(Arc::new(Always), ctx));
        // Samples at 0, 1, 2, 3, 4.5 s: captured, busy, busy, cooldown, cooldown.
        tokio::time::sleep(Duration::from_millis(4500)).await;
        cancel.cancel();
        run.await.unwrap().unwrap();

        assert_eq!(spans.get_finished_spans().unwrap().len(), 1);
        meters.force_flush().unwrap();
        let mut outcomes = HashMap::new();
        for resource in metrics.get_finished_metrics().unwrap() {
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
        assert_eq!(outcomes.get("captured"), Some(&1), "{outcomes:?}");
        assert!(
            outcomes.get("busy").is_some_and(|n| *n >= 1),
            "{outcomes:?}"
        );
        assert!(
            outcomes.get("cooldown").is_some_and(|n| *n >= 1),
            "{outcomes:?}"
        );
    }
}
