//! Every attribute, event and metric name huatuo-otel emits.
//!
//! OpenTelemetry has no conventions for kernel events, so names we define live under the single
//! namespace `huatuo.` ([`NAMESPACE`]); everything else is an existing OpenTelemetry semantic
//! convention, reused as is. Code must emit names only through these constants: the registry
//! ([`registry`]) is what tests check emitted names against, and what `REFERENCE.md` is generated
//! from (a test fails when that file is stale).

#[macro_use]
mod macros;
pub mod agent;
pub mod autotracing;
pub mod block;
pub mod collector;
pub mod container;
pub mod memory;
pub mod net;
pub mod ras;
pub mod resource;
pub mod sched;
pub mod system;

/// The namespace of every name huatuo-otel defines itself.
pub const NAMESPACE: &str = "huatuo.";

/// What a registered name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    ResourceAttribute,
    Attribute,
    Event,
    /// Span name (autotracing captures; events with a duration reuse their event name).
    Span,
    Metric,
}

/// One registered name with its documentation.
#[derive(Debug, Clone, Copy)]
pub struct Name {
    pub name: &'static str,
    pub kind: Kind,
    /// For metrics: instrument and UCUM unit, e.g. "counter {drop}"; for attributes: value type.
    pub shape: &'static str,
    pub brief: &'static str,
}

impl Name {
    /// True when the name is ours rather than an existing OpenTelemetry convention.
    pub fn is_huatuo(&self) -> bool {
        self.name.starts_with(NAMESPACE)
    }
}

/// All registered names, grouped by domain.
pub fn registry() -> impl Iterator<Item = &'static Name> {
    [
        resource::NAMES,
        agent::NAMES,
        autotracing::NAMES,
        block::NAMES,
        container::NAMES,
        memory::NAMES,
        net::NAMES,
        ras::NAMES,
        sched::NAMES,
        collector::NAMES,
        system::NAMES,
    ]
    .into_iter()
    .flatten()
}

/// Whether `name` is registered as `kind`.
pub fn is_registered(name: &str, kind: Kind) -> bool {
    registry().any(|n| n.name == name && n.kind == kind)
}

/// The UCUM unit `name` is registered with, when it is a registered metric.
pub fn metric_unit(name: &str) -> Option<&'static str> {
    registry()
        .find(|n| n.name == name && n.kind == Kind::Metric)
        .and_then(|n| n.shape.split_once(' '))
        .map(|(_, unit)| unit)
}

/// The Markdown reference committed as `semconv/REFERENCE.md`.
pub fn reference_markdown() -> String {
    let mut names: Vec<&Name> = registry().collect();
    names.sort_by_key(|n| (n.kind, n.name));
    let mut out = String::from(
        "# huatuo-otel names\n\n\
         Generated from `semconv/src` by `cargo run -p huatuo-semconv`; do not edit.\n\n\
         Names starting with `huatuo.` are defined by huatuo-otel; all others are existing \
         OpenTelemetry semantic conventions.\n",
    );
    for (kind, title) in [
        (Kind::ResourceAttribute, "Resource attributes"),
        (Kind::Event, "Events (log records with EventName)"),
        (Kind::Span, "Spans (autotracing captures)"),
        (Kind::Attribute, "Attributes"),
        (Kind::Metric, "Metrics"),
    ] {
        out.push_str(&format!(
            "\n## {title}\n\n| name | type | description |\n|---|---|---|\n"
        ));
        for n in names.iter().filter(|n| n.kind == kind) {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                n.name,
                n.shape,
                n.brief.trim()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_metric_is_registered_with_an_instrument_and_a_unit() {
        for n in registry().filter(|n| n.kind == Kind::Metric) {
            let unit = metric_unit(n.name).unwrap_or_default();
            assert!(
                !unit.is_empty() && !unit.contains(' '),
                "metric {} has shape {:?}, not \"<instrument> <unit>\"",
                n.name,
                n.shape
            );
        }
        assert_eq!(metric_unit("huatuo.memburst.growth"), Some("1"));
    }

    #[test]
    fn names_are_unique_per_kind() {
        let mut seen = HashSet::new();
        for n in registry() {
            assert!(seen.insert((n.name, n.kind)), "{} registered twice", n.name);
        }
    }

    #[test]
    fn events_and_metrics_are_ours_and_static() {
        for n in registry().filter(|n| matches!(n.kind, Kind::Event | Kind::Span | Kind::Metric)) {
            let ours =
                n.is_huatuo() || n.name.starts_with("system.") || n.name.starts_with("container.");
            assert!(
                ours,
                "{} is neither ours nor a known OTel metric namespace",
                n.name
            );
            assert!(
                n.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'),
                "{} has characters outside [a-z0-9._]",
                n.name
            );
        }
    }

    #[test]
    fn reference_markdown_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/REFERENCE.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == reference_markdown(),
            "semconv/REFERENCE.md is stale: run `cargo run -p huatuo-semconv > semconv/REFERENCE.md`"
        );
    }
}
