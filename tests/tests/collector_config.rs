//! The Collector configurations in `otel-collector/`, checked without a Collector binary: every
//! YAML parses, every component a pipeline uses is declared, every declared component's type is
//! in the builder manifest, and the agent's protocol (OTLP) is what they receive.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

const KINDS: [&str; 3] = ["receivers", "processors", "exporters"];

fn collector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../otel-collector")
}

fn load(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs =
        YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one document expected", path.display());
    docs.remove(0)
}

fn keys(map: &Yaml) -> BTreeSet<String> {
    map.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `memory_limiter/x` -> `memorylimiter`: the form a component's Go module is named after.
fn component_type(id: &str) -> String {
    id.split('/').next().unwrap_or(id).replace('_', "")
}

/// Component types the builder manifest includes, per kind, from the Go module names
/// (`.../processor/memorylimiterprocessor v0.159.0` -> `memorylimiter`).
fn manifest_types(manifest: &Yaml, kind: &str) -> BTreeSet<String> {
    let singular = kind.trim_end_matches('s');
    manifest[kind]
        .as_vec()
        .unwrap_or_else(|| panic!("builder manifest has no {kind}"))
        .iter()
        .map(|entry| {
            let module = entry["gomod"].as_str().expect("gomod entry");
            let path = module.split_whitespace().next().unwrap();
            let last = path.rsplit('/').next().unwrap();
            last.strip_suffix(singular).unwrap_or(last).to_string()
        })
        .collect()
}

fn collector_configs() -> Vec<PathBuf> {
    let mut configs: Vec<PathBuf> = std::fs::read_dir(collector_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("config") && name.ends_with(".yaml")
        })
        .collect();
    configs.sort();
    assert!(!configs.is_empty(), "no config*.yaml in otel-collector/");
    configs
}

#[test]
fn pipelines_use_declared_components_that_the_manifest_builds() {
    let manifest = load(&collector_dir().join("builder-config.yaml"));
    for path in collector_configs() {
        let config = load(&path);
        let name = path.display();
        let pipelines = config["service"]["pipelines"]
            .as_hash()
            .unwrap_or_else(|| panic!("{name}: no service.pipelines"));
        assert!(!pipelines.is_empty(), "{name}: no pipelines");
        for kind in KINDS {
            let declared = keys(&config[kind]);
            let buildable = manifest_types(&manifest, kind);
            for id in &declared {
                assert!(
                    buildable.contains(&component_type(id)),
                    "{name}: {kind} {id} is not in builder-config.yaml ({buildable:?})"
                );
            }
            for (pipeline, spec) in pipelines {
                let pipeline = pipeline.as_str().unwrap();
                for used in spec[kind].as_vec().into_iter().flatten() {
                    let used = used.as_str().unwrap();
                    assert!(
                        declared.contains(used),
                        "{name}: pipeline {pipeline} uses {kind} {used}, which is not declared"
                    );
                }
            }
        }
        for (pipeline, spec) in pipelines {
            let pipeline = pipeline.as_str().unwrap();
            let signal = pipeline.split('/').next().unwrap();
            assert!(
                ["logs", "metrics", "traces"].contains(&signal),
                "{name}: unexpected pipeline {pipeline}"
            );
            for kind in ["receivers", "exporters"] {
                assert!(
                    spec[kind].as_vec().is_some_and(|v| !v.is_empty()),
                    "{name}: pipeline {pipeline} has no {kind}"
                );
            }
        }
        // Every signal the agent sends has a pipeline, fed by the OTLP receiver on both protocols.
        for signal in ["logs", "metrics", "traces"] {
            let spec = &config["service"]["pipelines"][signal];
            let receivers: Vec<&str> = spec["receivers"]
                .as_vec()
                .into_iter()
                .flatten()
                .filter_map(Yaml::as_str)
                .collect();
            assert!(
                receivers.contains(&"otlp"),
                "{name}: {signal} pipeline does not receive OTLP"
            );
        }
        let protocols = keys(&config["receivers"]["otlp"]["protocols"]);
        assert_eq!(
            protocols,
            BTreeSet::from(["grpc".into(), "http".into()]),
            "{name}"
        );
    }
}

#[test]
fn metrics_reach_prometheus_remote_write_which_needs_cumulative_temporality() {
    // The agent exports cumulative sums (remote-write drops delta); this pins the routing that
    // depends on it.
    for path in collector_configs() {
        let config = load(&path);
        let exporters: Vec<&str> = config["service"]["pipelines"]["metrics"]["exporters"]
            .as_vec()
            .into_iter()
            .flatten()
            .filter_map(Yaml::as_str)
            .collect();
        assert!(
            exporters.contains(&"prometheusremotewrite"),
            "{}",
            path.display()
        );
    }
}

/// Prometheus names of registered metrics as remote-write names them: dots become underscores,
/// the unit becomes a suffix (`{annotation}` units add none), counters get `_total`.
fn prometheus_metric_names() -> BTreeSet<String> {
    use huatuo_semconv::{registry, Kind};
    registry()
        .filter(|n| n.kind == Kind::Metric)
        .map(|n| {
            let unit = n.shape.split_whitespace().nth(1).unwrap_or("");
            let suffix = match unit {
                "" => "",
                u if u.starts_with('{') => "",
                "s" => "_seconds",
                "By" => "_bytes",
                "%" => "_percent",
                "1" => "_ratio",
                other => panic!(
                    "{}: teach this test the Prometheus suffix of unit {other}",
                    n.name
                ),
            };
            let base = format!("{}{suffix}", n.name.replace('.', "_"));
            if n.shape.starts_with("counter") {
                format!("{base}_total")
            } else {
                base
            }
        })
        .collect()
}

/// Every string value in a JSON tree.
fn strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Maximal runs of `[a-z0-9_.*]` in `text`, where names live in PromQL and Lucene queries.
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_.*".contains(c)))
        .filter(|t| !t.is_empty())
}

#[test]
fn dashboards_use_only_registered_names() {
    use huatuo_semconv::{is_registered, registry, Kind};
    let metrics = prometheus_metric_names();
    let labels: BTreeSet<String> = registry()
        .filter(|n| n.kind == Kind::Attribute)
        .map(|n| n.name.replace('.', "_"))
        .collect();
    let dir = collector_dir().join("grafana/dashboards");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.display().to_string();
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut texts = Vec::new();
        strings(&dashboard, &mut texts);
        for text in texts {
            let prev_tokens: Vec<&str> = tokens(text).collect();
            for (i, token) in prev_tokens.iter().enumerate() {
                if let Some(attribute) = token.strip_prefix("resource.attributes.") {
                    assert!(
                        is_registered(attribute, Kind::ResourceAttribute),
                        "{name}: {attribute}"
                    );
                    checked += 1;
                } else if let Some(attribute) = token.strip_prefix("attributes.") {
                    assert!(
                        is_registered(attribute, Kind::Attribute),
                        "{name}: attribute {attribute}"
                    );
                    checked += 1;
                } else if *token == "event_name" {
                    // `event_name:huatuo.*` is a pattern; `event_name:"x"` names an event.
                    if let Some(event) = prev_tokens
                        .get(i + 1)
                        .filter(|e| !e.ends_with('*') && e.contains('.'))
                    {
                        assert!(is_registered(event, Kind::Event), "{name}: event {event}");
                        checked += 1;
                    }
                } else if token.starts_with("huatuo_") {
                    assert!(
                        metrics.contains(*token) || labels.contains(*token),
                        "{name}: {token} is neither a registered metric (as Prometheus names it) nor a label"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(
        checked > 10,
        "the dashboards reference almost no names: is the check still reading them?"
    );
}
