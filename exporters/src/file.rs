//! Local OTLP-JSON file exporter: the embedded default that needs no collector.
//!
//! Each signal gets its own file under `FileExporterConfig::directory` (`logs.jsonl`,
//! `metrics.jsonl`, `traces.jsonl`) holding one OTLP/JSON export request per line, the format the
//! OpenTelemetry Collector's `file` exporter writes and its `otlpjsonfile` receiver reads, so the
//! files can be replayed into a collector later.

use crate::otlp_json;
use anyhow::Context as _;
use huatuo_config::FileExporterConfig;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::marker::PhantomData;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

pub const LOGS_FILE: &str = "logs.jsonl";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const TRACES_FILE: &str = "traces.jsonl";

/// Group-readable so an operator's group can tail the files; not world-readable because events
/// carry host details (addresses, process names).
const DIR_MODE: u32 = 0o750;
pub(crate) const FILE_MODE: u32 = 0o640;

/// Appends newline-terminated records to one file, rotating it by size.
///
/// Shared by the three signal exporters. Every record goes out in a single `write(2)` on an
/// `O_APPEND` descriptor, so a concurrent reader sees whole lines or nothing; a failed write is
/// truncated away so a half line never stays behind either.
pub struct JsonlWriter {
    path: PathBuf,
    max_bytes: u64,
    max_rotated: u32,
    state: Mutex<WriterState>,
}

struct WriterState {
    /// `None` after a failed rotation: the next write retries opening instead of failing forever.
    file: Option<File>,
    len: u64,
    shut_down: bool,
}

impl fmt::Debug for JsonlWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlWriter")
            .field("path", &self.path)
            .field("max_bytes", &self.max_bytes)
            .field("max_rotated", &self.max_rotated)
            .finish_non_exhaustive()
    }
}

impl JsonlWriter {
    /// Creates `directory` if needed and opens `directory/file_name` for appending.
    ///
    /// Opening here rather than on the first export turns a missing or read-only directory into a
    /// startup error that names the path.
    pub fn open(
        directory: &Path,
        file_name: &str,
        max_bytes: u64,
        max_rotated: u32,
    ) -> anyhow::Result<Self> {
        create_dir(directory)?;
        let path = directory.join(file_name);
        let file = open_append(&path)
            .with_context(|| format!("cannot open {} for writing", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        let writer = Self {
            path,
            max_bytes: max_bytes.max(1),
            max_rotated,
            state: Mutex::new(WriterState {
                file: Some(file),
                len,
                shut_down: false,
            }),
        };
        // A lowered `max_rotated_files` must take effect even before the next rotation.
        writer
            .remove_rotated_beyond(max_rotated)
            .with_context(|| format!("cannot prune old rotations of {}", writer.path.display()))?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line`, which must end with `\n` and contain no other newline.
    pub fn write_line(&self, line: &[u8]) -> OTelSdkResult {
        debug_assert!(line.ends_with(b"\n"));
        let mut state = self.lock();
        if state.shut_down {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        // A line larger than the limit still goes into a fresh file of its own: splitting it
        // would corrupt the record, dropping it would lose data silently.
        if state.len > 0 && state.len.saturating_add(line.len() as u64) > self.max_bytes {
            self.rotate(&mut state)
                .map_err(|e| self.failure("rotating", &e))?;
        }
        if state.file.is_none() {
            self.reopen(&mut state)
                .map_err(|e| self.failure("opening", &e))?;
        }
        let len_before = state.len;
        let file = state.file.as_mut().expect("reopened above");
        let written = file.write_all(line).and_then(|()| file.flush());
        if let Err(e) = written {
            // Best effort: if even the truncate fails, the size check below re-reads the real
            // length so rotation stays honest.
            let _ = file.set_len(len_before);
            state.len = file.metadata().map_or(len_before, |m| m.len());
            return Err(self.failure("writing", &e));
        }
        state.len = len_before + line.len() as u64;
        Ok(())
    }

    /// Syncs and closes the file; later writes fail with `AlreadyShutdown`.
    pub fn shutdown(&self) -> OTelSdkResult {
        let mut state = self.lock();
        if state.shut_down {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        state.shut_down = true;
        match state.file.take() {
            Some(file) => file.sync_data().map_err(|e| self.failure("syncing", &e)),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, WriterState> {
        // A panic while holding the lock cannot leave the state inconsistent in a way that
        // matters: at worst `len` is stale, which only shifts the next rotation.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn failure(&self, action: &str, err: &io::Error) -> OTelSdkError {
        OTelSdkError::InternalFailure(format!("{action} {}: {err}", self.path.display()))
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&self, state: &mut WriterState) -> io::Result<()> {
        state.file = None;
        if self.max_rotated == 0 {
            remove_if_exists(&self.path)?;
        } else {
            remove_if_exists(&self.rotated(self.max_rotated))?;
            for n in (1..self.max_rotated).rev() {
                rename_if_exists(&self.rotated(n), &self.rotated(n + 1))?;
            }
            fs::rename(&self.path, self.rotated(1))?;
        }
        self.reopen(state)
    }

    fn reopen(&self, state: &mut WriterState) -> io::Result<()> {
        let file = open_append(&self.path)?;
        state.len = file.metadata()?.len();
        state.file = Some(file);
        Ok(())
    }

    fn remove_rotated_beyond(&self, keep: u32) -> io::Result<()> {
        let (Some(dir), Some(base)) = (self.path.parent(), self.path.file_name()) else {
            return Ok(());
        };
        let prefix = format!("{}.", base.to_string_lossy());
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|name| name.strip_prefix(&prefix))
                .and_then(|suffix| suffix.parse::<u32>().ok())
            else {
                continue;
            };
            if n > keep {
                remove_if_exists(&entry.path())?;
            }
        }
        Ok(())
    }
}

pub(crate) fn create_dir(directory: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(directory)
        .with_context(|| format!("cannot create directory {}", directory.display()))
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn open_writer(config: &FileExporterConfig, file_name: &str) -> anyhow::Result<JsonlWriter> {
    JsonlWriter::open(
        &config.directory,
        file_name,
        config.max_file_size_mib.saturating_mul(1024 * 1024),
        config.max_rotated_files,
    )
    .context("exporters.file")
}

/// Serializes one request and appends it as a line.
fn write_request<T: serde::Serialize>(writer: &JsonlWriter, request: &T) -> OTelSdkResult {
    let line = otlp_json::to_line(request).map_err(|e| {
        OTelSdkError::InternalFailure(format!(
            "encoding a request for {}: {e}",
            writer.path().display()
        ))
    })?;
    writer.write_line(&line)
}

/// Writes log or span batches to the signal's file (`S` is [`Logs`] or [`Traces`]).
///
/// One type for both since they differ only in the SDK trait they implement. Metrics do not
/// fit: their collections carry the resource, which logs and spans get once via `set_resource`.
#[derive(Debug)]
pub struct ResourceFileExporter<S> {
    writer: JsonlWriter,
    resource: ResourceAttributesWithSchema,
    signal: PhantomData<S>,
}

/// Writes log batches to `logs.jsonl`.
pub type FileLogExporter = ResourceFileExporter<Logs>;
/// Writes span batches to `traces.jsonl`.
pub type FileSpanExporter = ResourceFileExporter<Traces>;

#[derive(Debug)]
pub enum Logs {}
#[derive(Debug)]
pub enum Traces {}

mod sealed {
    /// Sealed so that only the signals implemented below can be named as `S`.
    pub trait SignalFile {
        const FILE_NAME: &'static str;
    }
}

impl sealed::SignalFile for Logs {
    const FILE_NAME: &'static str = LOGS_FILE;
}

impl sealed::SignalFile for Traces {
    const FILE_NAME: &'static str = TRACES_FILE;
}

impl<S: sealed::SignalFile> ResourceFileExporter<S> {
    pub fn new(config: &FileExporterConfig) -> anyhow::Result<Self> {
        Ok(Self::with_writer(open_writer(config, S::FILE_NAME)?))
    }

    pub fn with_writer(writer: JsonlWriter) -> Self {
        Self {
            writer,
            resource: ResourceAttributesWithSchema::default(),
            signal: PhantomData,
        }
    }
}

impl LogExporter for FileLogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        if batch.iter().next().is_none() {
            return Ok(());
        }
        let request = ExportLogsServiceRequest {
            resource_logs: group_logs_by_resource_and_scope(&batch, &self.resource),
        };
        write_request(&self.writer, &request)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.writer.shutdown()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

impl SpanExporter for FileSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        write_request(&self.writer, &request)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.writer.shutdown()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// Writes metric collections to `metrics.jsonl`, with cumulative temporality so that every line
/// stands on its own (a reader that missed a rotated file still sees correct totals).
#[derive(Debug)]
pub struct FileMetricExporter {
    writer: JsonlWriter,
}

impl FileMetricExporter {
    pub fn new(config: &FileExporterConfig) -> anyhow::Result<Self> {
        Ok(Self::with_writer(open_writer(config, METRICS_FILE)?))
    }

    pub fn with_writer(writer: JsonlWriter) -> Self {
        Self { writer }
    }
}

impl PushMetricExporter for FileMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let request = ExportMetricsServiceRequest::from(metrics);
        let no_data = request
            .resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .all(|sm| sm.metrics.is_empty());
        if no_data {
            return Ok(());
        }
        write_request(&self.writer, &request)
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.writer.shutdown()
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}
