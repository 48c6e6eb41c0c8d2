//! Reads the agent's file exporter output: `logs.jsonl`, `metrics.jsonl` and `traces.jsonl`,
//! one OTLP/JSON export request per line, plus their rotations (`logs.jsonl.1` newest).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::signals::Received;

pub const LOGS_FILE: &str = "logs.jsonl";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const TRACES_FILE: &str = "traces.jsonl";

/// Parses one OTLP/JSON message, strictly.
///
/// opentelemetry-proto's serde derives already take the canonical encoding (lowerCamelCase keys,
/// hex ids, 64-bit integers as strings or numbers, enums as integers), so no conversion is
/// needed. But they silently ignore unknown keys, as OTLP/JSON receivers must: a message written
/// with the original snake_case field names would read as empty. Since these files are the
/// agent's output under test, the two encodings the OTLP spec forbids — snake_case keys and enum
/// names instead of numbers — are reported as errors instead.
pub fn parse_otlp_json<T: DeserializeOwned>(text: &str) -> anyhow::Result<T> {
    let value: Value = serde_json::from_str(text).map_err(|e| anyhow!("{e}"))?;
    check_encoding(&value, &mut String::from("$"))?;
    // From the text rather than the value: the error then carries a column.
    serde_json::from_str(text).map_err(|e| anyhow!("{e}"))
}

/// Object keys in OTLP/JSON are always field names (attribute keys live in `"key"` values), so
/// any key with an underscore is a proto name used where the JSON name belongs.
fn check_encoding(value: &Value, path: &mut String) -> anyhow::Result<()> {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key.contains('_') {
                    bail!(
                        "key {key:?} at {path}: OTLP/JSON keys must be lowerCamelCase field names"
                    );
                }
                if let Value::String(name) = v {
                    if is_enum_name(key, name) {
                        bail!(
                            "{path}.{key} is the enum name {name:?}: OTLP/JSON requires the number"
                        );
                    }
                }
                let len = path.len();
                path.push('.');
                path.push_str(key);
                check_encoding(v, path)?;
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_encoding(v, path)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_enum_name(key: &str, name: &str) -> bool {
    match key {
        "severityNumber" => SeverityNumber::from_str_name(name).is_some(),
        "aggregationTemporality" => AggregationTemporality::from_str_name(name).is_some(),
        "kind" => SpanKind::from_str_name(name).is_some(),
        "code" => StatusCode::from_str_name(name).is_some(),
        _ => false,
    }
}

/// Reads one JSON-lines file. A last line without its newline is still being written: it is
/// used if it parses and skipped otherwise, when `tolerate_partial_tail` is set. Any other bad
/// line is an error naming the file and line.
pub fn read_file<T: DeserializeOwned>(
    path: &Path,
    tolerate_partial_tail: bool,
) -> anyhow::Result<Vec<T>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    let mut lines = bytes.split(|b| *b == b'\n').enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let is_last = lines.peek().is_none();
        // split() yields an empty tail after a final newline; an unterminated tail is non-empty.
        let unterminated = is_last && !line.is_empty();
        let parsed = std::str::from_utf8(line)
            .map_err(anyhow::Error::from)
            .and_then(|text| {
                if text.trim().is_empty() {
                    Ok(None)
                } else {
                    parse_otlp_json::<T>(text).map(Some)
                }
            });
        match parsed {
            Ok(Some(v)) => out.push(v),
            Ok(None) => {}
            Err(_) if unterminated && tolerate_partial_tail => {}
            Err(e) => {
                let tail = if unterminated {
                    " (last line, no newline)"
                } else {
                    ""
                };
                return Err(e.context(format!("{}:{}{tail}", path.display(), index + 1)));
            }
        }
    }
    Ok(out)
}

/// `base` and its rotations, oldest first: `base.N`, ..., `base.1`, `base`. Missing files are
/// left out.
pub fn signal_files(dir: &Path, base: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut rotated: Vec<(u64, PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let prefix = format!("{base}.");
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name
            .strip_prefix(&prefix)
            .and_then(|n| n.parse::<u64>().ok())
        {
            rotated.push((n, entry.path()));
        }
    }
    rotated.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    let live = dir.join(base);
    if live.exists() {
        files.push(live);
    }
    Ok(files)
}

/// All requests of one signal. Only the live file may end in a partial line: a rotated file was
/// complete when it was renamed.
pub fn read_signal<T: DeserializeOwned>(dir: &Path, base: &str) -> anyhow::Result<Vec<T>> {
    let live = dir.join(base);
    let mut out = Vec::new();
    for path in signal_files(dir, base)? {
        out.extend(read_file(&path, path == live)?);
    }
    Ok(out)
}

/// Everything in a file exporter directory. Missing files count as empty, since the agent only
/// creates a signal's file when it first exports that signal.
pub fn read_dir(dir: &Path) -> anyhow::Result<Received> {
    Ok(Received {
        logs: read_signal(dir, LOGS_FILE)?,
        metrics: read_signal(dir, METRICS_FILE)?,
        traces: read_signal(dir, TRACES_FILE)?,
    })
}

/// Polls `dir` until `f` holds. A parse error fails at once: waiting would not fix a malformed
/// complete line. The timeout error names `what` and summarizes what the files held.
pub async fn wait_for<F: Fn(&Received) -> bool>(
    dir: &Path,
    timeout: Duration,
    what: &str,
    f: F,
) -> anyhow::Result<Received> {
    const POLL: Duration = Duration::from_millis(100);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let snapshot = read_dir(dir)?;
        if f(&snapshot) {
            return Ok(snapshot);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "timed out after {timeout:?} waiting for {what} in {}; files held: {}",
                dir.display(),
                snapshot.summary()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value;

    /// Written by hand from the OTLP/JSON rules rather than produced by serde, so the test does
    /// not just check that serde agrees with itself.
    const LOG_LINE: &str = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"host.name","value":{"stringValue":"node-1"}}]},"scopeLogs":[{"scope":{"name":"huatuo","version":"0.1.0"},"logRecords":[{"timeUnixNano":"1700000000000000123","observedTimeUnixNano":"1700000000000000456","severityNumber":13,"severityText":"WARN","eventName":"kernel.net.drop","body":{"stringValue":"dropped"},"attributes":[{"key":"cpu","value":{"intValue":"5"}},{"key":"len","value":{"intValue":60}},{"key":"ratio","value":{"doubleValue":0.25}},{"key":"ok","value":{"boolValue":false}},{"key":"raw","value":{"bytesValue":"AQID"}},{"key":"stack","value":{"arrayValue":{"values":[{"stringValue":"kfree_skb"}]}}}],"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","flags":1,"unknownFutureField":{"x":1}}]}]}]}"#;

    const METRIC_LINE: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[]},"scopeMetrics":[{"scope":{"name":"huatuo"},"metrics":[{"name":"huatuo.drops","unit":"{packet}","sum":{"dataPoints":[{"attributes":[{"key":"net.protocol","value":{"stringValue":"tcp"}}],"startTimeUnixNano":"1","timeUnixNano":"2","asInt":"42"}],"aggregationTemporality":2,"isMonotonic":true}},{"name":"huatuo.latency","histogram":{"dataPoints":[{"timeUnixNano":"3","count":"4","sum":10.5,"bucketCounts":["1","3"],"explicitBounds":[1.0]}],"aggregationTemporality":2}},{"name":"huatuo.queue","gauge":{"dataPoints":[{"timeUnixNano":"3","asDouble":0.5}]}}]}]}]}"#;

    const TRACE_LINE: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"","name":"tracer.start","kind":1,"startTimeUnixNano":"10","endTimeUnixNano":"20","status":{"code":2,"message":"boom"},"events":[{"timeUnixNano":"15","name":"retry"}]}]}]}]}"#;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn hand_written_otlp_json_with_string_ints_parses() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), LOGS_FILE, &format!("{LOG_LINE}\n"));
        write(dir.path(), METRICS_FILE, &format!("{METRIC_LINE}\n"));
        write(dir.path(), TRACES_FILE, &format!("{TRACE_LINE}\n"));
        let r = read_dir(dir.path()).unwrap();

        let logs = r.logs_with_event("kernel.net.drop");
        assert_eq!(logs.len(), 1);
        let l = &logs[0];
        assert_eq!(l.time_unix_nano, 1_700_000_000_000_000_123);
        assert_eq!(l.observed_time_unix_nano, 1_700_000_000_000_000_456);
        assert_eq!(l.severity_number, 13);
        assert_eq!(l.attr_i64("cpu"), Some(5));
        assert_eq!(l.attr_i64("len"), Some(60));
        assert_eq!(l.attr_f64("ratio"), Some(0.25));
        assert_eq!(l.attr_bool("ok"), Some(false));
        assert_eq!(
            l.attr("raw"),
            Some(&crate::signals::AttrValue::Bytes(vec![1, 2, 3]))
        );
        assert_eq!(l.attr("stack").unwrap().to_string(), "[kfree_skb]");
        assert_eq!(l.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(l.span_id, "eee19b7ec3c1b174");
        assert_eq!(l.resource_str("host.name"), Some("node-1"));

        assert_eq!(
            r.latest_sum_i64("huatuo.drops", &[("net.protocol", "tcp")]),
            Some(42)
        );
        assert_eq!(r.histogram_count("huatuo.latency", &[]), Some(4));
        assert_eq!(r.latest_gauge("huatuo.queue", &[]), Some(0.5));

        let spans = r.spans();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].status_code, 2);
        assert_eq!(spans[0].end_time_unix_nano, 20);
        assert_eq!(spans[0].events[0].name, "retry");
    }

    #[test]
    fn serde_output_round_trips() {
        let original: ExportLogsServiceRequest = parse_otlp_json(LOG_LINE).unwrap();
        let line = serde_json::to_string(&original).unwrap();
        assert!(
            line.contains(r#""timeUnixNano":"1700000000000000123""#),
            "{line}"
        );
        assert!(line.contains(r#""intValue":"5""#), "{line}");
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), LOGS_FILE, &format!("{line}\n{line}\n"));
        let back = read_dir(dir.path()).unwrap();
        assert_eq!(back.logs, vec![original.clone(), original]);

        let m: ExportMetricsServiceRequest = parse_otlp_json(METRIC_LINE).unwrap();
        let again: ExportMetricsServiceRequest =
            parse_otlp_json(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(m, again);
        let t: ExportTraceServiceRequest = parse_otlp_json(TRACE_LINE).unwrap();
        let again: ExportTraceServiceRequest =
            parse_otlp_json(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(t, again);
    }

    #[test]
    fn forbidden_encodings_are_errors_not_empty_data() {
        let snake = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"time_unix_nano":"7"}]}]}]}"#;
        let err = parse_otlp_json::<ExportLogsServiceRequest>(snake)
            .unwrap_err()
            .to_string();
        assert!(err.contains("time_unix_nano"), "{err}");
        assert!(
            err.contains("$.resourceLogs[0].scopeLogs[0].logRecords[0]"),
            "{err}"
        );

        let named = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"s","kind":"SPAN_KIND_CLIENT"}]}]}]}"#;
        let err = parse_otlp_json::<ExportTraceServiceRequest>(named)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SPAN_KIND_CLIENT"), "{err}");

        // Attribute values are data, not field names or enums.
        let data = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"kind","value":{"stringValue":"SPAN_KIND_CLIENT"}},{"key":"a_b","value":{"stringValue":"x_y"}}],"body":null}]}]}]}"#;
        let r: ExportLogsServiceRequest = parse_otlp_json(data).unwrap();
        let record = &r.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.attributes[1].key, "a_b");
        assert!(record.body.is_none());
        assert!(matches!(
            record.attributes[0].value.as_ref().unwrap().value,
            Some(any_value::Value::StringValue(_))
        ));
    }

    #[test]
    fn partial_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let partial = &LOG_LINE[..LOG_LINE.len() / 2];
        write(
            dir.path(),
            LOGS_FILE,
            &format!("{LOG_LINE}\n{LOG_LINE}\n{partial}"),
        );
        assert_eq!(read_dir(dir.path()).unwrap().logs.len(), 2);

        // A complete line without its newline yet is still a whole request.
        write(dir.path(), LOGS_FILE, &format!("{LOG_LINE}\n{LOG_LINE}"));
        assert_eq!(read_dir(dir.path()).unwrap().logs.len(), 2);

        // A multi-byte character cut in half must not turn into an error either.
        let cut = "{\"resourceLogs\":[{\"x\":\"\u{00e9}".as_bytes();
        let mut bytes = format!("{LOG_LINE}\n").into_bytes();
        bytes.extend_from_slice(&cut[..cut.len() - 1]);
        std::fs::write(dir.path().join(LOGS_FILE), bytes).unwrap();
        assert_eq!(read_dir(dir.path()).unwrap().logs.len(), 1);
    }

    #[test]
    fn malformed_middle_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            METRICS_FILE,
            &format!("{METRIC_LINE}\n{{\"resourceMetrics\": [}}\n{METRIC_LINE}\n"),
        );
        let err = format!("{:#}", read_dir(dir.path()).unwrap_err());
        assert!(err.contains("metrics.jsonl:2"), "{err}");

        // Valid JSON of the wrong shape is malformed too.
        write(
            dir.path(),
            METRICS_FILE,
            &format!("{METRIC_LINE}\n{METRIC_LINE}\n{{\"resourceMetrics\":\"x\"}}\n"),
        );
        let err = format!("{:#}", read_dir(dir.path()).unwrap_err());
        assert!(err.contains("metrics.jsonl:3"), "{err}");
    }

    #[test]
    fn rotated_files_are_read_oldest_first_and_must_be_complete() {
        let dir = tempfile::tempdir().unwrap();
        let with_event = |name: &str| LOG_LINE.replace("kernel.net.drop", name);
        write(
            dir.path(),
            "logs.jsonl.2",
            &format!("{}\n", with_event("a")),
        );
        write(
            dir.path(),
            "logs.jsonl.1",
            &format!("{}\n", with_event("b")),
        );
        write(dir.path(), LOGS_FILE, &format!("{}\n", with_event("c")));
        write(dir.path(), "logs.jsonl.tmp", "not a rotation");
        let names: Vec<String> = read_dir(dir.path())
            .unwrap()
            .log_records()
            .into_iter()
            .map(|l| l.event_name)
            .collect();
        assert_eq!(names, ["a", "b", "c"]);

        write(dir.path(), "logs.jsonl.1", &LOG_LINE[..10]);
        let err = format!("{:#}", read_dir(dir.path()).unwrap_err());
        assert!(err.contains("logs.jsonl.1:1"), "{err}");
    }

    #[test]
    fn missing_directory_and_files_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_dir(dir.path()).unwrap().is_empty());
        assert!(read_dir(&dir.path().join("nope")).unwrap().is_empty());
    }

    #[tokio::test]
    async fn wait_for_reports_what_the_files_held() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), LOGS_FILE, &format!("{LOG_LINE}\n"));
        let err = wait_for(dir.path(), Duration::from_millis(150), "a span", |r| {
            r.span_count() > 0
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("waiting for a span"), "{err}");
        assert!(err.contains("kernel.net.drop"), "{err}");

        let found = wait_for(dir.path(), Duration::from_secs(1), "a drop", |r| {
            !r.logs_with_event("kernel.net.drop").is_empty()
        })
        .await
        .unwrap();
        assert_eq!(found.log_record_count(), 1);
    }
}
