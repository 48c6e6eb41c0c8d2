//! huatuo-otel: the agent. Kernel programs feed tracers (`tracers`), run by a supervisor
//! (`framework`); decoded records become OTel events and metrics (`telemetry`), exported by
//! `huatuo_exporters`.

pub mod agent;
pub mod attribution;
pub mod bpf_stats;
pub mod cli;
pub mod collectors;
pub mod container;
pub mod framework;
pub mod kernel;
pub mod ksyms;
pub mod kubelet;
pub mod probe;
pub mod procfs;
pub mod profiler;
pub mod ringbuf;
pub mod telemetry;
pub mod tracers;
