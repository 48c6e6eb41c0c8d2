//! The bound on what each batch processor holds, enforced in front of the SDK's own queue so that
//! what does not fit is counted (`huatuo.export.dropped{cause="queue_full"}`): opentelemetry_sdk's
//! batch processors drop on a full queue and keep that count private (it only reaches a log
//! line).
//!
//! A record is held from the moment it is emitted until the export of its batch returns, so the
//! SDK queue, which holds a subset of those records, never fills.

use crate::delivery::{DeliveryStats, Signal};
use opentelemetry::logs::Severity;
use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const QUEUE_FULL: &str = "queue_full";

#[derive(Debug)]
pub(crate) struct QueueBound {
    held: AtomicUsize,
    capacity: usize,
    signal: Signal,
    stats: Arc<DeliveryStats>,
}

impl QueueBound {
    pub fn new(capacity: usize, signal: Signal, stats: Arc<DeliveryStats>) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicUsize::new(0),
            capacity: capacity.max(1),
            signal,
            stats,
        })
    }

    /// Takes a place for one record, or counts it as dropped when there is none.
    fn admit(&self) -> bool {
        let admitted = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.capacity).then_some(held + 1)
            })
            .is_ok();
        if !admitted {
            self.stats.dropped(self.signal, QUEUE_FULL, 1);
        }
        admitted
    }

    /// Gives back the places of an exported (or failed, hence spooled or counted) batch.
    fn release(&self, records: usize) {
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(records))
            });
    }
}

/// Admits a log record into the wrapped batch processor only while the bound has room.
#[derive(Debug)]
pub(crate) struct BoundedLogProcessor<P> {
    inner: P,
    bound: Arc<QueueBound>,
}

impl<P> BoundedLogProcessor<P> {
    pub fn new(inner: P, bound: Arc<QueueBound>) -> Self {
        Self { inner, bound }
    }
}

impl<P: LogProcessor> LogProcessor for BoundedLogProcessor<P> {
    fn emit(&self, data: &mut SdkLogRecord, instrumentation: &InstrumentationScope) {
        if self.bound.admit() {
            self.inner.emit(data, instrumentation);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn event_enabled(&self, level: Severity, target: &str, name: Option<&str>) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Releases the bound's places once a log batch's export returns.
#[derive(Debug)]
pub(crate) struct ReleasingLogExporter<E> {
    inner: E,
    bound: Arc<QueueBound>,
}

impl<E> ReleasingLogExporter<E> {
    pub fn new(inner: E, bound: Arc<QueueBound>) -> Self {
        Self { inner, bound }
    }
}

impl<E: LogExporter> LogExporter for ReleasingLogExporter<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let records = batch.iter().count();
        let result = self.inner.export(batch).await;
        self.bound.release(records);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn event_enabled(&self, level: Severity, target: &str, name: Option<&str>) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Admits an ended span into the wrapped batch processor only while the bound has room.
#[derive(Debug)]
pub(crate) struct BoundedSpanProcessor<P> {
    inner: P,
    bound: Arc<QueueBound>,
}

impl<P> BoundedSpanProcessor<P> {
    pub fn new(inner: P, bound: Arc<QueueBound>) -> Self {
        Self { inner, bound }
    }
}

impl<P: SpanProcessor> SpanProcessor for BoundedSpanProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.bound.admit() {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Releases the bound's places once a span batch's export returns.
#[derive(Debug)]
pub(crate) struct ReleasingSpanExporter<E> {
    inner: E,
    bound: Arc<QueueBound>,
}

impl<E> ReleasingSpanExporter<E> {
    pub fn new(inner: E, bound: Arc<QueueBound>) -> Self {
        Self { inner, bound }
    }
}

impl<E: SpanExporter> SpanExporter for ReleasingSpanExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let records = batch.len();
        let result = self.inner.export(batch).await;
        self.bound.release(records);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_beyond_the_bound_are_counted_until_an_export_returns() {
        let stats = Arc::new(DeliveryStats::default());
        let bound = QueueBound::new(3, Signal::Logs, stats.clone());
        assert!((0..3).all(|_| bound.admit()));
        assert!(!bound.admit());
        assert!(!bound.admit());
        assert_eq!(stats.dropped_count(Signal::Logs, QUEUE_FULL), 2);
        bound.release(2);
        assert!(bound.admit() && bound.admit());
        assert!(!bound.admit());
        assert_eq!(stats.dropped_count(Signal::Logs, QUEUE_FULL), 3);
        // A release larger than what is held (never expected) cannot wrap around.
        bound.release(10);
        assert!((0..3).all(|_| bound.admit()));
    }
}
