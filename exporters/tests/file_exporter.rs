//! The local OTLP-JSON file exporter, through the SDK as the agent uses it.

use huatuo_config::{ExportersConfig, FileExporterConfig};
use huatuo_exporters::file::{
    FileLogExporter, FileMetricExporter, FileSpanExporter, JsonlWriter, LOGS_FILE, METRICS_FILE,
    TRACES_FILE,
};
use huatuo_exporters::{build_providers, Providers};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Span as _, SpanId, TraceContextExt as _, TraceFlags, TraceId, Tracer as _, TracerProvider as _,
};
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue as ProtoKeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const SPAN_ID: &str = "b7ad6b7169203331";

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "huatuo-otel"),
            KeyValue::new("host.name", "node-1"),
            KeyValue::new("huatuo.region", "eu-1"),
        ])
        .build()
}

fn file_config(dir: &Path) -> FileExporterConfig {
    FileExporterConfig {
        enabled: true,
        directory: dir.to_path_buf(),
        max_file_size_mib: 1,
        max_rotated_files: 2,
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("invalid JSON line {line}: {e}"))
}

fn string_attr(attrs: &[ProtoKeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

fn int_attr(attrs: &[ProtoKeyValue], key: &str) -> Option<i64> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::IntValue(i) => Some(*i),
            _ => None,
        }
    })
}

fn assert_resource(attrs: &[ProtoKeyValue]) {
    assert_eq!(
        string_attr(attrs, "host.name").as_deref(),
        Some("node-1"),
        "{attrs:?}"
    );
    assert_eq!(string_attr(attrs, "huatuo.region").as_deref(), Some("eu-1"));
}

/// Emits one event the way the receiver does: fixed event name, integer and string attributes,
/// and the trace context of the span it belongs to.
fn emit_event(provider: &SdkLoggerProvider) {
    let logger = provider.logger("huatuo.test");
    let mut record = logger.create_log_record();
    record.set_event_name("huatuo.skb.drop");
    record.set_severity_number(Severity::Warn);
    record.set_timestamp(UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789));
    record.set_body(AnyValue::String("skb dropped".into()));
    record.add_attribute("linux.skb.drop_reason", "NO_SOCKET");
    record.add_attribute("process.pid", 4242_i64);
    record.add_attribute("big", i64::MAX);
    record.set_trace_context(
        TraceId::from_hex(TRACE_ID).unwrap(),
        SpanId::from_hex(SPAN_ID).unwrap(),
        Some(TraceFlags::SAMPLED),
    );
    logger.emit(record);
}

#[test]
fn log_export_is_one_otlp_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = FileLogExporter::new(&file_config(dir.path())).unwrap();
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_simple_exporter(exporter)
        .build();
    emit_event(&provider);
    emit_event(&provider);
    provider.shutdown().unwrap();

    let lines = lines(&dir.path().join(LOGS_FILE));
    assert_eq!(lines.len(), 2, "one line per export");

    // OTLP/JSON rules, checked on the raw JSON: the proto types would accept looser input.
    let raw = json(&lines[0]);
    let record = &raw["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert_eq!(record["eventName"], "huatuo.skb.drop");
    assert_eq!(record["timeUnixNano"], "1700000000123456789");
    assert!(record["observedTimeUnixNano"].is_string());
    assert_eq!(record["severityNumber"], 13);
    assert_eq!(record["traceId"], TRACE_ID);
    assert_eq!(record["spanId"], SPAN_ID);
    assert_eq!(record["flags"], 1);
    let attrs = record["attributes"].as_array().unwrap();
    let big = attrs.iter().find(|a| a["key"] == "big").unwrap();
    assert_eq!(big["value"]["intValue"], "9223372036854775807");
    assert!(!lines[0].contains("null"), "{}", lines[0]);

    // And it reads back into the request type, as the collector's otlpjsonfile receiver would.
    let request: ExportLogsServiceRequest = serde_json::from_str(&lines[0]).unwrap();
    let resource_logs = &request.resource_logs[0];
    assert_resource(&resource_logs.resource.as_ref().unwrap().attributes);
    let scope_logs = &resource_logs.scope_logs[0];
    assert_eq!(scope_logs.scope.as_ref().unwrap().name, "huatuo.test");
    let record = &scope_logs.log_records[0];
    assert_eq!(record.event_name, "huatuo.skb.drop");
    assert_eq!(record.time_unix_nano, 1_700_000_000_123_456_789);
    assert_eq!(
        string_attr(&record.attributes, "linux.skb.drop_reason").as_deref(),
        Some("NO_SOCKET")
    );
    assert_eq!(int_attr(&record.attributes, "process.pid"), Some(4242));
    assert_eq!(int_attr(&record.attributes, "big"), Some(i64::MAX));
    assert_eq!(hex(&record.trace_id), TRACE_ID);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn log_without_trace_context_omits_ids() {
    let dir = tempfile::tempdir().unwrap();
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_simple_exporter(FileLogExporter::new(&file_config(dir.path())).unwrap())
        .build();
    let logger = provider.logger("t");
    let mut record = logger.create_log_record();
    record.set_event_name("linux.nan");
    record.add_attribute("ratio", f64::NAN);
    logger.emit(record);
    provider.shutdown().unwrap();

    let lines = lines(&dir.path().join(LOGS_FILE));
    let raw = json(&lines[0]);
    let record = &raw["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert!(record.get("traceId").is_none(), "{record}");
    assert!(record.get("spanId").is_none(), "{record}");
    // serde_json cannot write NaN; OTLP/JSON spells it as a string.
    assert_eq!(record["attributes"][0]["value"]["doubleValue"], "NaN");
}

#[test]
fn span_export_is_one_otlp_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource())
        .with_simple_exporter(FileSpanExporter::new(&file_config(dir.path())).unwrap())
        .build();
    let tracer = provider.tracer("huatuo.test");
    tracer.in_span("parent", |cx| {
        let mut child = tracer.start("child");
        child.set_attribute(KeyValue::new("net.bytes", 1_i64 << 40));
        child.add_event("retransmit", vec![KeyValue::new("seq", 7_i64)]);
        child.end();
        assert!(cx.span().span_context().is_valid());
    });
    provider.shutdown().unwrap();

    let lines = lines(&dir.path().join(TRACES_FILE));
    assert_eq!(lines.len(), 2, "simple processor: one export per span");
    let child_raw = json(&lines[0]);
    let span = &child_raw["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["name"], "child");
    assert!(span["startTimeUnixNano"].is_string());
    assert_eq!(span["kind"], 1, "enums are integers");
    assert_eq!(span["traceId"].as_str().unwrap().len(), 32);
    assert_eq!(span["spanId"].as_str().unwrap().len(), 16);
    assert_eq!(span["parentSpanId"].as_str().unwrap().len(), 16);
    assert_eq!(span["attributes"][0]["value"]["intValue"], "1099511627776");
    assert!(span["events"][0]["timeUnixNano"].is_string());
    let parent_raw = json(&lines[1]);
    let parent = &parent_raw["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert!(parent.get("parentSpanId").is_none(), "root span: {parent}");

    let child: ExportTraceServiceRequest = serde_json::from_str(&lines[0]).unwrap();
    let parent: ExportTraceServiceRequest = serde_json::from_str(&lines[1]).unwrap();
    let child_span = &child.resource_spans[0].scope_spans[0].spans[0];
    let parent_span = &parent.resource_spans[0].scope_spans[0].spans[0];
    assert_resource(
        &child.resource_spans[0]
            .resource
            .as_ref()
            .unwrap()
            .attributes,
    );
    assert_eq!(child_span.trace_id, parent_span.trace_id);
    assert_eq!(child_span.parent_span_id, parent_span.span_id);
    assert_eq!(int_attr(&child_span.attributes, "net.bytes"), Some(1 << 40));
    assert_eq!(child_span.events[0].name, "retransmit");
}

#[test]
fn metric_export_is_one_cumulative_otlp_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let provider = SdkMeterProvider::builder()
        .with_resource(resource())
        .with_periodic_exporter(FileMetricExporter::new(&file_config(dir.path())).unwrap())
        .build();
    let meter = provider.meter("huatuo.test");
    let drops = meter.u64_counter("linux.skb.drops").build();
    drops.add(3, &[KeyValue::new("reason", "NO_SOCKET")]);
    let latency = meter.f64_histogram("latency").with_unit("s").build();
    latency.record(0.25, &[]);
    provider.force_flush().unwrap();
    drops.add(2, &[KeyValue::new("reason", "NO_SOCKET")]);
    provider.shutdown().unwrap();

    let lines = lines(&dir.path().join(METRICS_FILE));
    assert_eq!(lines.len(), 2, "flush and shutdown each export once");
    let raw = json(&lines[1]);
    let metrics = raw["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap();
    let counter = metrics
        .iter()
        .find(|m| m["name"] == "linux.skb.drops")
        .unwrap();
    let point = &counter["sum"]["dataPoints"][0];
    assert_eq!(point["asInt"], "5", "cumulative, 64-bit as string");
    assert_eq!(counter["sum"]["aggregationTemporality"], 2);
    assert_eq!(counter["sum"]["isMonotonic"], true);
    assert!(point["startTimeUnixNano"].is_string() && point["timeUnixNano"].is_string());
    let histogram = metrics.iter().find(|m| m["name"] == "latency").unwrap();
    let hp = &histogram["histogram"]["dataPoints"][0];
    assert_eq!(hp["count"], "1");
    assert!(hp["bucketCounts"]
        .as_array()
        .unwrap()
        .iter()
        .all(Value::is_string));
    assert!(!lines[1].contains("null"), "{}", lines[1]);

    let request: ExportMetricsServiceRequest = serde_json::from_str(&lines[1]).unwrap();
    let rm = &request.resource_metrics[0];
    assert_resource(&rm.resource.as_ref().unwrap().attributes);
    let counter = rm.scope_metrics[0]
        .metrics
        .iter()
        .find(|m| m.name == "linux.skb.drops")
        .unwrap();
    let Some(metric::Data::Sum(sum)) = &counter.data else {
        panic!("not a sum: {counter:?}");
    };
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsInt(5))
    );
    assert_eq!(
        string_attr(&sum.data_points[0].attributes, "reason").as_deref(),
        Some("NO_SOCKET")
    );
}

fn rotated(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{LOGS_FILE}.{n}"))
}

#[test]
fn rotation_keeps_at_most_max_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let writer = JsonlWriter::open(dir.path(), LOGS_FILE, 100, 2).unwrap();
    for i in 0..20 {
        // 40 bytes per line: two fit under the limit, the third rotates.
        let line = format!("{{\"n\":{i:02},\"pad\":\"{}\"}}\n", "x".repeat(22));
        assert_eq!(line.len(), 40);
        writer.write_line(line.as_bytes()).unwrap();
    }
    let current = dir.path().join(LOGS_FILE);
    for path in [&current, &rotated(dir.path(), 1), &rotated(dir.path(), 2)] {
        let size = std::fs::metadata(path).unwrap().len();
        assert!(size <= 100, "{} is {size} bytes", path.display());
        lines(path).iter().for_each(|l| drop(json(l)));
    }
    assert!(!rotated(dir.path(), 3).exists());
    assert_eq!(
        json(&lines(&current)[1])["n"],
        19,
        "newest lines in the live file"
    );
    assert_eq!(json(&lines(&rotated(dir.path(), 1))[0])["n"], 16);
    assert_eq!(json(&lines(&rotated(dir.path(), 2))[0])["n"], 14);

    // Reopening with a lower bound prunes at once; 0 keeps only the live file.
    drop(writer);
    let writer = JsonlWriter::open(dir.path(), LOGS_FILE, 100, 0).unwrap();
    assert!(!rotated(dir.path(), 1).exists() && !rotated(dir.path(), 2).exists());
    for _ in 0..5 {
        writer
            .write_line(&[b'a'; 60].iter().chain(b"\n").copied().collect::<Vec<_>>())
            .unwrap();
    }
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(lines(&current).len(), 1);
}

#[test]
fn oversized_line_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let writer = JsonlWriter::open(dir.path(), LOGS_FILE, 10, 1).unwrap();
    writer.write_line(b"{}\n").unwrap();
    writer.write_line(b"{\"long\":\"0123456789\"}\n").unwrap();
    writer.write_line(b"{}\n").unwrap();
    assert_eq!(
        lines(&rotated(dir.path(), 1)),
        ["{\"long\":\"0123456789\"}"]
    );
    assert_eq!(lines(&dir.path().join(LOGS_FILE)), ["{}"]);
}

#[test]
fn write_after_shutdown_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let writer = JsonlWriter::open(dir.path(), LOGS_FILE, 100, 1).unwrap();
    writer.shutdown().unwrap();
    assert!(writer.write_line(b"{}\n").is_err());
}

#[test]
fn unusable_directory_is_a_startup_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // A directory below a regular file cannot exist, whatever our privileges (tests may run as
    // root, which ignores permission bits).
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let target = blocker.join("huatuo");
    let err = FileLogExporter::new(&file_config(&target)).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains(&target.display().to_string()), "{message}");
    assert!(message.contains("exporters.file"), "{message}");

    let config = ExportersConfig {
        file: file_config(&target),
        ..Default::default()
    };
    let err = build_providers(&config, resource()).unwrap_err();
    assert!(format!("{err:#}").contains(&target.display().to_string()));

    // A directory where the file should be: the directory exists but the file cannot be opened.
    std::fs::create_dir(dir.path().join(METRICS_FILE)).unwrap();
    let err = FileMetricExporter::new(&file_config(dir.path())).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains(&dir.path().join(METRICS_FILE).display().to_string()),
        "{message}"
    );
}

#[test]
fn directory_is_created_with_mode_0750() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a/b");
    FileSpanExporter::new(&file_config(&target)).unwrap();
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    // The umask can only remove bits.
    assert_eq!(mode & !0o750, 0, "{mode:o}");
    assert!(target.join(TRACES_FILE).exists());
}

fn file_only(dir: &Path) -> ExportersConfig {
    // Metrics only at shutdown, so the test sees exactly the exports it asked for.
    ExportersConfig {
        file: file_config(dir),
        batch_interval_ms: 50,
        metrics_interval_secs: 3600,
        ..Default::default()
    }
}

fn emit_all(providers: &Providers) {
    emit_event(&providers.logs);
    providers
        .metrics
        .meter("huatuo.test")
        .u64_counter("linux.test.count")
        .build()
        .add(7, &[KeyValue::new("cpu", 3_i64)]);
    let tracer = providers.traces.tracer("huatuo.test");
    let mut span = tracer.start("linux.test.span");
    span.set_attribute(KeyValue::new("comm", "swapper/0"));
    span.end();
}

/// `metric_exports`: the periodic reader exports on every flush and at shutdown.
fn assert_all_written(dir: &Path, metric_exports: usize) {
    let logs = lines(&dir.join(LOGS_FILE));
    assert_eq!(logs.len(), 1, "{logs:?}");
    let logs: ExportLogsServiceRequest = serde_json::from_str(&logs[0]).unwrap();
    let resource_logs = &logs.resource_logs[0];
    assert_resource(&resource_logs.resource.as_ref().unwrap().attributes);
    let record = &resource_logs.scope_logs[0].log_records[0];
    assert_eq!(record.event_name, "huatuo.skb.drop");
    assert_eq!(int_attr(&record.attributes, "process.pid"), Some(4242));

    let metrics = lines(&dir.join(METRICS_FILE));
    assert_eq!(metrics.len(), metric_exports, "{metrics:?}");
    let metrics: ExportMetricsServiceRequest =
        serde_json::from_str(metrics.last().unwrap()).unwrap();
    // The agent's own export counters come along; the test's metric is found by name.
    let metric = metrics.resource_metrics[0]
        .scope_metrics
        .iter()
        .flat_map(|scope| &scope.metrics)
        .find(|m| m.name == "linux.test.count")
        .expect("linux.test.count exported");
    let Some(metric::Data::Sum(sum)) = &metric.data else {
        panic!("not a sum: {metric:?}");
    };
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsInt(7))
    );

    let traces = lines(&dir.join(TRACES_FILE));
    assert_eq!(traces.len(), 1);
    let traces: ExportTraceServiceRequest = serde_json::from_str(&traces[0]).unwrap();
    let resource_spans = &traces.resource_spans[0];
    assert_resource(&resource_spans.resource.as_ref().unwrap().attributes);
    let span = &resource_spans.scope_spans[0].spans[0];
    assert_eq!(span.name, "linux.test.span");
    assert_eq!(
        string_attr(&span.attributes, "comm").as_deref(),
        Some("swapper/0")
    );
}

#[test]
fn build_providers_with_file_writes_all_signals_without_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let providers = build_providers(&file_only(dir.path()), resource()).unwrap();
    emit_all(&providers);
    providers.shutdown(Duration::from_secs(5)).unwrap();
    assert_all_written(dir.path(), 1);

    let err = providers.shutdown(Duration::from_secs(1)).unwrap_err();
    assert!(format!("{err:#}").contains("logs"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_providers_and_shutdown_from_a_runtime_worker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    // Spawned, so shutdown runs on a worker thread rather than in `block_on`.
    tokio::spawn(async move {
        let providers = build_providers(&file_only(&path), resource()).unwrap();
        emit_all(&providers);
        providers.force_flush().unwrap();
        providers.shutdown(Duration::from_secs(5)).unwrap();
    })
    .await
    .unwrap();
    assert_all_written(dir.path(), 2);
}

#[test]
fn shutdown_from_a_current_thread_runtime_returns() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let providers = build_providers(&file_only(dir.path()), resource()).unwrap();
        emit_all(&providers);
        providers.shutdown(Duration::from_secs(5)).unwrap();
    });
    assert_all_written(dir.path(), 1);
}

#[test]
fn no_exporter_enabled_is_an_error() {
    let mut config = ExportersConfig::default();
    config.file.enabled = false;
    config.otlp.enabled = false;
    let err = build_providers(&config, resource()).unwrap_err();
    assert!(format!("{err:#}").contains("no exporter"), "{err:#}");
}
