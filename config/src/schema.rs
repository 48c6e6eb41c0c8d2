//! The configuration schema. Every struct denies unknown keys so that a typo is an error, not a
//! silently ignored setting. Defaults live in `Default` impls and are mirrored, with comments, in
//! `huatuo-otel.default.toml` (a test keeps the two equal).

use crate::ConfigError;
use crate::{CollectorsConfig, PrometheusExporterConfig, TracersConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub agent: AgentConfig,
    pub exporters: ExportersConfig,
    pub tracers: TracersConfig,
    pub attribution: crate::AttributionConfig,
    pub collectors: CollectorsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Exported as the `huatuo.region` resource attribute when not empty.
    pub region: String,
    /// Extra resource attributes added to everything the agent exports.
    pub resource_attributes: BTreeMap<String, String>,
    /// Filter for the agent's own logs (tracing `EnvFilter` syntax), e.g. "info" or "huatuo=debug".
    pub log_level: String,
    /// Also send the agent's own logs and spans through the OTel pipeline (tracing-opentelemetry).
    pub self_telemetry: bool,
    /// How long shutdown may take to flush exporters before giving up.
    pub shutdown_timeout_secs: u64,
    /// Keep the kernel's BPF run-time statistics on while the agent runs, for the
    /// `huatuo.bpf.program.*` metrics. They cost every BPF program on the host a little per run.
    pub bpf_stats: bool,
    /// Where procfs is mounted; collectors read their sources under it (`/host/proc` when the
    /// agent runs in a container with the host's /proc mounted there, a fixture tree in tests).
    pub procfs_prefix: PathBuf,
    /// Where sysfs is mounted (cgroups are read under `<sysfs_prefix>/fs/cgroup`).
    pub sysfs_prefix: PathBuf,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            region: String::new(),
            resource_attributes: BTreeMap::new(),
            log_level: "info".into(),
            self_telemetry: false,
            shutdown_timeout_secs: 10,
            bpf_stats: false,
            procfs_prefix: PathBuf::from("/proc"),
            sysfs_prefix: PathBuf::from("/sys"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportersConfig {
    /// Period of metric collection and export.
    pub metrics_interval_secs: u64,
    /// Log records and spans buffered in memory per exporter before the SDK drops them.
    pub max_queue_size: usize,
    /// Log records and spans per export request.
    pub max_export_batch_size: usize,
    /// How often buffered log records and spans are exported.
    pub batch_interval_ms: u64,
    pub file: FileExporterConfig,
    pub otlp: OtlpExporterConfig,
    pub prometheus: PrometheusExporterConfig,
}

impl Default for ExportersConfig {
    fn default() -> Self {
        Self {
            metrics_interval_secs: 15,
            max_queue_size: 8192,
            max_export_batch_size: 512,
            batch_interval_ms: 1000,
            file: FileExporterConfig::default(),
            otlp: OtlpExporterConfig::default(),
            prometheus: PrometheusExporterConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileExporterConfig {
    pub enabled: bool,
    /// Holds `logs.jsonl`, `metrics.jsonl` and `traces.jsonl`: one OTLP-JSON request per line.
    pub directory: PathBuf,
    /// A file is rotated once it reaches this size.
    pub max_file_size_mib: u64,
    /// Rotated files kept per signal (`logs.jsonl.1` is the newest); older ones are deleted.
    pub max_rotated_files: u32,
}

impl Default for FileExporterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            directory: PathBuf::from("/var/lib/huatuo-otel"),
            max_file_size_mib: 100,
            max_rotated_files: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpExporterConfig {
    pub enabled: bool,
    /// gRPC: `http://host:4317`; HTTP/protobuf: `http://host:4318` (the signal path is appended).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// Sent with every export request, e.g. an authorization header.
    pub headers: BTreeMap<String, String>,
    pub timeout_secs: u64,
    pub compression: Compression,
}

impl Default for OtlpExporterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: "http://127.0.0.1:4317".into(),
            protocol: OtlpProtocol::Grpc,
            headers: BTreeMap::new(),
            timeout_secs: 10,
            compression: Compression::None,
        }
    }
}

impl Config {
    /// Checks what types alone cannot: value ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| {
            Err(ConfigError::Invalid {
                key: key.into(),
                reason,
            })
        };
        let e = &self.exporters;
        if e.metrics_interval_secs == 0 {
            return invalid(
                "exporters.metrics_interval_secs",
                "must be at least 1".into(),
            );
        }
        if e.max_queue_size == 0 || e.max_export_batch_size == 0 {
            return invalid(
                "exporters.max_queue_size",
                "queue and batch sizes must be at least 1".into(),
            );
        }
        if e.max_export_batch_size > e.max_queue_size {
            return invalid(
                "exporters.max_export_batch_size",
                format!(
                    "{} exceeds exporters.max_queue_size ({})",
                    e.max_export_batch_size, e.max_queue_size
                ),
            );
        }
        if e.file.enabled && e.file.directory.as_os_str().is_empty() {
            return invalid("exporters.file.directory", "must not be empty".into());
        }
        if e.file.max_file_size_mib == 0 {
            return invalid(
                "exporters.file.max_file_size_mib",
                "must be at least 1".into(),
            );
        }
        if e.otlp.enabled {
            let endpoint = &e.otlp.endpoint;
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return invalid(
                    "exporters.otlp.endpoint",
                    format!("{endpoint:?} must start with http:// or https://"),
                );
            }
        }
        for (key, prefix) in [
            ("agent.procfs_prefix", &self.agent.procfs_prefix),
            ("agent.sysfs_prefix", &self.agent.sysfs_prefix),
        ] {
            if !prefix.is_absolute() {
                return invalid(
                    key,
                    format!("{} must be an absolute path", prefix.display()),
                );
            }
        }
        if !e.file.enabled && !e.otlp.enabled {
            return invalid(
                "exporters",
                "no exporter is enabled: enable exporters.file or exporters.otlp".into(),
            );
        }
        self.tracers.waitrate.validate()?;
        self.attribution.validate()
    }
}
