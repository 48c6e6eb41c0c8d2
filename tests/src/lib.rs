//! Support library for huatuo-otel's end-to-end tests, which run the real agent and inspect what
//! it exports:
//!
//! - [`otlp_receiver`]: an in-process OTLP receiver (gRPC and HTTP) with failure injection;
//! - [`jsonl`]: reads the file exporter's OTLP/JSON lines into the same shape;
//! - [`signals`]: flat views and lookups over that shape ([`Received`]);
//! - [`attach`]: attaching a tracer's programs through tp_btf or the classic tracepoint.
//! - [`process`]: spawning and stopping the agent binary, and the root/BPF precondition.
//! - [`memcg`]: throwaway memory cgroups and a process the OOM killer kills in one.
//! - [`netns`]: throwaway network namespaces and a TCP connection that loses packets.
//! - [`cgroup`]: this process's place in the unified cgroup hierarchy.
//! - [`cpu`]: more busy threads than CPUs, for run-queue waits.
//! - [`dstate`]: threads really blocked in state D, on a FUSE file system served in-process.
//! - [`bench`]: what benchmarks measure of the agent process.
//! - [`loopdev`]: throwaway loop devices and synchronous direct-IO reads on them.
//! - [`prometheus`]: a real Prometheus server scraping the agent, and `promtool`.
//! - [`udp_drops`]: kernel packet drops on demand, told apart by their source port.

pub mod attach;
pub mod bench;
pub mod cgroup;
pub mod cpu;
pub mod dstate;
pub mod jsonl;
pub mod loopdev;
pub mod memcg;
pub mod netns;
pub mod otlp_receiver;
pub mod process;
pub mod prometheus;
pub mod signals;
pub mod udp_drops;

pub use otlp_receiver::{
    Failure, OtlpReceiver, Outcome, RequestInfo, Signal, TlsIdentity, Transport,
};
pub use process::{agent_binary, require_root_and_bpf, AgentCommand, AgentProcess, SPOOL_DIR_ENV};
pub use signals::{
    AttrValue, LogView, MetricKind, MetricPoint, PointValue, Received, SpanView, Temporality,
};
