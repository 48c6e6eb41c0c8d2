//! What every event tracer shares, so that one is only its specifics: the object it loads, the
//! maps of its own it reads, and how a record becomes an event.
//!
//! An event tracer's object attaches on one or more [`TracepointHook`]s, submits fixed-size
//! records to the `events` ring buffer and counts its losses in the `stats` map.

use super::{
    read_program_runs, read_programs_stats, take_map, RunError, TracepointHook, TracerContext,
    TracerStats, Unsupported,
};
use crate::kernel::KernelEnv;
use crate::telemetry::{Event, Telemetry};
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::Ebpf;
use huatuo_config::{Config, TracerSection};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub trait EventTracer: Send + Sync + Sized + 'static {
    const NAME: &'static str;
    /// All attached, or the tracer does not run: a hook missing would silently undercount.
    const HOOKS: &'static [TracepointHook];
    /// Attached where the kernel has their tracepoint, for sources that exist only on some
    /// architectures or configurations (hardware error reporters). Which ones attached is logged
    /// and shown by `probe`; a tracer without [`EventTracer::HOOKS`] needs at least one.
    const OPTIONAL_HOOKS: &'static [TracepointHook] = &[];
    type Section: TracerSection;
    /// One ring buffer record, as the kernel lays it out.
    type Record: aya::Pod;

    fn section(config: &Config) -> &Self::Section;

    /// Checks, without loading anything, that the kernel offers what the tracer needs.
    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        Self::HOOKS.iter().try_for_each(|hook| hook.probe(kernel))?;
        OptionalHooks::probe::<Self>(kernel).map(drop)
    }

    /// Whether the configuration wants optional hook `hook` attached where the kernel has it.
    fn optional_hook_enabled(&self, _config: &Config, _hook: &TracepointHook) -> bool {
        true
    }

    /// See [`super::Tracer::probe_detail`]: which optional hooks the kernel has.
    fn probe_detail(&self, kernel: &KernelEnv) -> String {
        OptionalHooks::probe::<Self>(kernel)
            .map(|hooks| hooks.describe())
            .unwrap_or_default()
    }

    /// See [`super::Tracer::register_metrics`].
    fn register_metrics(&self, _telemetry: &Telemetry) {}

    fn load(&self, ctx: &TracerContext) -> Result<Ebpf, RunError>;

    /// Called once the hooks are attached: takes the tracer's own maps and starts reading its
    /// counters, then returns what turns each record into an event.
    fn start<'a>(
        &'a self,
        ebpf: &mut Ebpf,
        ctx: &'a TracerContext,
    ) -> anyhow::Result<impl FnMut(Self::Record) -> Event + Send + 'a>;

    /// Keeps the final values of the counters [`EventTracer::start`] began reading, before the
    /// maps go away.
    fn stop(&self) {}
}

/// Implements [`super::Tracer`] for an [`EventTracer`]. A macro, not a blanket impl, so the
/// "attached" line is logged from the tracer's own module: its target names the tracer.
macro_rules! event_tracer {
    ($tracer:ty) => {
        $crate::framework::sectioned_tracer!($tracer, EventTracer, Event, |tracer, ctx| {
            $crate::framework::run_event_tracer(tracer, ctx, |attach| {
                tracing::info!(
                    tracer = <$tracer as $crate::framework::EventTracer>::NAME,
                    attach,
                    "attached"
                )
            })
        });
    };
}
pub(crate) use event_tracer;

/// Load → attach → read counters → log "attached" → drain the ring buffer until cancelled → keep final counts.
pub async fn run_event_tracer<T: EventTracer>(
    tracer: Arc<T>,
    ctx: TracerContext,
    log_attached: impl FnOnce(&str),
) -> Result<(), RunError> {
    let optional = OptionalHooks::probe::<T>(&ctx.kernel).map_err(RunError::Unsupported)?;
    let (wanted, off): (Vec<_>, Vec<_>) = optional
        .present
        .iter()
        .partition(|hook| tracer.optional_hook_enabled(&ctx.config, hook));
    let (mut attached, loading) =
        load_and_attach(&ctx, T::HOOKS, &wanted, || tracer.load(&ctx)).await?;
    if !optional.absent.is_empty() {
        attached
            .modes
            .push_str(&format!("; absent: {}", names_of(&optional.absent)));
    }
    if !off.is_empty() {
        attached
            .modes
            .push_str(&format!("; off by configuration: {}", names_of(&off)));
    }
    let ebpf = &mut attached.ebpf;
    let started = take_map(ebpf, huatuo_ebpf::EVENTS_MAP)
        .and_then(|map| Ok(RingBuf::try_from(map)?))
        .and_then(|ring| Ok((ring, tracer.start(ebpf, &ctx)?)));
    loading.release();
    let result = match started {
        Ok((ring, mut to_event)) => {
            // Only now, with every counter reading its map: whoever waits for this line (the
            // e2e tests do) then sees everything the kernel counts from here on.
            log_attached(&attached.modes);
            drain_records(T::NAME, ring, &ctx.cancel, &ctx.stats, |record| {
                ctx.telemetry.emit(to_event(record))
            })
            .await
        }
        Err(e) => Err(e),
    };
    // Keep the final kernel counts before the maps (and programs) go away with `ebpf`.
    tracer.stop();
    attached.detach(&ctx);
    result.map_err(RunError::Failed)
}

/// Which of a tracer's [`EventTracer::OPTIONAL_HOOKS`] the kernel has.
pub struct OptionalHooks {
    pub present: Vec<&'static TracepointHook>,
    pub absent: Vec<&'static TracepointHook>,
}

impl OptionalHooks {
    /// Sorts the optional hooks by whether their tracepoint exists. Unsupported when nothing
    /// could be attached at all, or when it cannot be known (no privileges, no tracefs).
    pub fn probe<T: EventTracer>(kernel: &KernelEnv) -> Result<Self, Unsupported> {
        let mut hooks = Self {
            present: Vec::new(),
            absent: Vec::new(),
        };
        if T::OPTIONAL_HOOKS.is_empty() {
            return Ok(hooks);
        }
        kernel.require_ring_buffer_tracing().map_err(Unsupported)?;
        for hook in T::OPTIONAL_HOOKS {
            match kernel.tracepoint_exists(hook.category, hook.name) {
                Ok(true) => hooks.present.push(hook),
                Ok(false) => hooks.absent.push(hook),
                Err(why) => return Err(Unsupported(why)),
            }
        }
        if T::HOOKS.is_empty() && hooks.present.is_empty() {
            return Err(Unsupported(format!(
                "none of its tracepoints exists ({})",
                names_of(&hooks.absent)
            )));
        }
        Ok(hooks)
    }

    /// `attaches a:b, c:d; absent: e:f` for `probe`; empty for tracers without optional hooks.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        if !self.present.is_empty() {
            text.push_str(&format!("attaches {}", names_of(&self.present)));
        }
        if !self.absent.is_empty() {
            text.push_str(&format!("; absent: {}", names_of(&self.absent)));
        }
        text
    }
}

fn names_of(hooks: &[&TracepointHook]) -> String {
    let names: Vec<String> = hooks
        .iter()
        .map(|hook| format!("{}:{}", hook.category, hook.name))
        .collect();
    names.join(", ")
}

/// A tracer's object, loaded with every hook attached.
pub(super) struct Attached {
    pub ebpf: Ebpf,
    /// How each hook attached (`tp_btf` or `tracepoint`), comma-separated.
    pub modes: String,
}

impl Attached {
    /// Keeps the final kernel counts, then unloads the programs.
    pub fn detach(self, ctx: &TracerContext) {
        ctx.stats.kernel.detach();
        ctx.stats.programs.detach();
        drop(self.ebpf);
    }
}

/// Held while a tracer loads: released once it has taken its maps.
pub(super) struct Loading<'a>(tokio::sync::MutexGuard<'a, ()>);

impl Loading<'_> {
    pub fn release(self) {
        // Loading freed tens of MiB (kernel BTF, kallsyms text) that glibc would keep mapped;
        // give it back once per start, so the agent's steady RSS is what it uses (~28 vs ~40
        // MiB).
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only returns free heap pages to the kernel; no preconditions.
        unsafe {
            libc::malloc_trim(0);
        }
        drop(self.0);
    }
}

/// What every BPF tracer does first: load its object (one tracer at a time: release the
/// returned [`Loading`] once the tracer has taken its maps), attach all its hooks, and start
/// reading its loss counters and its programs' run statistics.
pub(super) async fn load_and_attach<'a>(
    ctx: &'a TracerContext,
    hooks: &[TracepointHook],
    optional: &[&TracepointHook],
    load: impl FnOnce() -> Result<Ebpf, RunError>,
) -> Result<(Attached, Loading<'a>), RunError> {
    let loading = Loading(ctx.kernel.load_gate.lock().await);
    let mut ebpf = load()?;
    let mut modes = Vec::with_capacity(hooks.len() + optional.len());
    let mut programs = Vec::with_capacity(hooks.len() + optional.len());
    for hook in hooks {
        let (mode, program) = hook.attach(&mut ebpf, &ctx.kernel)?;
        modes.push(mode.to_string());
        programs.push((hook.program(mode), program));
    }
    // Optional hooks are named: which of them the kernel had is what the line tells.
    for hook in optional {
        let (mode, program) = hook.attach(&mut ebpf, &ctx.kernel)?;
        modes.push(format!("{}:{} {mode}", hook.category, hook.name));
        programs.push((hook.program(mode), program));
    }

    let stats: PerCpuArray<MapData, u64> =
        PerCpuArray::try_from(take_map(&mut ebpf, huatuo_ebpf::STATS_MAP)?)
            .map_err(anyhow::Error::from)?;
    let fds: Vec<OwnedFd> = programs
        .iter()
        .map(|(_, fd)| fd.try_clone())
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::from)?;
    ctx.stats.kernel.attach(move || {
        let fds: Vec<BorrowedFd<'_>> = fds.iter().map(|fd| fd.as_fd()).collect();
        read_programs_stats(&stats, &fds)
    });
    ctx.stats
        .programs
        .attach(move || read_program_runs(&programs));
    let modes = modes.join(",");
    Ok((Attached { ebpf, modes }, loading))
}

/// Hands every record of type `R` to `on_record` until `cancel` fires, counting records received
/// and those too short to decode.
pub async fn drain_records<R: aya::Pod>(
    tracer: &'static str,
    ring: RingBuf<MapData>,
    cancel: &CancellationToken,
    stats: &TracerStats,
    mut on_record: impl FnMut(R),
) -> anyhow::Result<()> {
    crate::ringbuf::drain(ring, cancel, |bytes| match parse_record(tracer, bytes) {
        Ok(record) => {
            stats.record_received();
            on_record(record);
        }
        Err(e) => {
            stats.decode_error();
            tracing::warn!(tracer, error = %e, "undecodable record");
        }
    })
    .await
}

/// Reads a record as the kernel wrote it. Records too short (a program/agent mismatch or a
/// corrupted read) are rejected rather than misread.
pub fn parse_record<R: aya::Pod>(tracer: &str, bytes: &[u8]) -> Result<R, String> {
    huatuo_ebpf::read_pod(bytes).ok_or_else(|| {
        format!(
            "{tracer} record of {} bytes, expected {}",
            bytes.len(),
            std::mem::size_of::<R>()
        )
    })
}
