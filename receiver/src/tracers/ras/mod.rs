//! `ras`: hardware errors from the kernel's RAS tracepoints (`mce:mce_record`, `ras:mc_event`,
//! `ras:aer_event`, `ras:arm_event`, `ras:non_standard_event`, `ras:memory_failure_event`),
//! whichever this kernel has, as one log event per error and a counter by source.
//!
//! Which tracepoints exist depends on the architecture and the kernel's configuration (MCE is
//! x86, AER needs PCIe AER support, ARM records need GHES), so each is an optional hook; a
//! kernel with none of them is unsupported. The programs copy the raw record and it is decoded
//! here with the tracepoint's tracefs format, the kernel's own description of it.

mod decode;
mod format;

use crate::framework::{
    event_tracer, take_map, EventTracer, KernelCounters, RunError, TracepointHook, TracerContext,
};
use crate::kernel::BootClock;
use crate::telemetry::{Event, Telemetry};
use anyhow::Context as _;
use aya::maps::PerCpuArray;
use aya::{Ebpf, EbpfLoader};
use huatuo_config::{Config, RasConfig};
use huatuo_ebpf::ras::{self as abi, RasEvent, Source};
use huatuo_semconv::ras as names;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::sync::Arc;

pub const NAME: &str = "ras";

const fn hook(source: Source) -> TracepointHook {
    let (category, name) = source.tracepoint();
    TracepointHook {
        tracer: NAME,
        // Classic tracepoints only: see ebpf/ras/ras.bpf.c.
        prog_btf: "",
        tp_btf_name: "",
        prog_tracepoint: source.program(),
        category,
        name,
    }
}

const HOOKS: &[TracepointHook] = &[
    hook(Source::Mce),
    hook(Source::Edac),
    hook(Source::Aer),
    hook(Source::Arm),
    hook(Source::NonStandard),
    hook(Source::MemoryFailure),
];

#[derive(Default)]
pub struct Ras {
    errors: Arc<KernelCounters<Source>>,
}

event_tracer!(Ras);

impl EventTracer for Ras {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = &[];
    const OPTIONAL_HOOKS: &'static [TracepointHook] = HOOKS;
    type Section = RasConfig;
    type Record = RasEvent;

    fn section(config: &Config) -> &RasConfig {
        &config.tracers.ras
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        let errors = self.errors.clone();
        telemetry
            .meter
            .u64_observable_counter(names::RAS_ERRORS)
            .with_description("Hardware errors by source, counted in the kernel")
            .with_unit("{error}")
            .with_callback(move |observer| {
                for (source, count) in errors.snapshot() {
                    observer.observe(
                        count,
                        &[KeyValue::new(
                            names::RAS_SOURCE,
                            decode::source_name(source),
                        )],
                    );
                }
            })
            .build();
    }

    fn load(&self, ctx: &TracerContext) -> Result<Ebpf, RunError> {
        let config = &ctx.config.tracers.ras;
        let per_cpu = ctx.kernel.per_cpu_rate(config.max_events_per_second);
        EbpfLoader::new()
            .override_global(huatuo_ebpf::GLOBAL_EVENTS_PER_CPU_PER_SEC, &per_cpu, true)
            .load(huatuo_ebpf::RAS)
            .context("loading the ras BPF object")
            .map_err(RunError::Failed)
    }

    fn start<'a>(
        &'a self,
        ebpf: &mut Ebpf,
        ctx: &'a TracerContext,
    ) -> anyhow::Result<impl FnMut(RasEvent) -> Event + Send + 'a> {
        let by_source: PerCpuArray<_, abi::RasCounts> =
            PerCpuArray::try_from(take_map(ebpf, abi::COUNTS_MAP)?)?;
        self.errors
            .attach(move || Ok(abi::read_counts(&by_source)?.into_iter().collect()));
        let decoder = decode::Decoder {
            formats: read_formats(ctx)?,
            clock: BootClock::now(),
        };
        Ok(move |raw: RasEvent| {
            decoder
                .to_event(&raw)
                .unwrap_or_else(|why| decoder.undecodable(&raw, why))
        })
    }

    fn stop(&self) {
        self.errors.detach();
    }
}

/// The record format of every source whose tracepoint exists (and so was attached).
fn read_formats(ctx: &TracerContext) -> anyhow::Result<HashMap<Source, format::Format>> {
    let mut formats = HashMap::new();
    for source in Source::ALL {
        let (category, name) = source.tracepoint();
        if ctx.kernel.tracepoint_exists(category, name) != Ok(true) {
            continue;
        }
        let text = ctx
            .kernel
            .tracepoint_format(category, name)
            .map_err(anyhow::Error::msg)?;
        let format = format::Format::parse(&text)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("tracepoint {category}:{name}"))?;
        formats.insert(source, format);
    }
    Ok(formats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Tracer, Unsupported};
    use crate::kernel::KernelEnv;

    /// A tracefs holding only the given tracepoints.
    fn tracefs_with(tracepoints: &[(&str, &str)]) -> (tempfile::TempDir, KernelEnv) {
        let dir = tempfile::tempdir().unwrap();
        for (category, name) in tracepoints {
            std::fs::create_dir_all(dir.path().join("events").join(category).join(name)).unwrap();
        }
        let kernel = KernelEnv::with_tracefs(Some(dir.path().to_path_buf()));
        (dir, kernel)
    }

    /// Without root or with a kernel older than BPF ring buffers, the probe stops before the
    /// tracepoints, with that as the reason; these tests then check nothing more.
    fn can_probe(kernel: &KernelEnv) -> bool {
        kernel.require_ring_buffer_tracing().is_ok()
    }

    #[test]
    fn a_kernel_without_ras_tracepoints_is_unsupported_with_the_reason() {
        let (_dir, kernel) = tracefs_with(&[("sched", "sched_switch")]);
        if !can_probe(&kernel) {
            return;
        }
        let Unsupported(why) = Tracer::probe(&Ras::default(), &kernel).unwrap_err();
        assert_eq!(
            why,
            "none of its tracepoints exists (mce:mce_record, ras:mc_event, ras:aer_event, \
             ras:arm_event, ras:non_standard_event, ras:memory_failure_event)"
        );
    }

    #[test]
    fn a_kernel_with_some_ras_tracepoints_attaches_those_and_says_which() {
        let (_dir, kernel) = tracefs_with(&[("ras", "mc_event"), ("ras", "aer_event")]);
        if !can_probe(&kernel) {
            return;
        }
        let ras = Ras::default();
        assert_eq!(Tracer::probe(&ras, &kernel), Ok(()));
        assert_eq!(
            Tracer::probe_detail(&ras, &kernel),
            "attaches ras:mc_event, ras:aer_event; absent: mce:mce_record, ras:arm_event, \
             ras:non_standard_event, ras:memory_failure_event"
        );
    }

    #[test]
    fn without_tracefs_the_reason_says_so() {
        let kernel = KernelEnv::with_tracefs(None);
        if !can_probe(&kernel) {
            return;
        }
        let Unsupported(why) = Tracer::probe(&Ras::default(), &kernel).unwrap_err();
        assert!(why.starts_with("tracefs is not mounted"), "{why}");
    }

    #[test]
    fn tracers_without_optional_hooks_show_no_detail() {
        let (_dir, kernel) = tracefs_with(&[]);
        let tracer = crate::tracers::netdev_txqueue_timeout::NetdevTxqueueTimeout::default();
        assert_eq!(Tracer::probe_detail(&tracer, &kernel), "");
    }

    #[test]
    fn formats_are_read_from_tracefs() {
        let (dir, kernel) = tracefs_with(&[("ras", "mc_event")]);
        std::fs::write(
            dir.path().join("events/ras/mc_event/format"),
            format::tests::MC_EVENT,
        )
        .unwrap();
        assert_eq!(
            kernel.tracepoint_format("ras", "mc_event").unwrap(),
            format::tests::MC_EVENT
        );
        assert!(kernel
            .tracepoint_format("ras", "aer_event")
            .unwrap_err()
            .contains("events/ras/aer_event/format"));
    }
}
