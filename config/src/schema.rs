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
    /// Log records and spans held in memory per exporter until their export returns; beyond
    /// it they are dropped and counted.
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
    pub tls: OtlpTlsConfig,
    pub spool: SpoolConfig,
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
            tls: OtlpTlsConfig::default(),
            spool: SpoolConfig::default(),
        }
    }
}

/// TLS for `https://` endpoints. Without `ca_file` the system's root certificates are trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpTlsConfig {
    /// PEM file of the certificate authorities that sign the collector's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate. Only for tests: it gives up the collector's identity.
    pub insecure_skip_verify: bool,
}

/// Where log and span batches wait while the collector cannot take them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    pub enabled: bool,
    /// One file per failed batch (an OTLP protobuf request); created if missing.
    pub directory: PathBuf,
    /// Bytes the spool may hold; beyond it the oldest batches are dropped and counted.
    pub max_bytes: u64,
    /// Batches older than this are dropped and counted rather than replayed.
    pub max_age_secs: u64,
    /// Upper bound of the exponential back-off between replay attempts.
    pub max_backoff_secs: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            directory: PathBuf::from("/var/lib/huatuo-otel/spool"),
            max_bytes: 256 << 20,
            max_age_secs: 86_400,
            max_backoff_secs: 30,
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
        if e.otlp.enabled && e.otlp.spool.enabled {
            let spool = &e.otlp.spool;
            if spool.directory.as_os_str().is_empty() {
                return invalid("exporters.otlp.spool.directory", "must not be empty".into());
            }
            if spool.max_bytes == 0 || spool.max_age_secs == 0 || spool.max_backoff_secs == 0 {
                return invalid(
                    "exporters.otlp.spool",
                    "max_bytes, max_age_secs and max_backoff_secs must be at least 1".into(),
                );
            }
        }
        if e.otlp.tls.cert_file.is_some() != e.otlp.tls.key_file.is_some() {
            return invalid(
                "exporters.otlp.tls.cert_file",
                "cert_file and key_file must be set together".into(),
            );
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
