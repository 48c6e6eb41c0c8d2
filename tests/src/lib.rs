//! Support library for huatuo-otel's end-to-end tests, which run the real agent and inspect what
//! it exports:
//!
//! - [`otlp_receiver`]: an in-process OTLP receiver (gRPC and HTTP) with failure injection;
//! - [`jsonl`]: reads the file exporter's OTLP/JSON lines into the same shape;
//! - [`signals`]: flat views and lookups over that shape ([`Received`]);
//! - [`process`]: spawning and stopping the agent binary, and the root/BPF precondition.

pub mod jsonl;
pub mod otlp_receiver;
pub mod process;
pub mod signals;

pub use otlp_receiver::{Failure, OtlpReceiver, Outcome, RequestInfo, Signal, Transport};
pub use process::{agent_binary, require_root_and_bpf, AgentCommand, AgentProcess};
pub use signals::{
    AttrValue, LogView, MetricKind, MetricPoint, PointValue, Received, SpanView, Temporality,
};
