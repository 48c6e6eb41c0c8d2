//! Flat, test-friendly views over OTLP export requests.
//!
//! The same [`Received`] comes from the in-process receiver (gRPC or HTTP) and from the file
//! exporter's JSON lines, so one assertion works against every export path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fmt::Write as _;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Everything exported so far, as the raw requests (in arrival order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Received {
    pub logs: Vec<ExportLogsServiceRequest>,
    pub metrics: Vec<ExportMetricsServiceRequest>,
    pub traces: Vec<ExportTraceServiceRequest>,
}

/// An attribute or body value. Kept typed (rather than stringly) so tests can check that an
/// attribute registered as `int` is not exported as a string.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AttrValue>),
    Map(BTreeMap<String, AttrValue>),
    /// An `AnyValue` with no value set (legal in OTLP).
    Empty,
}

pub type Attributes = BTreeMap<String, AttrValue>;

impl AttrValue {
    pub fn from_any(value: Option<&AnyValue>) -> Self {
        use any_value::Value;
        match value.and_then(|v| v.value.as_ref()) {
            None => Self::Empty,
            Some(Value::StringValue(s)) => Self::Str(s.clone()),
            Some(Value::BoolValue(b)) => Self::Bool(*b),
            Some(Value::IntValue(i)) => Self::Int(*i),
            Some(Value::DoubleValue(d)) => Self::Double(*d),
            Some(Value::BytesValue(b)) => Self::Bytes(b.clone()),
            Some(Value::ArrayValue(a)) => {
                Self::Array(a.values.iter().map(|v| Self::from_any(Some(v))).collect())
            }
            Some(Value::KvlistValue(kv)) => Self::Map(attributes(&kv.values)),
            // Only profiles use string tables; logs, metrics and traces never should.
            Some(Value::StringValueStrindex(i)) => Self::Str(format!("<string table index {i}>")),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Only a true integer: a double or a numeric string is a type error worth seeing.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Double(d) => Some(*d),
            Self::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The type name used by the semantic-convention registry.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Str(_) => "string",
            Self::Bool(_) => "boolean",
            Self::Int(_) => "int",
            Self::Double(_) => "double",
            Self::Bytes(_) => "bytes",
            Self::Array(_) => "array",
            Self::Map(_) => "map",
            Self::Empty => "empty",
        }
    }
}

/// Strings print bare so that attribute filters can be written as `("cpu", "0")` or
/// `("protocol", "tcp")` whatever the value's type.
impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Double(d) => write!(f, "{d}"),
            Self::Bytes(b) => f.write_str(&hex(b)),
            Self::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Self::Map(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Self::Empty => Ok(()),
        }
    }
}

/// Later duplicates win; OTLP forbids duplicate keys, so tests that care should check the raw
/// request.
pub fn attributes(kvs: &[KeyValue]) -> Attributes {
    kvs.iter()
        .map(|kv| (kv.key.clone(), AttrValue::from_any(kv.value.as_ref())))
        .collect()
}

fn resource_attributes(resource: Option<&Resource>) -> Attributes {
    resource
        .map(|r| attributes(&r.attributes))
        .unwrap_or_default()
}

fn scope_parts(scope: Option<&InstrumentationScope>) -> (String, String) {
    scope
        .map(|s| (s.name.clone(), s.version.clone()))
        .unwrap_or_default()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// True when every `(key, value)` pair is present; values compare by their [`fmt::Display`] form.
pub fn matches_filter(attrs: &Attributes, filter: &[(&str, &str)]) -> bool {
    filter
        .iter()
        .all(|(k, want)| attrs.get(*k).is_some_and(|v| v.to_string() == *want))
}

macro_rules! attribute_accessors {
    ($t:ty) => {
        impl $t {
            pub fn attr(&self, key: &str) -> Option<&AttrValue> {
                self.attributes.get(key)
            }
            pub fn attr_str(&self, key: &str) -> Option<&str> {
                self.attr(key).and_then(AttrValue::as_str)
            }
            pub fn attr_i64(&self, key: &str) -> Option<i64> {
                self.attr(key).and_then(AttrValue::as_i64)
            }
            pub fn attr_f64(&self, key: &str) -> Option<f64> {
                self.attr(key).and_then(AttrValue::as_f64)
            }
            pub fn attr_bool(&self, key: &str) -> Option<bool> {
                self.attr(key).and_then(AttrValue::as_bool)
            }
            pub fn resource_str(&self, key: &str) -> Option<&str> {
                self.resource.get(key).and_then(AttrValue::as_str)
            }
            pub fn matches(&self, filter: &[(&str, &str)]) -> bool {
                matches_filter(&self.attributes, filter)
            }
        }
    };
}

/// One log record with the context it was exported in.
#[derive(Clone, Debug, PartialEq)]
pub struct LogView {
    pub event_name: String,
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: String,
    pub body: Option<AttrValue>,
    pub attributes: Attributes,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
    /// Lower-case hex; empty when the record is not in a trace.
    pub trace_id: String,
    pub span_id: String,
}
attribute_accessors!(LogView);

impl LogView {
    /// The integer attribute `key`, or a panic that shows the whole record.
    pub fn expect_i64(&self, key: &str) -> i64 {
        self.attr_i64(key)
            .unwrap_or_else(|| panic!("no integer {key} in {self:?}"))
    }

    pub fn body_str(&self) -> Option<&str> {
        self.body.as_ref().and_then(AttrValue::as_str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Temporality {
    Unspecified,
    Delta,
    Cumulative,
}

impl Temporality {
    fn from_proto(v: i32) -> Self {
        match v {
            1 => Self::Delta,
            2 => Self::Cumulative,
            _ => Self::Unspecified,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Gauge,
    Sum {
        monotonic: bool,
        temporality: Temporality,
    },
    Histogram {
        temporality: Temporality,
    },
    ExponentialHistogram {
        temporality: Temporality,
    },
    Summary,
    /// A metric with no data set.
    Empty,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PointValue {
    Int(i64),
    Double(f64),
    Histogram {
        count: u64,
        sum: Option<f64>,
        bucket_counts: Vec<u64>,
        explicit_bounds: Vec<f64>,
    },
    ExponentialHistogram {
        count: u64,
        sum: Option<f64>,
    },
    Summary {
        count: u64,
        sum: f64,
    },
    /// A number data point with neither `asInt` nor `asDouble`.
    Missing,
}

impl PointValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(i) => Some(*i as f64),
            Self::Double(d) => Some(*d),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn count(&self) -> Option<u64> {
        match self {
            Self::Histogram { count, .. }
            | Self::ExponentialHistogram { count, .. }
            | Self::Summary { count, .. } => Some(*count),
            _ => None,
        }
    }
}

/// One data point with its metric's identity and the context it was exported in.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    pub name: String,
    pub description: String,
    pub unit: String,
    pub kind: MetricKind,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub value: PointValue,
    pub attributes: Attributes,
    pub resource: Attributes,
    pub scope_name: String,
}
attribute_accessors!(MetricPoint);

#[derive(Clone, Debug, PartialEq)]
pub struct SpanEventView {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Attributes,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpanView {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub kind: i32,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    /// `status.code`: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub status_message: String,
    pub events: Vec<SpanEventView>,
    pub attributes: Attributes,
    pub resource: Attributes,
    pub scope_name: String,
}
attribute_accessors!(SpanView);

fn metric_points(metric: &Metric, resource: &Attributes, scope_name: &str) -> Vec<MetricPoint> {
    let point = |kind, start, time, value, attrs: &[KeyValue]| MetricPoint {
        name: metric.name.clone(),
        description: metric.description.clone(),
        unit: metric.unit.clone(),
        kind,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value,
        attributes: attributes(attrs),
        resource: resource.clone(),
        scope_name: scope_name.to_owned(),
    };
    let number = |v: &Option<number_data_point::Value>| match v {
        Some(number_data_point::Value::AsInt(i)) => PointValue::Int(*i),
        Some(number_data_point::Value::AsDouble(d)) => PointValue::Double(*d),
        None => PointValue::Missing,
    };
    // The OTLP data point types share these fields but no trait to reach them through.
    macro_rules! points {
        ($kind:expr, $data_points:expr, |$p:ident| $value:expr) => {{
            let kind = $kind;
            $data_points
                .iter()
                .map(|$p| {
                    point(
                        kind,
                        $p.start_time_unix_nano,
                        $p.time_unix_nano,
                        $value,
                        &$p.attributes,
                    )
                })
                .collect()
        }};
    }
    match &metric.data {
        None => vec![point(MetricKind::Empty, 0, 0, PointValue::Missing, &[])],
        Some(metric::Data::Gauge(g)) => {
            points!(MetricKind::Gauge, g.data_points, |p| number(&p.value))
        }
        Some(metric::Data::Sum(s)) => points!(
            MetricKind::Sum {
                monotonic: s.is_monotonic,
                temporality: Temporality::from_proto(s.aggregation_temporality),
            },
            s.data_points,
            |p| number(&p.value)
        ),
        Some(metric::Data::Histogram(h)) => points!(
            MetricKind::Histogram {
                temporality: Temporality::from_proto(h.aggregation_temporality),
            },
            h.data_points,
            |p| PointValue::Histogram {
                count: p.count,
                sum: p.sum,
                bucket_counts: p.bucket_counts.clone(),
                explicit_bounds: p.explicit_bounds.clone(),
            }
        ),
        Some(metric::Data::ExponentialHistogram(h)) => points!(
            MetricKind::ExponentialHistogram {
                temporality: Temporality::from_proto(h.aggregation_temporality),
            },
            h.data_points,
            |p| PointValue::ExponentialHistogram {
                count: p.count,
                sum: p.sum,
            }
        ),
        Some(metric::Data::Summary(s)) => points!(MetricKind::Summary, s.data_points, |p| {
            PointValue::Summary {
                count: p.count,
                sum: p.sum,
            }
        }),
    }
}

impl Received {
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.metrics.is_empty() && self.traces.is_empty()
    }

    /// Appends `other`'s requests after this one's.
    pub fn extend(&mut self, other: Received) {
        self.logs.extend(other.logs);
        self.metrics.extend(other.metrics);
        self.traces.extend(other.traces);
    }

    /// All log records, in arrival order.
    pub fn log_records(&self) -> Vec<LogView> {
        let mut out = Vec::new();
        for rl in self.logs.iter().flat_map(|r| &r.resource_logs) {
            let resource = resource_attributes(rl.resource.as_ref());
            for sl in &rl.scope_logs {
                let (scope_name, scope_version) = scope_parts(sl.scope.as_ref());
                for r in &sl.log_records {
                    out.push(LogView {
                        event_name: r.event_name.clone(),
                        time_unix_nano: r.time_unix_nano,
                        observed_time_unix_nano: r.observed_time_unix_nano,
                        severity_number: r.severity_number,
                        severity_text: r.severity_text.clone(),
                        body: r.body.as_ref().map(|b| AttrValue::from_any(Some(b))),
                        attributes: attributes(&r.attributes),
                        resource: resource.clone(),
                        scope_name: scope_name.clone(),
                        scope_version: scope_version.clone(),
                        trace_id: hex(&r.trace_id),
                        span_id: hex(&r.span_id),
                    });
                }
            }
        }
        out
    }

    pub fn logs_with_event(&self, event_name: &str) -> Vec<LogView> {
        let mut logs = self.log_records();
        logs.retain(|l| l.event_name == event_name);
        logs
    }

    pub fn log_record_count(&self) -> usize {
        self.logs
            .iter()
            .flat_map(|r| &r.resource_logs)
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum()
    }

    /// All metric data points, in arrival order.
    pub fn metric_points(&self) -> Vec<MetricPoint> {
        let mut out = Vec::new();
        for rm in self.metrics.iter().flat_map(|r| &r.resource_metrics) {
            let resource = resource_attributes(rm.resource.as_ref());
            for sm in &rm.scope_metrics {
                let (scope_name, _) = scope_parts(sm.scope.as_ref());
                for m in &sm.metrics {
                    out.extend(metric_points(m, &resource, &scope_name));
                }
            }
        }
        out
    }

    /// Data points of metric `name` whose attributes include every pair of `filter`.
    pub fn points(&self, name: &str, filter: &[(&str, &str)]) -> Vec<MetricPoint> {
        let mut points = self.metric_points();
        points.retain(|p| p.name == name && p.matches(filter));
        points
    }

    /// The newest matching point by `time_unix_nano`; on a tie the one that arrived last wins,
    /// since a re-export of the same collection cycle carries the same timestamp.
    pub fn latest_point(&self, name: &str, filter: &[(&str, &str)]) -> Option<MetricPoint> {
        self.points(name, filter)
            .into_iter()
            .max_by_key(|p| p.time_unix_nano)
    }

    fn latest_of_kind(
        &self,
        name: &str,
        filter: &[(&str, &str)],
        kind: impl Fn(&MetricKind) -> bool,
    ) -> Option<MetricPoint> {
        self.points(name, filter)
            .into_iter()
            .filter(|p| kind(&p.kind))
            .max_by_key(|p| p.time_unix_nano)
    }

    /// The latest value of Sum (counter / up-down counter) `name`. With cumulative temporality
    /// that is the running total; with delta it is only the last interval's increment.
    /// A Gauge of the same name does not match: instrument kind is part of the contract.
    pub fn latest_sum(&self, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
        self.latest_of_kind(name, filter, |k| matches!(k, MetricKind::Sum { .. }))
            .and_then(|p| p.value.as_f64())
    }

    /// The sum over every series of Sum `name` matching `filter` in the latest collection that
    /// reported it (the series of one collection share their timestamp).
    pub fn latest_total(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        let points: Vec<_> = self
            .points(name, filter)
            .into_iter()
            .filter(|p| matches!(p.kind, MetricKind::Sum { .. }))
            .collect();
        let Some(latest) = points.iter().map(|p| p.time_unix_nano).max() else {
            return 0.0;
        };
        points
            .iter()
            .filter(|p| p.time_unix_nano == latest)
            .filter_map(|p| p.value.as_f64())
            .sum()
    }

    /// Like [`Self::latest_sum`] but only for integer points (`asInt`).
    pub fn latest_sum_i64(&self, name: &str, filter: &[(&str, &str)]) -> Option<i64> {
        self.latest_of_kind(name, filter, |k| matches!(k, MetricKind::Sum { .. }))
            .and_then(|p| p.value.as_i64())
    }

    pub fn latest_gauge(&self, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
        self.latest_of_kind(name, filter, |k| matches!(k, MetricKind::Gauge))
            .and_then(|p| p.value.as_f64())
    }

    /// Observation count of the latest (explicit or exponential) histogram point.
    pub fn histogram_count(&self, name: &str, filter: &[(&str, &str)]) -> Option<u64> {
        self.latest_of_kind(name, filter, |k| {
            matches!(
                k,
                MetricKind::Histogram { .. } | MetricKind::ExponentialHistogram { .. }
            )
        })
        .and_then(|p| p.value.count())
    }

    /// All spans, in arrival order.
    pub fn spans(&self) -> Vec<SpanView> {
        let mut out = Vec::new();
        for rs in self.traces.iter().flat_map(|r| &r.resource_spans) {
            let resource = resource_attributes(rs.resource.as_ref());
            for ss in &rs.scope_spans {
                let (scope_name, _) = scope_parts(ss.scope.as_ref());
                for s in &ss.spans {
                    out.push(SpanView {
                        name: s.name.clone(),
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                        kind: s.kind,
                        start_time_unix_nano: s.start_time_unix_nano,
                        end_time_unix_nano: s.end_time_unix_nano,
                        status_code: s.status.as_ref().map_or(0, |st| st.code),
                        status_message: s
                            .status
                            .as_ref()
                            .map(|st| st.message.clone())
                            .unwrap_or_default(),
                        events: s
                            .events
                            .iter()
                            .map(|e| SpanEventView {
                                name: e.name.clone(),
                                time_unix_nano: e.time_unix_nano,
                                attributes: attributes(&e.attributes),
                            })
                            .collect(),
                        attributes: attributes(&s.attributes),
                        resource: resource.clone(),
                        scope_name: scope_name.clone(),
                    });
                }
            }
        }
        out
    }

    pub fn span_count(&self) -> usize {
        self.traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    }

    pub fn metric_point_count(&self) -> usize {
        self.metric_points().len()
    }

    /// Non-empty event names of all log records.
    pub fn event_names(&self) -> BTreeSet<String> {
        self.log_records()
            .into_iter()
            .map(|l| l.event_name)
            .filter(|n| !n.is_empty())
            .collect()
    }

    pub fn metric_names(&self) -> BTreeSet<String> {
        self.metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .map(|m| m.name.clone())
            .collect()
    }

    /// Every (metric name, unit) pair received.
    pub fn metric_units(&self) -> BTreeSet<(String, String)> {
        self.metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .map(|m| (m.name.clone(), m.unit.clone()))
            .collect()
    }

    pub fn span_names(&self) -> BTreeSet<String> {
        self.spans().into_iter().map(|s| s.name).collect()
    }

    /// Keys of log, data point, span and span-event attributes (not resource attributes), for
    /// checking that everything exported is registered in the semantic conventions.
    pub fn attribute_keys(&self) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for l in self.log_records() {
            keys.extend(l.attributes.into_keys());
        }
        for p in self.metric_points() {
            keys.extend(p.attributes.into_keys());
        }
        for s in self.spans() {
            keys.extend(s.attributes.into_keys());
            for e in s.events {
                keys.extend(e.attributes.into_keys());
            }
        }
        keys
    }

    pub fn resource_attribute_keys(&self) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        let resources = self
            .logs
            .iter()
            .flat_map(|r| &r.resource_logs)
            .map(|r| r.resource.as_ref())
            .chain(
                self.metrics
                    .iter()
                    .flat_map(|r| &r.resource_metrics)
                    .map(|r| r.resource.as_ref()),
            )
            .chain(
                self.traces
                    .iter()
                    .flat_map(|r| &r.resource_spans)
                    .map(|r| r.resource.as_ref()),
            );
        for r in resources.flatten() {
            keys.extend(r.attributes.iter().map(|kv| kv.key.clone()));
        }
        keys
    }

    /// A compact description for failure messages: what arrived, not what was expected.
    /// Panics unless every event, span, metric, attribute and resource attribute name received is
    /// registered in `huatuo_semconv` (metrics with their registered unit): code must emit names
    /// only through that registry.
    pub fn assert_names_registered(&self) {
        use huatuo_semconv::{is_registered, Kind};
        let checks = [
            (Kind::Event, self.event_names()),
            (Kind::Metric, self.metric_names()),
            (Kind::Attribute, self.attribute_keys()),
            (Kind::ResourceAttribute, self.resource_attribute_keys()),
        ];
        for (kind, names) in checks {
            for name in names {
                assert!(
                    is_registered(&name, kind),
                    "{kind:?} {name} is not registered in semconv"
                );
            }
        }
        // A unit that differs from the registered one misleads every dashboard built from the
        // reference.
        for (name, unit) in self.metric_units() {
            assert_eq!(
                huatuo_semconv::metric_unit(&name),
                Some(unit.as_str()),
                "metric {name} is exported with unit {unit:?}, not its registered one"
            );
        }
        // Events with a duration become spans named after the event.
        for name in self.span_names() {
            assert!(
                is_registered(&name, Kind::Span) || is_registered(&name, Kind::Event),
                "span {name} is not registered in semconv"
            );
        }
    }

    pub fn summary(&self) -> String {
        // Enough names to recognise a misspelling without burying the message.
        const MAX_NAMES: usize = 40;
        fn names(it: impl IntoIterator<Item = String>) -> String {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for n in it {
                *counts.entry(n).or_default() += 1;
            }
            if counts.is_empty() {
                return "none".into();
            }
            let mut s = counts
                .iter()
                .take(MAX_NAMES)
                .map(|(n, c)| {
                    if *c == 1 {
                        n.clone()
                    } else {
                        format!("{n} x{c}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            if counts.len() > MAX_NAMES {
                let _ = write!(s, ", ... ({} more)", counts.len() - MAX_NAMES);
            }
            s
        }
        let logs = self.log_records();
        let unnamed = logs.iter().filter(|l| l.event_name.is_empty()).count();
        let points = self.metric_points();
        let spans = self.spans();
        format!(
            "logs: {} requests, {} records ({} without event name), event names [{}]; \
             metrics: {} requests, {} points, names [{}]; \
             traces: {} requests, {} spans, names [{}]",
            self.logs.len(),
            logs.len(),
            unnamed,
            names(
                logs.into_iter()
                    .map(|l| l.event_name)
                    .filter(|n| !n.is_empty())
            ),
            self.metrics.len(),
            points.len(),
            names(points.into_iter().map(|p| p.name)),
            self.traces.len(),
            spans.len(),
            names(spans.into_iter().map(|s| s.name)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    };

    pub(crate) fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> any_value::Value {
        any_value::Value::StringValue(v.into())
    }

    fn logs_request() -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("host.name", s("node-1"))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "huatuo".into(),
                        version: "0.1.0".into(),
                        ..Default::default()
                    }),
                    log_records: vec![
                        LogRecord {
                            event_name: "kernel.net.drop".into(),
                            time_unix_nano: 5,
                            severity_number: 13,
                            body: Some(AnyValue {
                                value: Some(s("dropped")),
                            }),
                            attributes: vec![
                                kv("net.protocol", s("tcp")),
                                kv("cpu", any_value::Value::IntValue(3)),
                                kv(
                                    "stack",
                                    any_value::Value::ArrayValue(ArrayValue {
                                        values: vec![AnyValue {
                                            value: Some(s("f1")),
                                        }],
                                    }),
                                ),
                                kv(
                                    "nested",
                                    any_value::Value::KvlistValue(KeyValueList {
                                        values: vec![kv("a", any_value::Value::BoolValue(true))],
                                    }),
                                ),
                            ],
                            trace_id: vec![0xab; 16],
                            ..Default::default()
                        },
                        LogRecord {
                            event_name: "kernel.other".into(),
                            ..Default::default()
                        },
                        LogRecord::default(),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn number(t: u64, v: number_data_point::Value, attrs: Vec<KeyValue>) -> NumberDataPoint {
        NumberDataPoint {
            time_unix_nano: t,
            value: Some(v),
            attributes: attrs,
            ..Default::default()
        }
    }

    fn metrics_request(t: u64, total: i64) -> ExportMetricsServiceRequest {
        let metric = |name: &str, data| Metric {
            name: name.into(),
            data: Some(data),
            ..Default::default()
        };
        let tcp = || {
            vec![
                kv("net.protocol", s("tcp")),
                kv("cpu", any_value::Value::IntValue(0)),
            ]
        };
        let udp = || vec![kv("net.protocol", s("udp"))];
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s("huatuo-otel"))],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        metric(
                            "huatuo.drops",
                            metric::Data::Sum(Sum {
                                data_points: vec![
                                    number(t, number_data_point::Value::AsInt(total), tcp()),
                                    number(t, number_data_point::Value::AsInt(1), udp()),
                                ],
                                aggregation_temporality: 2,
                                is_monotonic: true,
                            }),
                        ),
                        metric(
                            "huatuo.queue",
                            metric::Data::Gauge(Gauge {
                                data_points: vec![number(
                                    t,
                                    number_data_point::Value::AsDouble(0.5),
                                    vec![],
                                )],
                            }),
                        ),
                        metric(
                            "huatuo.latency",
                            metric::Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint {
                                    time_unix_nano: t,
                                    count: total as u64,
                                    sum: Some(1.0),
                                    attributes: udp(),
                                    ..Default::default()
                                }],
                                aggregation_temporality: 2,
                            }),
                        ),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn log_views_flatten_resource_scope_and_typed_attributes() {
        let r = Received {
            logs: vec![logs_request()],
            ..Default::default()
        };
        let all = r.log_records();
        assert_eq!(all.len(), 3);
        let drops = r.logs_with_event("kernel.net.drop");
        assert_eq!(drops.len(), 1);
        let d = &drops[0];
        assert_eq!(d.attr_str("net.protocol"), Some("tcp"));
        assert_eq!(d.attr_i64("cpu"), Some(3));
        assert_eq!(d.attr_str("cpu"), None, "an int must not read as a string");
        assert_eq!(d.attr("stack").unwrap().to_string(), "[f1]");
        assert_eq!(d.attr("nested").unwrap().to_string(), "{a: true}");
        assert_eq!(d.resource_str("host.name"), Some("node-1"));
        assert_eq!(d.body_str(), Some("dropped"));
        assert_eq!(d.severity_number, 13);
        assert_eq!(
            (d.scope_name.as_str(), d.scope_version.as_str()),
            ("huatuo", "0.1.0")
        );
        assert_eq!(d.trace_id, "ab".repeat(16));
        assert!(d.matches(&[("cpu", "3"), ("net.protocol", "tcp")]));
        assert!(!d.matches(&[("cpu", "4")]));
        assert_eq!(
            r.event_names().into_iter().collect::<Vec<_>>(),
            ["kernel.net.drop", "kernel.other"]
        );
        assert_eq!(
            r.attribute_keys().into_iter().collect::<Vec<_>>(),
            ["cpu", "nested", "net.protocol", "stack"]
        );
        assert_eq!(
            r.resource_attribute_keys().into_iter().collect::<Vec<_>>(),
            ["host.name"]
        );
    }

    #[test]
    fn latest_values_pick_newest_point_matching_kind_and_filter() {
        let r = Received {
            metrics: vec![metrics_request(20, 7), metrics_request(10, 3)],
            ..Default::default()
        };
        assert_eq!(
            r.latest_sum("huatuo.drops", &[("net.protocol", "tcp")]),
            Some(7.0)
        );
        assert_eq!(r.latest_sum_i64("huatuo.drops", &[("cpu", "0")]), Some(7));
        assert_eq!(
            r.latest_sum("huatuo.drops", &[("net.protocol", "udp")]),
            Some(1.0)
        );
        assert_eq!(
            r.latest_sum("huatuo.drops", &[("net.protocol", "icmp")]),
            None
        );
        assert_eq!(
            r.latest_sum("huatuo.queue", &[]),
            None,
            "a gauge is not a sum"
        );
        assert_eq!(r.latest_gauge("huatuo.queue", &[]), Some(0.5));
        assert_eq!(r.histogram_count("huatuo.latency", &[]), Some(7));
        assert_eq!(
            r.metric_names().into_iter().collect::<Vec<_>>(),
            ["huatuo.drops", "huatuo.latency", "huatuo.queue"]
        );
        let p = r
            .latest_point("huatuo.drops", &[("net.protocol", "tcp")])
            .unwrap();
        assert_eq!(
            p.kind,
            MetricKind::Sum {
                monotonic: true,
                temporality: Temporality::Cumulative
            }
        );
        assert_eq!(p.resource_str("service.name"), Some("huatuo-otel"));
        assert_eq!(r.metric_point_count(), 8);
    }

    #[test]
    fn every_metric_kind_keeps_its_point_times_attributes_and_value() {
        let metric = |data| Metric {
            name: "m".into(),
            data,
            ..Default::default()
        };
        let cpu = || vec![kv("cpu", any_value::Value::IntValue(2))];
        let metrics = [
            metric(Some(metric::Data::ExponentialHistogram(
                ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint {
                        start_time_unix_nano: 1,
                        time_unix_nano: 2,
                        count: 5,
                        sum: Some(2.5),
                        attributes: cpu(),
                        ..Default::default()
                    }],
                    aggregation_temporality: 1,
                },
            ))),
            metric(Some(metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    start_time_unix_nano: 3,
                    time_unix_nano: 4,
                    count: 6,
                    sum: 1.5,
                    attributes: cpu(),
                    ..Default::default()
                }],
            }))),
            metric(Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    start_time_unix_nano: 5,
                    time_unix_nano: 6,
                    attributes: cpu(),
                    ..Default::default()
                }],
            }))),
            metric(None),
        ];
        let got: Vec<_> = metrics
            .iter()
            .flat_map(|m| metric_points(m, &Attributes::new(), "scope"))
            .map(|p| {
                let cpu = p.attr_i64("cpu");
                (
                    p.kind,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    p.value,
                    cpu,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    MetricKind::ExponentialHistogram {
                        temporality: Temporality::Delta
                    },
                    1,
                    2,
                    PointValue::ExponentialHistogram {
                        count: 5,
                        sum: Some(2.5)
                    },
                    Some(2)
                ),
                (
                    MetricKind::Summary,
                    3,
                    4,
                    PointValue::Summary { count: 6, sum: 1.5 },
                    Some(2)
                ),
                (MetricKind::Gauge, 5, 6, PointValue::Missing, Some(2)),
                (MetricKind::Empty, 0, 0, PointValue::Missing, None),
            ]
        );
    }

    #[test]
    fn latest_sum_prefers_later_arrival_on_equal_timestamps() {
        let r = Received {
            metrics: vec![metrics_request(10, 3), metrics_request(10, 4)],
            ..Default::default()
        };
        assert_eq!(
            r.latest_sum("huatuo.drops", &[("net.protocol", "tcp")]),
            Some(4.0)
        );
    }

    #[test]
    fn summary_names_what_arrived() {
        let r = Received {
            logs: vec![logs_request()],
            metrics: vec![metrics_request(1, 1), metrics_request(2, 2)],
            ..Default::default()
        };
        let s = r.summary();
        assert!(
            s.contains("logs: 1 requests, 3 records (1 without event name)"),
            "{s}"
        );
        assert!(s.contains("kernel.net.drop"), "{s}");
        assert!(s.contains("huatuo.drops x4"), "{s}");
        assert!(
            s.contains("traces: 0 requests, 0 spans, names [none]"),
            "{s}"
        );
    }
}
