//! The OTel side of the agent: the host resource, the SDK providers, the agent's own logging, and
//! the one place where decoded records become log events (with attribution applied).

use crate::attribution::{Attributor, Owner};
use huatuo_config::Config;
use huatuo_exporters::Providers;
use huatuo_semconv::{agent as agent_names, resource as res};
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry::metrics::{Meter, MeterProvider};
use opentelemetry::trace::{Span, SpanContext, SpanKind, Tracer, TracerProvider};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::logs::SdkLogger;
use opentelemetry_sdk::trace::SdkTracer;
use opentelemetry_sdk::Resource;
use std::time::{Duration, SystemTime};

const SCOPE: &str = "huatuo-otel";

/// A kernel event ready to be exported: names come from `huatuo_semconv`, values from a decoder.
pub struct Event {
    pub name: &'static str,
    pub tracer: &'static str,
    pub time: SystemTime,
    pub severity: Severity,
    /// A short human-readable summary; the data is in the attributes.
    pub body: String,
    pub attributes: Vec<(&'static str, AnyValue)>,
    /// Whose event it is: what attribution turns into container and pod attributes.
    pub owner: Owner,
    /// How long the reported condition lasted, ending at `time`, when the tracer's `spans` option
    /// asks for the event to be a span as well: the span carries the same attributes and the log
    /// record is emitted inside it, so backends link the two.
    pub span: Option<Duration>,
}

/// Handles shared by all tracers to emit telemetry.
pub struct Telemetry {
    pub meter: Meter,
    logger: SdkLogger,
    tracer: SdkTracer,
    pub attribution: Attributor,
}

impl Telemetry {
    pub fn new(providers: &Providers, attribution: Attributor) -> Self {
        Self {
            meter: providers.metrics.meter(SCOPE),
            logger: providers.logs.logger(SCOPE),
            tracer: providers.traces.tracer(SCOPE),
            attribution,
        }
    }

    /// Emits one event as an OTel log record with `EventName` set, and as a span when it asks to.
    pub fn emit(&self, event: Event) {
        self.emit_linked(event, None)
    }

    /// Emits an event captured during `capture`: its log record is linked to the capture's span.
    pub fn emit_in(&self, capture: &CaptureSpan, event: Event) {
        self.emit_linked(event, Some(capture.span.span_context().clone()))
    }

    fn emit_linked(&self, event: Event, parent: Option<SpanContext>) {
        let attributes = self.attributed(event.attributes, event.tracer, &event.owner);
        let mut record = self.logger.create_log_record();
        let context = match (parent, event.span) {
            (Some(parent), _) => Some(parent),
            (None, Some(duration)) => {
                Some(self.span(event.name, event.time, duration, &attributes))
            }
            (None, None) => None,
        };
        if let Some(context) = context {
            record.set_trace_context(
                context.trace_id(),
                context.span_id(),
                Some(context.trace_flags()),
            );
        }
        record.set_event_name(event.name);
        record.set_timestamp(event.time);
        record.set_observed_timestamp(SystemTime::now());
        record.set_severity_number(event.severity);
        record.set_body(AnyValue::from(event.body));
        record.add_attributes(attributes);
        self.logger.emit(record);
    }

    /// Starts the span of an autotracing capture at `start` (the trigger); end it with
    /// [`CaptureSpan::end`] when the capture is finished.
    pub fn start_capture(
        &self,
        name: &'static str,
        tracer: &'static str,
        start: SystemTime,
        attributes: Vec<(&'static str, AnyValue)>,
        owner: &Owner,
    ) -> CaptureSpan {
        let attributes = self.attributed(attributes, tracer, owner);
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_attributes(span_attributes(&attributes))
            .start(&self.tracer);
        CaptureSpan { span }
    }

    /// `attributes` with the tracer's name and the attribution of `owner` added.
    fn attributed(
        &self,
        mut attributes: Vec<(&'static str, AnyValue)>,
        tracer: &'static str,
        owner: &Owner,
    ) -> Vec<(&'static str, AnyValue)> {
        attributes.push((agent_names::TRACER_NAME, AnyValue::from(tracer)));
        attributes.extend(self.attribution.record_attributes(owner));
        attributes
    }

    /// The event as a finished span ending at the event's time.
    fn span(
        &self,
        name: &'static str,
        end: SystemTime,
        duration: Duration,
        attributes: &[(&'static str, AnyValue)],
    ) -> SpanContext {
        let start = end.checked_sub(duration).unwrap_or(end);
        let mut span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_attributes(span_attributes(attributes))
            .start(&self.tracer);
        span.end_with_timestamp(end);
        span.span_context().clone()
    }
}

/// The span of an autotracing capture, from its trigger until [`CaptureSpan::end`].
pub struct CaptureSpan {
    span: opentelemetry_sdk::trace::Span,
}

impl CaptureSpan {
    /// Ends the span now, adding what the capture found out.
    pub fn end(mut self, attributes: Vec<(&'static str, AnyValue)>, failed: Option<String>) {
        self.span.set_attributes(span_attributes(&attributes));
        if let Some(reason) = failed {
            self.span
                .set_status(opentelemetry::trace::Status::error(reason));
        }
        self.span.end();
    }
}

fn span_attributes(attributes: &[(&'static str, AnyValue)]) -> Vec<KeyValue> {
    attributes
        .iter()
        .filter_map(|(key, value)| Some(KeyValue::new(*key, span_value(value)?)))
        .collect()
}

/// Span attributes cannot hold maps or bytes; those stay on the log record only.
fn span_value(value: &AnyValue) -> Option<Value> {
    Some(match value {
        AnyValue::Int(i) => Value::I64(*i),
        AnyValue::Double(d) => Value::F64(*d),
        AnyValue::String(s) => Value::String(s.clone()),
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::ListAny(items) => Value::Array(Array::String(
            items
                .iter()
                .map(|item| match item {
                    AnyValue::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<StringValue>>>()?,
        )),
        _ => return None,
    })
}

/// Which host and agent produced the data.
pub fn resource(config: &Config, kernel_release: &str) -> Resource {
    let host_id = host_id();
    let mut attributes = vec![
        KeyValue::new(res::SERVICE_NAME, "huatuo-otel"),
        KeyValue::new(res::SERVICE_VERSION, env!("CARGO_PKG_VERSION")),
        KeyValue::new(res::HOST_NAME, host_name()),
        KeyValue::new(res::HOST_ARCH, host_arch()),
        KeyValue::new(res::OS_TYPE, "linux"),
        KeyValue::new(res::OS_VERSION, kernel_release.to_string()),
    ];
    if let Some(id) = host_id {
        attributes.push(KeyValue::new(res::HOST_ID, id.clone()));
        attributes.push(KeyValue::new(res::SERVICE_INSTANCE_ID, id));
    }
    if !config.agent.region.is_empty() {
        attributes.push(KeyValue::new(
            res::HUATUO_REGION,
            config.agent.region.clone(),
        ));
    }
    for (key, value) in &config.agent.resource_attributes {
        attributes.push(KeyValue::new(key.clone(), value.clone()));
    }
    // Bypass the SDK's environment detectors: the agent's resource is described by its own
    // config, and OTEL_RESOURCE_ATTRIBUTES from a container image must not rename the host.
    Resource::builder_empty()
        .with_attributes(attributes)
        .build()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn host_id() -> Option<String> {
    [
        "/etc/machine-id",
        "/var/lib/dbus/machine-id",
        "/sys/class/dmi/id/product_uuid",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .map(|s| s.trim().to_string())
    .find(|s| !s.is_empty())
}

/// The OTel `host.arch` value for the architecture this binary was built for.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        other => other,
    }
}

/// Sets up the agent's own logging: stderr always; the OTel pipeline too when
/// `agent.self_telemetry` is set. The SDK's own internal logs never go back into the pipeline,
/// which would loop.
pub fn init_logging(config: &Config, providers: Option<&Providers>) -> anyhow::Result<()> {
    use opentelemetry::trace::TracerProvider;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;

    let level = || {
        EnvFilter::try_new(&config.agent.log_level).map_err(|e| {
            anyhow::anyhow!(
                "invalid configuration: agent.log_level {:?}: {e}",
                config.agent.log_level
            )
        })
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(level()?);
    let registry = tracing_subscriber::registry().with(stderr);
    match providers.filter(|_| config.agent.self_telemetry) {
        Some(p) => {
            use tracing_subscriber::filter::{filter_fn, FilterExt};
            const EXPORT_PATH: [&str; 5] = ["opentelemetry", "tonic", "h2", "hyper", "reqwest"];
            let not_export_path =
                || filter_fn(|meta| !EXPORT_PATH.iter().any(|t| meta.target().starts_with(t)));
            let logs =
                opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&p.logs)
                    .with_filter(level()?.and(not_export_path()));
            let spans = tracing_opentelemetry::layer()
                .with_tracer(p.traces.tracer(SCOPE))
                .with_filter(level()?.and(not_export_path()));
            registry.with(logs).with(spans).try_init()?;
        }
        None => registry.try_init()?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
    use opentelemetry_sdk::metrics::SdkMeterProvider;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    fn event(span: Option<Duration>) -> Event {
        Event {
            name: "huatuo.test.event",
            tracer: "test",
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000),
            severity: Severity::Warn,
            body: "stalled".into(),
            attributes: vec![
                ("huatuo.test.ms", AnyValue::Int(5)),
                ("huatuo.test.map", AnyValue::Map(Box::default())),
            ],
            owner: Owner::default(),
            span,
        }
    }

    #[test]
    fn an_event_with_a_duration_is_also_a_span_linked_to_its_log_record() {
        let logs = InMemoryLogExporter::default();
        let spans = InMemorySpanExporter::default();
        let providers = Providers {
            logs: SdkLoggerProvider::builder()
                .with_simple_exporter(logs.clone())
                .build(),
            metrics: SdkMeterProvider::builder().build(),
            traces: SdkTracerProvider::builder()
                .with_simple_exporter(spans.clone())
                .build(),
            prometheus: None,
            delivery: None,
        };
        let telemetry = Telemetry::new(&providers, Attributor::new(&Default::default(), None));
        telemetry.emit(event(None));
        telemetry.emit(event(Some(Duration::from_millis(5))));

        let records = logs.get_emitted_logs().unwrap();
        let finished = spans.get_finished_spans().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            finished.len(),
            1,
            "only the event with a duration is a span"
        );
        assert!(records[0].record.trace_context().is_none());

        let span = &finished[0];
        assert_eq!(span.name, "huatuo.test.event");
        assert_eq!(span.end_time, event(None).time);
        assert_eq!(
            span.end_time.duration_since(span.start_time).unwrap(),
            Duration::from_millis(5)
        );
        let keys: Vec<_> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["huatuo.test.ms", agent_names::TRACER_NAME]);

        let linked = records[1].record.trace_context().expect("trace context");
        assert_eq!(linked.trace_id, span.span_context.trace_id());
        assert_eq!(linked.span_id, span.span_context.span_id());
        assert_eq!(records[1].record.attributes_iter().count(), 3);
    }
}
