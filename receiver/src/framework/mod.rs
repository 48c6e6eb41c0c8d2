//! The tracer framework: what a tracer declares, what it is given to run, and the supervisor that
//! keeps every enabled tracer running without letting one failure reach the others.

mod autotracing;
mod backoff;
mod collector;
mod counters;
mod event;
mod histogram;
mod hook;
mod metrics;
mod status;
mod supervisor;

pub(crate) use autotracing::autotracer;
pub use autotracing::{run_autotracer, Autotracer, Capture, Captures, Reading, Trigger};
pub use backoff::{Backoff, BackoffPolicy};
#[cfg(test)]
pub use collector::test_support as collector_test_support;
pub use collector::{Collector, CollectorBoard, CollectorTracer, Number, Points};
pub use counters::{
    read_program_runs, read_programs_stats, KernelCounters, ProgramStat, UserCounter,
};
pub(crate) use event::event_tracer;
pub use event::{drain_records, parse_record, run_event_tracer, EventTracer, OptionalHooks};
pub use histogram::KernelHistogram;
pub use hook::{take_map, TracepointHook};
pub(crate) use metrics::metrics_tracer;
pub use metrics::{run_metrics_tracer, MetricsTracer};
pub use status::{StatusBoard, TracerState};
pub use supervisor::Supervisor;

use crate::kernel::KernelEnv;
use crate::telemetry::Telemetry;
use futures::future::BoxFuture;
use huatuo_config::Config;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Implements [`Tracer`] for a tracer whose behaviour comes from trait `$trait` (its `NAME`,
/// `section`, `probe`, `register_metrics`), running it with `$run`.
macro_rules! sectioned_tracer {
    ($tracer:ty, $trait:ident, $kind:ident, |$this:ident, $ctx:ident| $run:expr) => {
        impl $crate::framework::Tracer for $tracer {
            fn name(&self) -> &'static str {
                <$tracer as $crate::framework::$trait>::NAME
            }

            fn kind(&self) -> $crate::framework::TracerKind {
                $crate::framework::TracerKind::$kind
            }

            fn enabled(&self, config: &huatuo_config::Config) -> bool {
                huatuo_config::TracerSection::enabled(
                    <$tracer as $crate::framework::$trait>::section(config),
                )
            }

            fn restart_backoff(&self, config: &huatuo_config::Config) -> std::time::Duration {
                huatuo_config::TracerSection::restart_backoff(
                    <$tracer as $crate::framework::$trait>::section(config),
                )
            }

            fn probe(
                &self,
                kernel: &$crate::kernel::KernelEnv,
            ) -> Result<(), $crate::framework::Unsupported> {
                $crate::framework::$trait::probe(self, kernel)
            }

            fn probe_detail(&self, kernel: &$crate::kernel::KernelEnv) -> String {
                $crate::framework::$trait::probe_detail(self, kernel)
            }

            fn register_metrics(&self, telemetry: &$crate::telemetry::Telemetry) {
                $crate::framework::$trait::register_metrics(self, telemetry)
            }

            fn run(
                self: std::sync::Arc<Self>,
                ctx: $crate::framework::TracerContext,
            ) -> futures::future::BoxFuture<'static, Result<(), $crate::framework::RunError>> {
                let $this = self;
                let $ctx = ctx;
                Box::pin($run)
            }
        }
    };
}
pub(crate) use sectioned_tracer;

/// The seeds' three modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TracerKind {
    /// Kernel events, reported as they happen (log events, counters).
    Event,
    /// Anomaly-triggered captures (spans).
    Autotracing,
    /// Passive metric collection.
    Metrics,
}

impl TracerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TracerKind::Event => "event",
            TracerKind::Autotracing => "autotracing",
            TracerKind::Metrics => "metrics",
        }
    }
}

/// Why a tracer cannot run on this kernel or with these privileges. Unlike a failure, this is
/// permanent: the supervisor does not restart it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One tracer. Implementations are registered in `crate::tracers::all`.
pub trait Tracer: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn kind(&self) -> TracerKind;
    fn enabled(&self, config: &Config) -> bool;
    /// Wait between a failure and the next start.
    fn restart_backoff(&self, config: &Config) -> Duration;
    /// Checks, without loading anything, that the kernel offers what the tracer needs.
    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported>;
    /// What `probe` shows next to "supported", e.g. which optional hooks the kernel has.
    fn probe_detail(&self, _kernel: &KernelEnv) -> String {
        String::new()
    }
    /// Registers the tracer's metric instruments; called once, before the first start, so
    /// cumulative counters survive restarts.
    fn register_metrics(&self, _telemetry: &Telemetry) {}
    /// Runs until `ctx.cancel` fires (returns `Ok`) or the tracer fails (returns `Err`, and is
    /// restarted after its back-off). Returning [`RunError::Unsupported`] stops it for good.
    fn run(self: Arc<Self>, ctx: TracerContext) -> BoxFuture<'static, Result<(), RunError>>;
}

/// The [`Tracer`] methods every event tracer with a `[tracers.NAME]` section writes the same way:
/// for tracers that implement [`Tracer`] themselves (no BPF object, so no [`EventTracer`]).
macro_rules! section_tracer_methods {
    ($name:expr, $section:expr) => {
        fn name(&self) -> &'static str {
            $name
        }

        fn kind(&self) -> $crate::framework::TracerKind {
            $crate::framework::TracerKind::Event
        }

        fn enabled(&self, config: &huatuo_config::Config) -> bool {
            huatuo_config::TracerSection::enabled($section(config))
        }

        fn restart_backoff(&self, config: &huatuo_config::Config) -> std::time::Duration {
            huatuo_config::TracerSection::restart_backoff($section(config))
        }
    };
}
pub(crate) use section_tracer_methods;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("unsupported: {0}")]
    Unsupported(Unsupported),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// What a running tracer gets.
#[derive(Clone)]
pub struct TracerContext {
    pub config: Arc<Config>,
    pub kernel: Arc<KernelEnv>,
    pub telemetry: Arc<Telemetry>,
    pub stats: Arc<TracerStats>,
    pub cancel: CancellationToken,
}

/// Per-tracer accounting of records: received, and dropped by cause. Kernel-side losses are read
/// from the program's `stats` map; user-space ones are counted here.
#[derive(Default)]
pub struct TracerStats {
    pub records: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Kernel-side drop counters (ring buffer full, rate limited, ...), by cause name.
    pub kernel: KernelCounters<&'static str>,
    /// Run statistics of the attached programs, by program name.
    pub programs: KernelCounters<(&'static str, ProgramStat)>,
}

impl TracerStats {
    pub fn record_received(&self) {
        self.records.fetch_add(1, Ordering::Relaxed);
    }

    pub fn decode_error(&self) {
        self.decode_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Dropped records by cause, including user-space decode errors.
    pub fn dropped(&self) -> Vec<(&'static str, u64)> {
        let mut dropped: Vec<_> = self.kernel.snapshot().into_iter().collect();
        dropped.push(("decode_error", self.decode_errors.load(Ordering::Relaxed)));
        dropped.sort();
        dropped
    }
}
