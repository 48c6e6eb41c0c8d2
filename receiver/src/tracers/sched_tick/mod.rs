//! `sched_tick`: scheduler ticks that ran late (`timer:hrtimer_expire_entry` on the tick's
//! hrtimer), as log events with the CPU, the delay, the interrupted task and the kernel stack
//! (and spans of the delay when `spans` is on), and a counter of late ticks by CPU.
//!
//! The tick's hrtimer function is found in `/proc/kallsyms` at load; a kernel with neither name
//! for it is unsupported. Every late tick is counted in the kernel per CPU; at most
//! `max_events_per_cpu_per_second` per CPU become events, the rest are counted as `rate_limited`.
//!
//! What is measured: the kernel sees each tick's delay past its programmed expiry. The threshold
//! (`threshold_us`) is HuaTuo's, on the interval between ticks, which is the tick period plus that
//! delay when the previous tick was on time; the kernel is given the threshold less one period,
//! the period being measured at load from the rate of jiffies.

mod decode;

use crate::framework::{
    event_tracer, take_map, EventTracer, KernelCounters, RunError, TracepointHook, TracerContext,
    Unsupported,
};
use crate::kernel::BootClock;
use crate::ksyms::KernelSymbols;
use crate::telemetry::{Event, Telemetry};
use anyhow::Context as _;
use aya::maps::PerCpuArray;
use aya::{Ebpf, EbpfLoader};
use huatuo_config::{Config, SchedTickConfig};
use huatuo_ebpf::sched_tick::{self as abi, SchedTickEvent};
use huatuo_semconv::sched as names;
use opentelemetry::KeyValue;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const NAME: &str = "sched_tick";

const HOOK: TracepointHook = TracepointHook {
    tracer: NAME,
    prog_btf: abi::PROG_BTF,
    tp_btf_name: abi::TP_BTF_NAME,
    prog_tracepoint: abi::PROG_TRACEPOINT,
    category: abi::TRACEPOINT_CATEGORY,
    name: abi::TRACEPOINT_NAME,
};

#[derive(Default)]
pub struct SchedTick {
    /// Late ticks by CPU, read from the kernel's per-CPU counter.
    late_ticks: Arc<KernelCounters<u32>>,
    /// Read at load (for the tick handler's address), kept for symbolizing stacks.
    symbols: Mutex<Option<Arc<KernelSymbols>>>,
    /// Measured at load.
    period: Mutex<Duration>,
}

event_tracer!(SchedTick);

/// The tick's hrtimer function under the first name the kernel uses for it.
fn tick_handler(symbols: &KernelSymbols) -> Result<u64, Unsupported> {
    abi::TICK_HANDLER_SYMBOLS
        .iter()
        .find_map(|name| symbols.address_of(name))
        .ok_or_else(|| {
            Unsupported(format!(
                "no tick hrtimer function in /proc/kallsyms (looked for {})",
                abi::TICK_HANDLER_SYMBOLS.join(", ")
            ))
        })
}

impl EventTracer for SchedTick {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = &[HOOK];
    type Section = SchedTickConfig;
    type Record = SchedTickEvent;

    fn section(config: &Config) -> &SchedTickConfig {
        &config.tracers.sched_tick
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        let late_ticks = self.late_ticks.clone();
        telemetry
            .meter
            .u64_observable_counter(names::SCHED_TICK_LATE_TICKS)
            .with_description(
                "Scheduler ticks that ran at least the threshold late, by CPU, counted in the kernel",
            )
            .with_unit("{tick}")
            .with_callback(move |observer| {
                for (cpu, count) in late_ticks.snapshot() {
                    observer.observe(
                        count,
                        &[KeyValue::new(names::CPU_LOGICAL_NUMBER, i64::from(cpu))],
                    );
                }
            })
            .build();
    }

    fn load(&self, ctx: &TracerContext) -> Result<Ebpf, RunError> {
        let config = &ctx.config.tracers.sched_tick;
        let symbols = KernelSymbols::load().map_err(|e| {
            RunError::Unsupported(Unsupported(format!(
                "cannot find the tick handler: /proc/kallsyms: {e}"
            )))
        })?;
        let handler = tick_handler(&symbols).map_err(RunError::Unsupported)?;
        *self.symbols.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(symbols));
        // HuaTuo's threshold is on the interval between ticks; the kernel measures the delay past
        // the tick's due time, which is the interval less one period when the previous tick was
        // on time. Without the period, the delay alone must reach the threshold: fewer reports,
        // never spurious ones.
        let period = match ctx.kernel.config_hz() {
            Some(hz) => Duration::from_nanos(1_000_000_000 / hz),
            None => {
                tracing::warn!(
                    tracer = NAME,
                    "cannot tell the tick period (no kernel config, no /proc/timer_list); \
                     threshold_us applies to the delay"
                );
                Duration::ZERO
            }
        };
        *self.period.lock().unwrap_or_else(|e| e.into_inner()) = period;
        let threshold_ns = config
            .threshold_us
            .saturating_mul(1_000)
            .saturating_sub(period.as_nanos() as u64);
        let per_cpu = u64::from(config.max_events_per_cpu_per_second);
        EbpfLoader::new()
            .override_global(abi::GLOBAL_TICK_HANDLER, &handler, true)
            .override_global(abi::GLOBAL_THRESHOLD_NS, &threshold_ns, true)
            .override_global(huatuo_ebpf::GLOBAL_EVENTS_PER_CPU_PER_SEC, &per_cpu, true)
            .map_max_entries(huatuo_ebpf::EVENTS_MAP, config.ring_buffer_kib.bytes())
            .load(huatuo_ebpf::SCHED_TICK)
            .context("loading the sched_tick BPF object")
            .map_err(RunError::Failed)
    }

    fn start<'a>(
        &'a self,
        ebpf: &mut Ebpf,
        ctx: &'a TracerContext,
    ) -> anyhow::Result<impl FnMut(SchedTickEvent) -> Event + Send + 'a> {
        let by_cpu: PerCpuArray<_, u64> =
            PerCpuArray::try_from(take_map(ebpf, abi::LATE_TICKS_MAP)?)?;
        self.late_ticks.attach(move || {
            let per_cpu = by_cpu.get(&0, 0)?;
            Ok(per_cpu
                .iter()
                .enumerate()
                .map(|(cpu, &count)| (cpu as u32, count))
                .collect())
        });
        let symbols = self
            .symbols
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .context("kernel symbols were not loaded")?;
        let config = &ctx.config.tracers.sched_tick;
        let decode_ctx = decode::Context {
            symbols,
            threshold: Duration::from_micros(config.threshold_us),
            period: *self.period.lock().unwrap_or_else(|e| e.into_inner()),
            spans: config.spans,
            clock: BootClock::now(),
        };
        Ok(move |raw: SchedTickEvent| decode_ctx.to_event(&raw))
    }

    fn stop(&self) {
        self.late_ticks.detach();
    }
}
