//! Delivery that loses nothing silently: the OTLP log and span exporters are wrapped so that a
//! batch whose export finally fails (after opentelemetry-otlp's own retries) goes to the on-disk
//! [spool](crate::spool) instead of being lost, and every loss is counted.
//!
//! While the spool holds batches of a signal, new batches of that signal are spooled behind them
//! without trying the collector, so the replay delivers everything in the order it was produced.

use crate::spool::Spool;
use huatuo_semconv::agent as names;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use prost::Message as _;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Signal {
    Logs = 0,
    Traces = 1,
}

impl Signal {
    pub const ALL: [Signal; 2] = [Signal::Logs, Signal::Traces];

    pub fn name(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "traces",
        }
    }
}

/// What the export pipeline delivered late or lost, per signal; exported as the
/// `huatuo.export.*` metrics.
#[derive(Debug, Default)]
pub(crate) struct DeliveryStats {
    dropped: Mutex<BTreeMap<(Signal, &'static str), u64>>,
    spooled: [AtomicU64; 2],
    replayed: [AtomicU64; 2],
    spool_bytes: AtomicU64,
}

impl DeliveryStats {
    pub fn dropped(&self, signal: Signal, cause: &'static str, records: u64) {
        let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        *dropped.entry((signal, cause)).or_default() += records;
    }

    pub fn spooled(&self, signal: Signal, records: u64) {
        self.spooled[signal as usize].fetch_add(records, Ordering::Relaxed);
    }

    pub fn replayed(&self, signal: Signal, records: u64) {
        self.replayed[signal as usize].fetch_add(records, Ordering::Relaxed);
    }

    pub fn set_spool_bytes(&self, bytes: u64) {
        self.spool_bytes.store(bytes, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub fn dropped_count(&self, signal: Signal, cause: &str) -> u64 {
        let dropped = self.dropped.lock().unwrap();
        dropped
            .iter()
            .filter(|((s, c), _)| *s == signal && *c == cause)
            .map(|(_, n)| n)
            .sum()
    }

    #[cfg(test)]
    pub fn replayed_count(&self, signal: Signal) -> u64 {
        self.replayed[signal as usize].load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub fn spool_bytes(&self) -> u64 {
        self.spool_bytes.load(Ordering::Relaxed)
    }

    /// Registers the `huatuo.export.*` instruments, read from these counters at each collection;
    /// those of the spool only when there is one.
    pub fn register(self: &Arc<Self>, meter: &Meter, spool: bool) {
        let stats = self.clone();
        meter
            .u64_observable_counter(names::EXPORT_DROPPED)
            .with_description("Log records and spans that failed to export and were lost, by cause")
            .with_unit("{record}")
            .with_callback(move |observer| {
                let dropped = stats.dropped.lock().unwrap_or_else(|e| e.into_inner());
                for ((signal, cause), count) in dropped.iter() {
                    observer.observe(
                        *count,
                        &[
                            KeyValue::new(names::EXPORT_SIGNAL, signal.name()),
                            KeyValue::new(names::DROP_CAUSE, *cause),
                        ],
                    );
                }
            })
            .build();
        if !spool {
            return;
        }
        type Counters = fn(&DeliveryStats) -> &[AtomicU64; 2];
        let per_signal: [(&'static str, &'static str, Counters); 2] = [
            (
                names::EXPORT_SPOOLED,
                "Log records and spans written to the on-disk spool",
                |s| &s.spooled,
            ),
            (
                names::EXPORT_REPLAYED,
                "Spooled log records and spans delivered by the replay",
                |s| &s.replayed,
            ),
        ];
        for (name, description, counters) in per_signal {
            let stats = self.clone();
            meter
                .u64_observable_counter(name)
                .with_description(description)
                .with_unit("{record}")
                .with_callback(move |observer| {
                    for signal in Signal::ALL {
                        let count = counters(&stats)[signal as usize].load(Ordering::Relaxed);
                        observer
                            .observe(count, &[KeyValue::new(names::EXPORT_SIGNAL, signal.name())]);
                    }
                })
                .build();
        }
        let stats = self.clone();
        meter
            .i64_observable_up_down_counter(names::EXPORT_SPOOL_USAGE)
            .with_description("Bytes the on-disk spool holds")
            .with_unit("By")
            .with_callback(move |observer| {
                let bytes = stats.spool_bytes.load(Ordering::Relaxed);
                observer.observe(i64::try_from(bytes).unwrap_or(i64::MAX), &[]);
            })
            .build();
    }
}

/// The moment after which exporters stop waiting for the collector and spool at once: set by a
/// graceful shutdown so that what is still queued reaches the disk within its deadline.
#[derive(Debug, Default)]
pub(crate) struct Deadline {
    passed: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Deadline {
    /// Passes after `after`. A thread keeps the time because the SDK's batch processors run
    /// exports on threads of their own, outside any tokio runtime.
    pub fn arm(self: &Arc<Self>, after: Duration) {
        let deadline = self.clone();
        let at = Instant::now() + after;
        let spawned = std::thread::Builder::new()
            .name("otel-spool-deadline".into())
            .spawn(move || {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                deadline.passed.store(true, Ordering::Relaxed);
                deadline.notify.notify_waiters();
            });
        if spawned.is_err() {
            // Without a timer, spool right away rather than risk losing the queue.
            self.passed.store(true, Ordering::Relaxed);
        }
    }

    pub fn passed(&self) -> bool {
        self.passed.load(Ordering::Relaxed)
    }

    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.passed() {
                return;
            }
            notified.await;
        }
    }

    /// Runs `export` unless the deadline has passed, or passes while it runs.
    async fn run(&self, export: impl Future<Output = OTelSdkResult>) -> OTelSdkResult {
        if self.passed() {
            return Err(OTelSdkError::Timeout(Duration::ZERO));
        }
        let export = std::pin::pin!(export);
        let deadline = std::pin::pin!(self.wait());
        match futures::future::select(export, deadline).await {
            futures::future::Either::Left((result, _)) => result,
            futures::future::Either::Right(((), _)) => Err(OTelSdkError::Timeout(Duration::ZERO)),
        }
    }
}

/// Shared by the log and span wrappers: where failed batches go.
#[derive(Debug, Clone)]
pub(crate) struct Fallback {
    /// `None` when `exporters.otlp.spool.enabled` is off: failures are then only counted.
    pub spool: Option<Arc<Spool>>,
    pub stats: Arc<DeliveryStats>,
    pub deadline: Arc<Deadline>,
}

impl Fallback {
    fn must_queue(&self, signal: Signal) -> bool {
        self.spool.as_ref().is_some_and(|s| s.has_pending(signal))
    }

    /// Keeps a batch the collector did not take. Returns an error only when it is lost.
    fn keep(
        &self,
        signal: Signal,
        records: u64,
        why: Option<&OTelSdkError>,
        encode: impl FnOnce() -> Vec<u8>,
    ) -> OTelSdkResult {
        let Some(spool) = &self.spool else {
            self.stats.dropped(signal, "export_failed", records);
            return Err(OTelSdkError::InternalFailure(format!(
                "{} export failed and exporters.otlp.spool is disabled: {records} lost",
                signal.name()
            )));
        };
        if let Some(why) = why {
            spool.note_outage(signal, &why.to_string());
        }
        spool.push(signal, records, &encode()).map_err(|e| {
            tracing::error!("{e:#}");
            OTelSdkError::InternalFailure(format!("{e:#}"))
        })
    }
}

#[derive(Debug)]
pub(crate) struct SpoolingLogExporter<E> {
    inner: E,
    resource: ResourceAttributesWithSchema,
    fallback: Fallback,
}

impl<E> SpoolingLogExporter<E> {
    pub fn new(inner: E, fallback: Fallback) -> Self {
        Self {
            inner,
            resource: ResourceAttributesWithSchema::default(),
            fallback,
        }
    }
}

impl<E: LogExporter> LogExporter for SpoolingLogExporter<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        // LogBatch is consumed by the inner export: keep the references to rebuild it.
        let items: Vec<_> = batch.iter().collect();
        let failure = if self.fallback.must_queue(Signal::Logs) {
            None
        } else {
            match self
                .fallback
                .deadline
                .run(self.inner.export(LogBatch::new(&items)))
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => Some(e),
            }
        };
        self.fallback
            .keep(Signal::Logs, items.len() as u64, failure.as_ref(), || {
                ExportLogsServiceRequest {
                    resource_logs: group_logs_by_resource_and_scope(
                        &LogBatch::new(&items),
                        &self.resource,
                    ),
                }
                .encode_to_vec()
            })
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn event_enabled(
        &self,
        level: opentelemetry::logs::Severity,
        target: &str,
        name: Option<&str>,
    ) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
        self.inner.set_resource(resource);
    }
}

#[derive(Debug)]
pub(crate) struct SpoolingSpanExporter<E> {
    inner: E,
    resource: ResourceAttributesWithSchema,
    fallback: Fallback,
}

impl<E> SpoolingSpanExporter<E> {
    pub fn new(inner: E, fallback: Fallback) -> Self {
        Self {
            inner,
            resource: ResourceAttributesWithSchema::default(),
            fallback,
        }
    }
}

impl<E: SpanExporter> SpanExporter for SpoolingSpanExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let failure = if self.fallback.must_queue(Signal::Traces) {
            None
        } else {
            // Spans are few (one per capture), so the copy kept for the spool is cheap.
            match self
                .fallback
                .deadline
                .run(self.inner.export(batch.clone()))
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => Some(e),
            }
        };
        let records = batch.len() as u64;
        self.fallback
            .keep(Signal::Traces, records, failure.as_ref(), || {
                ExportTraceServiceRequest {
                    resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
                }
                .encode_to_vec()
            })
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
        self.inner.set_resource(resource);
    }
}
