//! What every BPF metrics tracer shares. Its object counts into in-kernel maps (histograms,
//! counters) on its [`TracepointHook`]s and has no records to drain: the tracer only reads the
//! maps on each collection, from the moment its hooks are attached until it is cancelled.

use super::event::load_and_attach;
use super::{RunError, TracepointHook, TracerContext, Unsupported};
use crate::kernel::KernelEnv;
use crate::telemetry::Telemetry;
use aya::Ebpf;
use huatuo_config::{Config, TracerSection};
use std::sync::Arc;

pub trait MetricsTracer: Send + Sync + Sized + 'static {
    const NAME: &'static str;
    /// All attached, or the tracer does not run: a hook missing would skew what it measures.
    const HOOKS: &'static [TracepointHook];
    type Section: TracerSection;

    fn section(config: &Config) -> &Self::Section;

    /// Checks, without loading anything, that the kernel offers what the tracer needs.
    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        Self::HOOKS.iter().try_for_each(|hook| hook.probe(kernel))
    }

    /// See [`super::Tracer::probe_detail`].
    fn probe_detail(&self, _kernel: &KernelEnv) -> String {
        String::new()
    }

    /// See [`super::Tracer::register_metrics`]: the instruments live in the tracer object, so
    /// their cumulative totals survive restarts.
    fn register_metrics(&self, telemetry: &Telemetry);

    fn load(&self, ctx: &TracerContext) -> Result<Ebpf, RunError>;

    /// Called once the hooks are attached: takes the tracer's maps and starts reading them
    /// (until `ctx.cancel`).
    fn start(&self, ebpf: &mut Ebpf, ctx: &TracerContext) -> anyhow::Result<()>;

    /// Keeps the final values of the maps [`MetricsTracer::start`] began reading, before they
    /// go away.
    fn stop(&self);
}

/// Implements [`super::Tracer`] for a [`MetricsTracer`], like `event_tracer!`.
macro_rules! metrics_tracer {
    ($tracer:ty) => {
        $crate::framework::sectioned_tracer!($tracer, MetricsTracer, Metrics, |tracer, ctx| {
            $crate::framework::run_metrics_tracer(tracer, ctx, |attach| {
                tracing::info!(
                    tracer = <$tracer as $crate::framework::MetricsTracer>::NAME,
                    attach,
                    "attached"
                )
            })
        });
    };
}
pub(crate) use metrics_tracer;

/// Load → attach → read counters → start reading the maps → log "attached" → wait until
/// cancelled → keep final values.
pub async fn run_metrics_tracer<T: MetricsTracer>(
    tracer: Arc<T>,
    ctx: TracerContext,
    log_attached: impl FnOnce(&str),
) -> Result<(), RunError> {
    let (mut attached, loading) =
        load_and_attach(&ctx, T::HOOKS, &[], || tracer.load(&ctx)).await?;
    let started = tracer.start(&mut attached.ebpf, &ctx);
    loading.release();
    if started.is_ok() {
        log_attached(&attached.modes);
        ctx.cancel.cancelled().await;
    }
    tracer.stop();
    attached.detach(&ctx);
    started.map_err(RunError::Failed)
}
