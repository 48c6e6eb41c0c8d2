//! Exporters of huatuo-otel and the one place that builds the OpenTelemetry SDK providers.
//!
//! Two destinations, usable together: local OTLP-JSON files ([`file`], the default that needs no
//! collector) and OTLP over gRPC or HTTP/protobuf ([`otlp`]). Each enabled destination gets its own
//! batch processor (logs, spans) and periodic reader (metrics), so a slow collector never holds up
//! the files. Metrics can also be pulled by Prometheus ([`prometheus`]), through a reader of its
//! own on the same meter provider.

mod delivery;
mod event_names;
pub mod file;
pub mod otlp;
mod otlp_json;
pub mod prometheus;
mod queue;
mod replay;
mod spool;
pub mod tls;

use anyhow::{anyhow, bail};
use delivery::Signal;
use huatuo_config::ExportersConfig;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    BatchConfigBuilder as LogBatchConfigBuilder, BatchLogProcessor, LogExporter, LogProcessor,
    SdkLoggerProvider,
};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder as SpanBatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider,
    SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use queue::{
    BoundedLogProcessor, BoundedSpanProcessor, QueueBound, ReleasingLogExporter,
    ReleasingSpanExporter,
};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Scope of the agent's own instruments.
const SCOPE: &str = "huatuo-otel";

/// The SDK bounds each processor's flush at about 5 s; this only guards against a flush that
/// never returns at all.
const FORCE_FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// The three SDK providers, wired to every enabled exporter.
///
/// Call [`Providers::shutdown`] before the tokio runtime ends: the gRPC exporters need it to
/// deliver what is still queued.
#[derive(Debug)]
pub struct Providers {
    pub logs: SdkLoggerProvider,
    pub metrics: SdkMeterProvider,
    pub traces: SdkTracerProvider,
    /// The Prometheus pull endpoint, when enabled.
    pub prometheus: Option<prometheus::Endpoint>,
    /// The OTLP spool and its replay, when OTLP is enabled.
    pub delivery: Option<Delivery>,
}

/// What keeps OTLP log and span batches that the collector did not take: see [`delivery`].
#[derive(Debug)]
pub struct Delivery {
    fallback: delivery::Fallback,
    replayer: Mutex<Option<replay::Replayer>>,
}

/// Builds the logger, meter and tracer providers for `config`, all sharing `resource`.
///
/// Call it inside a multi-thread tokio runtime, and keep that runtime alive until
/// [`Providers::shutdown`] returns: OTLP/gRPC needs it (tonic's channel lives on it), which is
/// checked and reported as an error. The file and HTTP exporters run on the SDK's own threads and
/// would work without one. Configuration mistakes (unwritable directory, bad endpoint or header)
/// are returned here, naming the configuration key or path.
pub fn build_providers(config: &ExportersConfig, resource: Resource) -> anyhow::Result<Providers> {
    if !config.file.enabled && !config.otlp.enabled {
        bail!("exporters: no exporter is enabled: enable exporters.file or exporters.otlp");
    }
    // Every exporter is built before any processor: a processor starts a thread, and a later
    // configuration error should not leave threads of a half-built pipeline behind.
    let file = if config.file.enabled {
        Some((
            file::FileLogExporter::new(&config.file)?,
            file::FileSpanExporter::new(&config.file)?,
            file::FileMetricExporter::new(&config.file)?,
        ))
    } else {
        None
    };
    // Drops anywhere in the export pipeline, whichever destination.
    let stats = Arc::new(delivery::DeliveryStats::default());
    let otlp = if config.otlp.enabled {
        let spool = if config.otlp.spool.enabled {
            Some(spool::Spool::open(&config.otlp.spool, stats.clone())?)
        } else {
            None
        };
        let fallback = delivery::Fallback {
            spool,
            stats: stats.clone(),
            deadline: Arc::default(),
        };
        Some((
            delivery::SpoolingLogExporter::new(otlp::log_exporter(&config.otlp)?, fallback.clone()),
            delivery::SpoolingSpanExporter::new(
                otlp::span_exporter(&config.otlp)?,
                fallback.clone(),
            ),
            otlp::metric_exporter(&config.otlp)?,
            fallback,
        ))
    } else {
        None
    };
    let prometheus = if config.prometheus.enabled {
        Some(prometheus::prepare(&config.prometheus)?)
    } else {
        None
    };

    if config.file.enabled {
        tracing::info!(
            directory = %config.file.directory.display(),
            "exporting to OTLP-JSON files"
        );
    }
    if config.otlp.enabled {
        // Headers are left out: they often carry credentials.
        tracing::info!(
            endpoint = %config.otlp.endpoint,
            protocol = ?config.otlp.protocol,
            "exporting over OTLP"
        );
    }

    // Processors run in order: the guard must see records before any exporter does.
    let mut logs = SdkLoggerProvider::builder()
        .with_resource(resource.clone())
        .with_log_processor(event_names::EventNameGuard);
    let mut traces = SdkTracerProvider::builder().with_resource(resource.clone());
    let mut metrics = SdkMeterProvider::builder().with_resource(resource);
    if let Some((log_exporter, span_exporter, metric_exporter)) = file {
        logs = logs.with_log_processor(log_processor(log_exporter, config, &stats));
        traces = traces.with_span_processor(span_processor(span_exporter, config, &stats));
        metrics = metrics.with_reader(metric_reader(metric_exporter, config));
    }
    let mut fallback = None;
    if let Some((log_exporter, span_exporter, metric_exporter, otlp_fallback)) = otlp {
        logs = logs.with_log_processor(log_processor(log_exporter, config, &stats));
        traces = traces.with_span_processor(span_processor(span_exporter, config, &stats));
        metrics = metrics.with_reader(metric_reader(metric_exporter, config));
        fallback = Some(otlp_fallback);
    }
    let prometheus = match prometheus {
        Some((reader, server)) => {
            metrics = metrics.with_reader(reader);
            Some(server.serve()?)
        }
        None => None,
    };
    let metrics = metrics.build();
    stats.register(
        &metrics.meter(SCOPE),
        config.otlp.enabled && config.otlp.spool.enabled,
    );
    let delivery = match fallback {
        Some(fallback) => {
            let replayer = match &fallback.spool {
                Some(spool) => Some(replay::Replayer::start(
                    spool.clone(),
                    otlp::Settings::from_config(&config.otlp)?,
                    Duration::from_secs(config.otlp.spool.max_backoff_secs.max(1)),
                )?),
                None => None,
            };
            Some(Delivery {
                fallback,
                replayer: Mutex::new(replayer),
            })
        }
        None => None,
    };
    Ok(Providers {
        logs: logs.build(),
        metrics,
        traces: traces.build(),
        prometheus,
        delivery,
    })
}

/// The logs and trace SDKs each have their own `BatchConfigBuilder`, with the same methods.
///
/// Queue and batch sizes are clamped to 1 because a zero-sized queue would become a rendezvous
/// channel that blocks emitters; `Config::validate` already rejects 0, this is for other callers.
macro_rules! batch_config {
    ($builder:ty, $config:expr) => {
        <$builder>::default()
            .with_max_queue_size($config.max_queue_size.max(1))
            .with_max_export_batch_size($config.max_export_batch_size.max(1))
            .with_scheduled_delay(Duration::from_millis($config.batch_interval_ms))
            .build()
    };
}

/// A batch processor for `exporter`, bounded to `max_queue_size` records in flight with what
/// does not fit counted in `stats`.
fn log_processor<E: LogExporter + 'static>(
    exporter: E,
    config: &ExportersConfig,
    stats: &Arc<delivery::DeliveryStats>,
) -> impl LogProcessor {
    let bound = QueueBound::new(config.max_queue_size, Signal::Logs, stats.clone());
    let batch = BatchLogProcessor::builder(ReleasingLogExporter::new(exporter, bound.clone()))
        .with_batch_config(batch_config!(LogBatchConfigBuilder, config))
        .build();
    BoundedLogProcessor::new(batch, bound)
}

/// Like [`log_processor`], for spans.
fn span_processor<E: SpanExporter + 'static>(
    exporter: E,
    config: &ExportersConfig,
    stats: &Arc<delivery::DeliveryStats>,
) -> impl SpanProcessor {
    let bound = QueueBound::new(config.max_queue_size, Signal::Traces, stats.clone());
    let batch = BatchSpanProcessor::builder(ReleasingSpanExporter::new(exporter, bound.clone()))
        .with_batch_config(batch_config!(SpanBatchConfigBuilder, config))
        .build();
    BoundedSpanProcessor::new(batch, bound)
}

fn metric_reader<E: PushMetricExporter>(
    exporter: E,
    config: &ExportersConfig,
) -> PeriodicReader<E> {
    PeriodicReader::builder(exporter)
        .with_interval(Duration::from_secs(config.metrics_interval_secs.max(1)))
        .build()
}

type Task = (&'static str, Box<dyn FnOnce() -> OTelSdkResult + Send>);

impl Providers {
    /// Flushes and shuts down all three providers, each bounded by `deadline`.
    ///
    /// Log and span batches the collector has not taken by three quarters of `deadline` are
    /// written to the spool instead (when enabled), to be replayed by the next run.
    ///
    /// Safe to call from inside a tokio multi-thread runtime: the SDK's blocking shutdown runs on
    /// separate threads while this thread yields its runtime worker, so the gRPC exporters can
    /// still make progress. A provider that does not finish in time is reported as an error and
    /// left to finish (or not) on its own thread. Calling it twice reports "already shut down".
    pub fn shutdown(&self, deadline: Duration) -> anyhow::Result<()> {
        if let Some(endpoint) = &self.prometheus {
            endpoint.stop();
        }
        if let Some(delivery) = &self.delivery {
            delivery.fallback.deadline.arm(deadline * 3 / 4);
        }
        let (logs, metrics, traces) = self.handles();
        let result = run_bounded(
            "shutting down exporters",
            vec![
                (
                    "logs",
                    Box::new(move || logs.shutdown_with_timeout(deadline)),
                ),
                (
                    "metrics",
                    Box::new(move || metrics.shutdown_with_timeout(deadline)),
                ),
                (
                    "traces",
                    Box::new(move || traces.shutdown_with_timeout(deadline)),
                ),
            ],
            deadline,
        );
        if let Some(delivery) = &self.delivery {
            let replayer = delivery.replayer.lock().map(|mut r| r.take());
            if let Ok(Some(mut replayer)) = replayer {
                replayer.stop(Duration::from_secs(1));
            }
        }
        result
    }

    /// Exports everything buffered so far, without shutting down. Same threading as
    /// [`Providers::shutdown`], bounded at 10 s.
    pub fn force_flush(&self) -> anyhow::Result<()> {
        let (logs, metrics, traces) = self.handles();
        run_bounded(
            "flushing exporters",
            vec![
                ("logs", Box::new(move || logs.force_flush())),
                ("metrics", Box::new(move || metrics.force_flush())),
                ("traces", Box::new(move || traces.force_flush())),
            ],
            FORCE_FLUSH_LIMIT,
        )
    }

    /// Logs what the exporters found at start (spooled batches to replay, corrupted spool
    /// files): call once the agent's logging is set up, which needs the providers first.
    pub fn log_startup(&self) {
        if let Some(spool) = self
            .delivery
            .as_ref()
            .and_then(|d| d.fallback.spool.as_ref())
        {
            spool.log_startup_notes();
        }
    }

    fn handles(&self) -> (SdkLoggerProvider, SdkMeterProvider, SdkTracerProvider) {
        (self.logs.clone(), self.metrics.clone(), self.traces.clone())
    }
}

/// Runs each task on its own thread and waits at most `limit` (plus a little slack for the SDK's
/// own timeout to fire first) for all of them, collecting every failure into one error.
fn run_bounded(what: &str, tasks: Vec<Task>, limit: Duration) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel();
    let mut errors = Vec::new();
    let mut pending = Vec::new();
    for (name, task) in tasks {
        let tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("otel-{name}-drain"))
            .spawn(move || {
                // The receiver may be gone after a timeout; nobody is left to tell.
                let _ = tx.send((name, task()));
            });
        match spawned {
            Ok(_) => pending.push(name),
            Err(e) => errors.push(format!("{name}: cannot start a thread: {e}")),
        }
    }
    drop(tx);

    let wait = || {
        let give_up = Instant::now() + limit + Duration::from_millis(250);
        while !pending.is_empty() {
            let left = give_up.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((name, result)) => {
                    pending.retain(|&p| p != name);
                    if let Err(e) = result {
                        errors.push(format!("{name}: {e}"));
                    }
                }
                Err(_) => {
                    for name in pending.drain(..) {
                        errors.push(format!("{name}: did not finish within {limit:?}"));
                    }
                }
            }
        }
    };
    block_outside_runtime(wait);

    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("{what}: {}", errors.join("; ")))
    }
}

/// Blocks without starving tokio: on a multi-thread runtime worker, `block_in_place` hands this
/// worker's other tasks (such as tonic's connection) to another thread first. Elsewhere blocking
/// is harmless, or (current-thread runtime) bounded by the caller's timeout.
fn block_outside_runtime<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
