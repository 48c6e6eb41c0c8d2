//! The live status of every tracer, shared by the supervisor (writer) and the agent's
//! self-metrics (reader).

use super::{ProgramStat, TracerKind, TracerStats};
use crate::telemetry::Telemetry;
use huatuo_semconv::agent as names;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TracerState {
    Disabled,
    Unsupported(String),
    Running,
    /// Failed, waiting out its back-off before the next start.
    Restarting(String),
    Stopped,
}

impl TracerState {
    pub const ALL_NAMES: [&'static str; 5] = [
        "disabled",
        "unsupported",
        "running",
        "restarting",
        "stopped",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            TracerState::Disabled => "disabled",
            TracerState::Unsupported(_) => "unsupported",
            TracerState::Running => "running",
            TracerState::Restarting(_) => "restarting",
            TracerState::Stopped => "stopped",
        }
    }
}

pub struct TracerEntry {
    pub name: &'static str,
    pub kind: TracerKind,
    pub state: TracerState,
    pub restarts: u64,
    pub stats: Arc<TracerStats>,
}

#[derive(Default, Clone)]
pub struct StatusBoard {
    entries: Arc<Mutex<Vec<TracerEntry>>>,
}

impl StatusBoard {
    pub fn add(
        &self,
        name: &'static str,
        kind: TracerKind,
        state: TracerState,
    ) -> Arc<TracerStats> {
        let stats = Arc::new(TracerStats::default());
        self.lock().push(TracerEntry {
            name,
            kind,
            state,
            restarts: 0,
            stats: stats.clone(),
        });
        stats
    }

    pub fn set_state(&self, name: &str, state: TracerState) {
        if let Some(entry) = self.lock().iter_mut().find(|e| e.name == name) {
            entry.state = state;
        }
    }

    pub fn count_restart(&self, name: &str) {
        if let Some(entry) = self.lock().iter_mut().find(|e| e.name == name) {
            entry.restarts += 1;
        }
    }

    pub fn state(&self, name: &str) -> Option<TracerState> {
        self.lock()
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.state.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TracerEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Exports status, restarts, records and drops of every tracer as observable instruments.
    pub fn register_metrics(&self, telemetry: &Telemetry) {
        let meter = &telemetry.meter;
        let board = self.clone();
        meter
            .u64_observable_gauge(names::TRACER_STATUS)
            .with_description("1 for the state a tracer is in, 0 for the others")
            .with_unit("{state}")
            .with_callback(move |observer| {
                for e in board.lock().iter() {
                    for state in TracerState::ALL_NAMES {
                        observer.observe(
                            u64::from(e.state.name() == state),
                            &[
                                KeyValue::new(names::TRACER_NAME, e.name),
                                KeyValue::new(names::TRACER_KIND, e.kind.as_str()),
                                KeyValue::new(names::TRACER_STATE, state),
                            ],
                        );
                    }
                }
            })
            .build();
        self.register_per_tracer_counter(
            meter,
            names::TRACER_RESTARTS,
            "Times a tracer was restarted after a failure",
            "{restart}",
            |e| e.restarts,
        );
        self.register_per_tracer_counter(
            meter,
            names::TRACER_RECORDS,
            "Records received from the kernel and decoded",
            "{record}",
            |e| e.stats.records.load(Ordering::Relaxed),
        );
        let board = self.clone();
        meter
            .u64_observable_counter(names::TRACER_RECORDS_DROPPED)
            .with_description("Records that did not become telemetry, by cause")
            .with_unit("{record}")
            .with_callback(move |observer| {
                for e in board.lock().iter() {
                    for (cause, count) in e.stats.dropped() {
                        observer.observe(
                            count,
                            &[
                                KeyValue::new(names::TRACER_NAME, e.name),
                                KeyValue::new(names::DROP_CAUSE, cause),
                            ],
                        );
                    }
                }
            })
            .build();
        self.register_program_runs(meter);
    }

    /// Run count and run time of every attached program, while the kernel counts them.
    fn register_program_runs(&self, meter: &Meter) {
        let board = self.clone();
        meter
            .u64_observable_counter(names::BPF_PROGRAM_RUNS)
            .with_description("Times the kernel ran the program")
            .with_unit("{run}")
            .with_callback(move |observer| {
                board.for_each_program_stat(ProgramStat::Runs, |value, attributes| {
                    observer.observe(value, attributes)
                })
            })
            .build();
        let board = self.clone();
        meter
            .f64_observable_counter(names::BPF_PROGRAM_RUN_TIME)
            .with_description("Time the kernel spent running the program")
            .with_unit("s")
            .with_callback(move |observer| {
                board.for_each_program_stat(ProgramStat::RunTimeNs, |ns, attributes| {
                    observer.observe(ns as f64 / 1e9, attributes)
                })
            })
            .build();
    }

    /// Calls `observe` with each program's `stat` and its attributes. Nothing while the kernel
    /// keeps no statistics: the frozen (or zero) values would read as programs not running.
    fn for_each_program_stat(&self, stat: ProgramStat, mut observe: impl FnMut(u64, &[KeyValue])) {
        if !crate::bpf_stats::kernel_counts() {
            return;
        }
        for e in self.lock().iter() {
            for ((program, s), value) in e.stats.programs.snapshot() {
                if s == stat {
                    observe(
                        value,
                        &[
                            KeyValue::new(names::TRACER_NAME, e.name),
                            KeyValue::new(names::BPF_PROGRAM_NAME, program),
                        ],
                    );
                }
            }
        }
    }

    /// An observable counter with one series per tracer, read from the board at each collection.
    fn register_per_tracer_counter(
        &self,
        meter: &Meter,
        name: &'static str,
        description: &'static str,
        unit: &'static str,
        value: fn(&TracerEntry) -> u64,
    ) {
        let board = self.clone();
        meter
            .u64_observable_counter(name)
            .with_description(description)
            .with_unit(unit)
            .with_callback(move |observer| {
                for e in board.lock().iter() {
                    observer.observe(value(e), &[KeyValue::new(names::TRACER_NAME, e.name)]);
                }
            })
            .build();
    }
}
